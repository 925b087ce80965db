// Issue 9 item 5: the built dist/bin/flannel reads subnet.env and its saved delegate config bounded.
// A subnetFile of /dev/zero used to grow the plugin's memory by GBs with no answer; a FIFO blocked
// forever. Each case must now answer one CNI error document within seconds (the spawn is killed after
// 10 s: a hang fails the test, it does not stall the suite). Nothing here needs a netns: every case
// fails before the plugin touches the network.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, ensureBuilt, SUBNET_ENV, tempDir, writeSubnetEnv } from './helpers.js';

const FLANNEL = join(DIST, 'flannel');
let work: string;

beforeAll(() => {
  ensureBuilt('flannel');
  work = tempDir('flannel-bounded');
  spawnSync('mkfifo', [join(work, 'fifo')]);
  mkdirSync(join(work, 'adir'));
  // a "subnet.env" of 2 MiB of short comment lines: Go would read it all; over our 1 MiB cap
  writeFileSync(join(work, 'big.env'), `${SUBNET_ENV.v4()}${'#\n'.repeat(1024 * 1024)}`);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function flannel(cmd: 'ADD' | 'DEL', conf: object): { status: number | null; out: unknown } {
  const r = spawnSync(FLANNEL, [], {
    input: JSON.stringify({ cniVersion: '1.0.0', name: 'cbr0', type: 'flannel', ...conf }),
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: cmd, CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/flannel-bounded-none', CNI_IFNAME: 'eth0', CNI_PATH: DIST },
    encoding: 'utf8',
    timeout: 10_000,
    maxBuffer: 1024 * 1024,
  });
  return { status: r.status, out: r.status === null ? `killed (${r.signal}) after ${r.error?.message ?? ''}` : JSON.parse(r.stdout) };
}

const hint = (cause: string) => `failed to load flannel 'subnet.env' file: ${cause}. Check the flannel pod log for this node.`;

describe('flannel reads its files bounded', () => {
  it.each([
    ['/dev/zero (endless)', '/dev/zero', 'not a regular file (a character device)'],
    ['a FIFO nobody writes', 'fifo', 'not a regular file (a named pipe)'],
    ['a directory', 'adir', 'is a directory'],
    ['a 2 MiB file', 'big.env', 'larger than 1 MiB (the most read from such a file)'],
  ])('ADD with subnetFile = %s: one error, at once', (_name, name, cause) => {
    const file = name.startsWith('/') ? name : join(work, name);
    const dataDir = join(work, `dd-${Math.random().toString(36).slice(2)}`);
    const r = flannel('ADD', { subnetFile: file, dataDir });
    expect(r.out).toEqual({ code: 999, msg: hint(`read ${file}: ${cause}`) });
    expect(r.status).toBe(1);
  });

  it.each([
    ['/dev/zero', (p: string) => symlinkSync('/dev/zero', p), 'not a regular file (a character device)'],
    ['a FIFO', (p: string) => spawnSync('mkfifo', [p]), 'not a regular file (a named pipe)'],
  ])('DEL whose saved config is %s: one error naming the file, at once', (_name, make, cause) => {
    const dataDir = join(work, `dd-${Math.random().toString(36).slice(2)}`);
    mkdirSync(dataDir);
    make(join(dataDir, 'c1'));
    const r = flannel('DEL', { subnetFile: writeSubnetEnv(work, SUBNET_ENV.v4()), dataDir });
    expect(r.out).toEqual({ code: 999, msg: `read ${join(dataDir, 'c1')}: ${cause}` });
    expect(r.status).toBe(1);
  });
});
