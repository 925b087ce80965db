// runProcess: the same results under Node (node:child_process) and under bun (Bun.spawn, what the
// compiled executables use): exit code, signal, stdout/stderr bytes, stdin, environment, and a start
// failure as a rejection carrying its code.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runProcess } from '../../../../shared/proc/run.js';
import { ROOT } from '../../../helpers/paths.js';

const BUN = join(ROOT, 'node_modules', '.bin', 'bun');
/** a file without the execute bit */
const PLAIN = join(mkdtempSync(join(tmpdir(), 'run-test-')), 'plain');
writeFileSync(PLAIN, '#!/bin/sh\n', { mode: 0o644 });

/** What each probe gives, as JSON, so the two runtimes can be compared. */
const PROBES = `
import { runProcess } from ${JSON.stringify(join(ROOT, 'shared/proc/run.ts'))};
const show = (r) => ({ code: r.code, signal: r.signal, stdout: r.stdout.toString(), stderr: r.stderr.toString() });
const out = {
  echo: show(await runProcess(['/bin/sh', '-c', 'cat; echo "$FOO" >&2; exit 3'], { input: 'in\\n', env: { FOO: 'bar', GONE: undefined } })),
  env: show(await runProcess(['/bin/sh', '-c', 'echo "\${GONE-unset}"'], { env: { GONE: undefined } })),
  signal: show(await runProcess(['/bin/sh', '-c', 'kill -9 $$'])),
  noInput: show(await runProcess(['/bin/cat'])),
  missing: await runProcess(['/nonexistent/prog']).then(() => 'started', (e) => e.code),
  notExecutable: await runProcess([${JSON.stringify(PLAIN)}]).then(() => 'started', (e) => e.code),
};
console.log(JSON.stringify(out));
`;

const EXPECTED = {
  echo: { code: 3, signal: null, stdout: 'in\n', stderr: 'bar\n' },
  env: { code: 0, signal: null, stdout: 'unset\n', stderr: '' },
  signal: { code: null, signal: 'SIGKILL', stdout: '', stderr: '' },
  noInput: { code: 0, signal: null, stdout: '', stderr: '' },
  missing: 'ENOENT',
  notExecutable: 'EACCES',
};

describe('runProcess', () => {
  it('under Node', async () => {
    const show = (x: { code: number | null; signal: string | null; stdout: Buffer; stderr: Buffer }) => ({ code: x.code, signal: x.signal, stdout: x.stdout.toString(), stderr: x.stderr.toString() });
    expect(show(await runProcess(['/bin/sh', '-c', 'cat; echo "$FOO" >&2; exit 3'], { input: 'in\n', env: { FOO: 'bar', GONE: undefined } }))).toEqual(EXPECTED.echo);
    expect(show(await runProcess(['/bin/sh', '-c', 'echo "${GONE-unset}"'], { env: { GONE: undefined } }))).toEqual(EXPECTED.env);
    expect(show(await runProcess(['/bin/sh', '-c', 'kill -9 $$']))).toEqual(EXPECTED.signal);
    expect(show(await runProcess(['/bin/cat']))).toEqual(EXPECTED.noInput);
    await expect(runProcess(['/nonexistent/prog'])).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(runProcess([PLAIN])).rejects.toMatchObject({ code: 'EACCES' });
  });

  it.skipIf(!existsSync(BUN))('under bun (Bun.spawn), the same', () => {
    const out = execFileSync(BUN, ['run', '-'], { input: PROBES, cwd: ROOT, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(EXPECTED);
  });
});
