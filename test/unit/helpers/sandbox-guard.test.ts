// The suite's sandbox guard (test/helpers/sandbox-guard.ts): its listing and diff, and a real vitest run
// whose test writes under a guarded path (a temp dir standing in for /var/lib/cni) must fail, naming it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffListings, guardedPaths, GUARDED_PATHS, listTree } from '../../helpers/sandbox-guard.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sandbox-guard-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('listing and diff', () => {
  it('a path that appears, one that changes and one that goes are each named; a missing root is no change', () => {
    const root = join(dir, 'unit', 'var-lib-cni');
    mkdirSync(join(root, 'networks'), { recursive: true });
    writeFileSync(join(root, 'networks', 'last'), 'a');
    writeFileSync(join(root, 'gone'), 'x');
    const missing = join(dir, 'unit', 'run-flannel');
    const before = listTree([root, missing]);
    expect(diffListings(before, listTree([root, missing]))).toEqual([]);

    mkdirSync(join(root, 'results'));
    writeFileSync(join(root, 'networks', 'last'), 'abc');
    rmSync(join(root, 'gone'));
    const changes = diffListings(before, listTree([root, missing]));
    expect(changes.map((c) => c.split(' (')[0])).toEqual([
      `changed  ${root}`, // its mtime: entries came and went
      `removed  ${join(root, 'gone')}`,
      `changed  ${join(root, 'networks', 'last')}`,
      `created  ${join(root, 'results')}`,
    ]);
    expect(changes[2]).toContain('size=1 ');
    expect(changes[2]).toContain('size=3 ');
  });

  it('guards the machine paths unless told otherwise', () => {
    expect(guardedPaths({})).toEqual(['/var/lib/flannel', '/var/lib/cni', '/run/flannel', '/etc/cni']);
    expect(GUARDED_PATHS).toEqual(guardedPaths({}));
    expect(guardedPaths({ FLANNEL_TS_SANDBOX_GUARD_PATHS: '/a:/b' })).toEqual(['/a', '/b']);
  });
});

describe('a vitest run with the guard as its globalSetup', () => {
  // a throwaway project: one test file that writes (or not) under a guarded temp dir
  function run(write: boolean) {
    const d = mkdtempSync(join(dir, 'run-'));
    const guarded = join(d, 'var-lib-cni');
    mkdirSync(guarded);
    writeFileSync(
      join(d, 'leak.test.mjs'),
      `import { mkdirSync } from 'node:fs';\n` +
        `test('writes under a guarded path: ${write}', () => { ${write ? `mkdirSync(${JSON.stringify(join(guarded, 'results'))});` : ''} });\n`,
    );
    writeFileSync(
      join(d, 'vitest.config.mjs'),
      `export default { test: { root: ${JSON.stringify(d)}, include: ['leak.test.mjs'], globals: true, ` +
        `globalSetup: [${JSON.stringify(join(ROOT, 'test/helpers/sandbox-guard.ts'))}] } };\n`,
    );
    const r = spawnSync(join(ROOT, 'node_modules/.bin/vitest'), ['run', '--config', join(d, 'vitest.config.mjs')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, FLANNEL_TS_SANDBOX_GUARD: '', FLANNEL_TS_SANDBOX_GUARD_PATHS: guarded, NO_COLOR: '1', CI: '1' },
      timeout: 60_000,
    });
    return { status: r.status, out: `${r.stdout}\n${r.stderr}`, guarded };
  }

  it('fails the run and names what the test wrote; a clean run passes', () => {
    const leak = run(true);
    expect(leak.status, leak.out).not.toBe(0);
    expect(leak.out).toContain('sandbox guard: this test run wrote outside its sandbox');
    expect(leak.out).toContain(`created  ${join(leak.guarded, 'results')}`);
    const clean = run(false);
    expect(clean.status, clean.out).toBe(0);
  }, 120_000);
});
