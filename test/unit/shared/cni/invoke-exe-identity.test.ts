// Build identity of a compiled executable (shared/cni/invoke.ts): scripts/build-exe.mjs appends
// `// flannel-ts build <id>` after the ELF image; a delegate found on CNI_PATH runs in-process when that
// last line equals the running executable's id (setSelf), under whatever name (flannel, bridge,
// host-local are links to one file), and is exec'd otherwise. The delegation chain records each link by
// its own name, so flannel → bridge through one multi-call file is no loop.
import { chmodSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLine, CHAIN_ENV, delegateAdd, extendChain, registerInProcess, setSelf } from '../../../../shared/cni/invoke.js';
import type { PluginIo } from '../../../../shared/cni/skel.js';

const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
let dir: string;

/** A fake "compiled executable": an ELF magic, a body, then the trailer line (or none). */
function exe(file: string, trailer: string | undefined, bodyBytes = 4096): void {
  const parts = [ELF, Buffer.alloc(bodyBytes, 0x41)];
  if (trailer !== undefined) parts.push(Buffer.from(`\n${trailer}\n`));
  writeFileSync(file, Buffer.concat(parts));
  chmodSync(file, 0o755);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'invoke-exe-identity-'));
  for (const d of ['ours', 'copy', 'rebuilt', 'symlinks']) mkdirSync(join(dir, d));
  exe(join(dir, 'ours', 'flannel-cni'), '// flannel-ts build exe-0123456789abcdef');
  for (const n of ['flannel', 'bridge', 'host-local']) linkSync(join(dir, 'ours', 'flannel-cni'), join(dir, 'ours', n));
  exe(join(dir, 'copy', 'host-local'), '// flannel-ts build exe-0123456789abcdef', 100);
  exe(join(dir, 'rebuilt', 'host-local'), '// flannel-ts build exe-fedcba9876543210');
  for (const n of ['flannel', 'bridge']) symlinkSync(join(dir, 'ours', 'flannel-cni'), join(dir, 'symlinks', n));
  setSelf(join(dir, 'ours', 'flannel'), 'exe-0123456789abcdef');
  registerInProcess('host-local', async (io: PluginIo) => {
    io.writeStdout(JSON.stringify({ cniVersion: '1.0.0', ips: [{ address: '10.0.0.1/24' }] }));
    return 0;
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('compiled executable identity', () => {
  it('reads the build line after the ELF image', () => {
    expect(buildLine(join(dir, 'ours', 'bridge'))).toBe('// flannel-ts build exe-0123456789abcdef');
    expect(buildLine(join(dir, 'symlinks', 'bridge'))).toBe('// flannel-ts build exe-0123456789abcdef');
  });

  it('finds none in an ELF file without the trailer (a Go plugin) or too short to hold one', () => {
    exe(join(dir, 'go'), undefined);
    expect(buildLine(join(dir, 'go'))).toBeUndefined();
    writeFileSync(join(dir, 'tiny'), ELF);
    expect(buildLine(join(dir, 'tiny'))).toBeUndefined();
  });

  it('runs a delegate in-process when it is this executable under another name, or a copy of this build', async () => {
    for (const d of ['ours', 'copy']) {
      const r = await delegateAdd('host-local', '{}', '1.0.0', { env: { CNI_PATH: join(dir, d) } });
      expect(r.ips?.[0]?.address).toBe('10.0.0.1/24');
    }
  });

  it('execs our executable from another build', async () => {
    // the fake file is no real program: an exec fails, which is how we see it was not run in-process
    const err = await delegateAdd('host-local', '{}', '1.0.0', { env: { CNI_PATH: join(dir, 'rebuilt') } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
  });

  it('records each name of the multi-call file in the chain: flannel → bridge → host-local is no loop', () => {
    const env: Record<string, string | undefined> = {};
    env[CHAIN_ENV] = extendChain('bridge', join(dir, 'symlinks', 'bridge'), env);
    expect(env[CHAIN_ENV]).toBe([join(dir, 'ours', 'flannel'), join(dir, 'symlinks', 'bridge')].join(':'));
    expect(extendChain('host-local', join(dir, 'ours', 'host-local'), env).split(':')).toHaveLength(3);
    // a real loop (bridge delegating to bridge) is still refused
    expect(() => extendChain('bridge', join(dir, 'symlinks', 'bridge'), env)).toThrow(/already running/);
  });

  it('a symlink to one of its names (same name) is that file: a loop through it is caught at once', () => {
    mkdirSync(join(dir, 'podman-bin'));
    symlinkSync(join(dir, 'ours', 'flannel'), join(dir, 'podman-bin', 'flannel'));
    expect(() => extendChain('flannel', join(dir, 'podman-bin', 'flannel'), {})).toThrow(/already running in this call \(flannel → flannel\)/);
  });
});
