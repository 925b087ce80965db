// libcni's config and cache reads are bounded (shared/fs/read-bounded.ts): a FIFO or an endless device
// among the configs is an error at once, and one in the result cache is skipped, where an unbounded read
// would block forever (FIFO) or grow memory without end (/dev/zero).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CNIConfig } from '../../../../scripts/cnitool/libcni/api.js';
import { loadConf, loadConfList } from '../../../../scripts/cnitool/libcni/conf.js';

const dir = mkdtempSync(join(tmpdir(), 'libcni-bounded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('libcni bounded reads', () => {
  it('a FIFO .conflist fails discovery with a clear error instead of blocking', () => {
    const d = join(dir, 'fifo-net');
    mkdirSync(d);
    expect(spawnSync('mkfifo', [join(d, '10-a.conflist')]).status).toBe(0);
    expect(() => loadConfList(d, 'x')).toThrow(`error reading ${join(d, '10-a.conflist')}: read ${join(d, '10-a.conflist')}: not a regular file (a named pipe)`);
  });

  it('a .conf that is /dev/zero fails at once', () => {
    const d = join(dir, 'zero-net');
    mkdirSync(d);
    symlinkSync('/dev/zero', join(d, '10-a.conf'));
    expect(() => loadConf(d, 'x')).toThrow(`error reading ${join(d, '10-a.conf')}: read ${join(d, '10-a.conf')}: not a regular file (a character device)`);
  });

  it('cached results that are a FIFO or /dev/zero are skipped (no cached result, no attachment)', () => {
    const cacheDir = join(dir, 'cache');
    mkdirSync(join(cacheDir, 'results'), { recursive: true });
    const cni = new CNIConfig([], { cacheDir, env: {} });
    const rt = { containerId: 'c1', netns: '/x', ifName: 'eth0' };
    expect(spawnSync('mkfifo', [cni.cacheFilePath('net1', rt)]).status).toBe(0);
    symlinkSync('/dev/zero', cni.cacheFilePath('net2', rt));
    writeFileSync(
      cni.cacheFilePath('net3', rt),
      JSON.stringify({ kind: 'cniCacheV1', containerId: 'c1', config: '', ifName: 'eth0', networkName: 'net3', result: {} }),
    );
    expect(cni.getCachedResult('net1', '1.0.0', rt)).toBeUndefined();
    expect(cni.getCachedResult('net2', '1.0.0', rt)).toBeUndefined();
    expect(cni.getCachedAttachments('c1').map((a) => a.network)).toEqual(['net3']);
  });
});
