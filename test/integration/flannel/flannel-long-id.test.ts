// A container ID too long for a file name (NAME_MAX, 255 bytes) can never be saved under the dataDir.
// ADD must refuse it with one error and leave nothing (the fuzz test found a lock file left behind that
// every later DEL failed on); DEL of such an ID succeeds with nothing to do.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, ensureBuilt, SUBNET_ENV, tempDir, writeSubnetEnv } from './helpers.js';

const FLANNEL = join(DIST, 'flannel');
let work: string;

beforeAll(() => {
  ensureBuilt('flannel');
  work = tempDir('flannel-long-id');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function flannel(cmd: 'ADD' | 'DEL', id: string, dataDir: string): { status: number | null; stdout: string } {
  const r = spawnSync(FLANNEL, [], {
    input: JSON.stringify({ cniVersion: '1.0.0', name: 'cbr0', type: 'flannel', subnetFile: writeSubnetEnv(work, SUBNET_ENV.v4()), dataDir }),
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: '/var/run/netns/flannel-long-id-none', CNI_IFNAME: 'eth0', CNI_PATH: DIST },
    encoding: 'utf8',
    timeout: 10_000,
  });
  return { status: r.status, stdout: r.stdout };
}

describe('flannel: a container ID too long for a file name', () => {
  it('ADD refuses it before anything is written; DEL then succeeds and leaves nothing', () => {
    const id = `c${'x'.repeat(300)}`;
    const dataDir = join(work, 'dd');
    mkdirSync(dataDir); // other pods' files live here: DEL must take its lock and find nothing
    const add = flannel('ADD', id, dataDir);
    expect(add.status).toBe(1);
    expect(JSON.parse(add.stdout)).toEqual({ code: 999, msg: `failed to delegate add: open ${dataDir}/${id}: file name too long` });
    expect(existsSync(dataDir) ? readdirSync(dataDir) : []).toEqual([]);

    const del = flannel('DEL', id, dataDir);
    expect(del.stdout).toBe('');
    expect(del.status).toBe(0);
    expect(existsSync(dataDir) ? readdirSync(dataDir) : []).toEqual([]);
  });
});
