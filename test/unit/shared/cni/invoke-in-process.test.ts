// The in-process fast path of shared/cni/invoke.ts: a registered plugin runs inside this process only
// when the file CNI_PATH gives for its type comes from the same build as the running executable (the
// `// flannel-ts build <id>` line); its output is judged exactly as an exec'd plugin's.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniError } from '../../../../shared/cni/errors.js';
import { delegateAdd, delegateDel, registerInProcess } from '../../../../shared/cni/invoke.js';
import type { PluginIo } from '../../../../shared/cni/skel.js';

const RESULT = (by: string) => JSON.stringify({ cniVersion: '1.0.0', ips: [{ address: by === 'exec' ? '10.0.0.9/24' : '10.0.0.1/24' }] });

let dir: string;
let ours: string;
let other: string;
let linked: string;
const savedArgv1 = process.argv[1] ?? '';
const calls: Array<{ stdin: string; command: string | undefined; path: string | undefined }> = [];
let failNext = false;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'invoke-in-process-'));
  ours = join(dir, 'ours');
  other = join(dir, 'other');
  linked = join(dir, 'linked');
  mkdirSync(ours);
  mkdirSync(other);
  mkdirSync(join(dir, 'copy'));
  mkdirSync(join(dir, 'rebuilt'));
  // the "running executable" and plugins named like the registered one; each, when exec'd, says so
  // in its result. ours/ipam is of our build; other/ipam is someone else's (say the Go plugin);
  // rebuilt/ipam is ours from another build.
  const plugin = (file: string, buildLine: string) => {
    writeFileSync(file, `#!${process.execPath}\n${buildLine}\nprocess.stdin.resume().on('end', () => console.log('${RESULT('exec')}'));\n`);
    chmodSync(file, 0o755);
  };
  plugin(join(ours, 'ipam'), '// flannel-ts build 0123456789abcdef');
  plugin(join(other, 'ipam'), '// not ours');
  plugin(join(dir, 'rebuilt', 'ipam'), '// flannel-ts build fedcba9876543210');
  writeFileSync(join(ours, 'self'), `#!${process.execPath}\n// flannel-ts build 0123456789abcdef\n`);
  // a copy of our executable alone next to someone else's plugin (kube-flannel's /opt/cni/bin layout)
  writeFileSync(join(dir, 'copy', 'self'), `#!${process.execPath}\n// flannel-ts build 0123456789abcdef\n`);
  symlinkSync(ours, linked);
  process.argv[1] = join(ours, 'self');
  registerInProcess('ipam', async (io: PluginIo) => {
    calls.push({ stdin: io.readStdin().toString(), command: io.env.CNI_COMMAND, path: io.env.CNI_PATH });
    io.writeStderr('note from the delegate\n');
    if (failNext) {
      failNext = false;
      io.writeStdout(JSON.stringify({ code: 11, msg: 'try again later', details: 'busy' }));
      return 1;
    }
    if (io.env.CNI_COMMAND === 'ADD') io.writeStdout(RESULT('in-process'));
    return 0;
  });
});

afterAll(() => {
  process.argv[1] = savedArgv1;
  rmSync(dir, { recursive: true, force: true });
});

const env = (cniPath: string, extra: Record<string, string> = {}) => ({ CNI_PATH: cniPath, CNI_CONTAINERID: 'c', ...extra });

describe('in-process delegation', () => {
  it('runs our own sibling in process, with the same stdin and env and CNI_COMMAND set', async () => {
    calls.length = 0;
    const stderr: string[] = [];
    const r = await delegateAdd('ipam', '{"cniVersion":"1.0.0"}', '1.0.0', { env: env(ours), writeStderr: (t) => void stderr.push(t) });
    expect(r.ips?.[0]?.address).toBe('10.0.0.1/24');
    expect(calls).toEqual([{ stdin: '{"cniVersion":"1.0.0"}', command: 'ADD', path: ours }]);
    expect(stderr).toEqual(['note from the delegate\n']);
    await delegateDel('ipam', '{}', { env: env(ours) });
    expect(calls.at(-1)?.command).toBe('DEL');
  });

  it('follows symlinks to the same file (/opt/cni/bin → dist/bin)', async () => {
    const r = await delegateAdd('ipam', '{}', '1.0.0', { env: env(linked) });
    expect(r.ips?.[0]?.address).toBe('10.0.0.1/24');
  });

  it('execs a plugin of that name found elsewhere first on CNI_PATH', async () => {
    const r = await delegateAdd('ipam', '{}', '1.0.0', { env: env(`${other}:${ours}`) });
    expect(r.ips?.[0]?.address).toBe('10.0.0.9/24');
  });

  it('execs a plugin of that name that is not of our build, even beside a copy of ours', async () => {
    // the running executable is the copy in copy/, the delegate someone else's in other/
    process.argv[1] = join(dir, 'copy', 'self');
    try {
      const r = await delegateAdd('ipam', '{}', '1.0.0', { env: env(other) });
      expect(r.ips?.[0]?.address).toBe('10.0.0.9/24');
    } finally {
      process.argv[1] = join(ours, 'self');
    }
  });

  it('execs our plugin from another build', async () => {
    const r = await delegateAdd('ipam', '{}', '1.0.0', { env: env(join(dir, 'rebuilt')) });
    expect(r.ips?.[0]?.address).toBe('10.0.0.9/24');
  });

  it('execs when CNI_TS_EXEC_DELEGATES=1', async () => {
    const r = await delegateAdd('ipam', '{}', '1.0.0', { env: env(ours, { CNI_TS_EXEC_DELEGATES: '1' }) });
    expect(r.ips?.[0]?.address).toBe('10.0.0.9/24');
  });

  it("passes the delegate's error through unchanged, as for an exec'd plugin", async () => {
    failNext = true;
    const err = await delegateAdd('ipam', '{}', '1.0.0', { env: env(ours), writeStderr: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).toJSON()).toEqual({ code: 11, msg: 'try again later', details: 'busy' });
  });
});
