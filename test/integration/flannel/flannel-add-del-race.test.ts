// Issue 9 item 7: a runtime that times out an ADD sends a DEL for the same container while the ADD is
// still running. Through flannel this used to leak for good: the DEL replayed (and removed) the scratch
// file the ADD had just saved while the delegate was still creating the veth and allocating, so the
// runtime's final DEL found nothing to replay. Here the built dist/bin/flannel runs with our real bridge
// and host-local in a host netns this test made: 32 rounds of ADD ‖ DEL for one container ID each
// (several rounds at a time, each in its own pod netns, DEL started 0–35 ms after ADD), then the runtime's final DEL per round, and
// nothing may be left: no veth on the host side, no eth0 in any pod, no address in host-local's store,
// no file in flannel's dataDir (neither scratch nor lock file). ~15 s on a busy 2-core machine.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { DIST, ensureBuilt, guardRootNetns, SUBNET_ENV, tempDir, writeSubnetEnv } from './helpers.js';

const FLANNEL = join(DIST, 'flannel');
const ROUNDS = 32;
/** rounds in flight at once */
const PARALLEL = 4;

let work: string;
beforeAll(() => {
  ensureBuilt('flannel', 'bridge', 'host-local');
  work = tempDir('flannel-race');
});
guardRootNetns(() => work);

interface Run {
  status: number | null;
  stdout: string;
}

/** dist/bin/flannel inside `host`, asynchronously, so that an ADD and a DEL really overlap. */
function flannel(host: Netns, cmd: 'ADD' | 'DEL', id: string, pod: Netns, conf: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: cmd, CNI_CONTAINERID: id, CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: DIST };
    const child = spawn('ip', ['netns', 'exec', host.name, FLANNEL], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.on('error', reject);
    child.stdin.on('error', () => {}); // a plugin that exits early is judged by its status, not by EPIPE
    child.on('close', (status) => resolve({ status, stdout }));
    child.stdin.end(conf);
  });
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const linkNames = (ns: Netns): string[] => (JSON.parse(ns.exec(['ip', '-j', 'link']).stdout) as Array<{ ifname: string }>).map((l) => l.ifname);

describe.skipIf(!canUseNetns)('flannel: concurrent ADD and DEL of one container', () => {
  it(`${ROUNDS} rounds of ADD ‖ DEL, then the final DEL: nothing leaks`, async () => {
    const host = createNetns('flrh');
    // a pod netns per round: a reused one would let a later round's DEL remove an earlier leaked eth0
    const pods = Array.from({ length: ROUNDS }, (_, i) => createNetns(`flrp${i}`));
    const dataDir = join(work, 'flannel');
    const ipamDir = join(work, 'ipam');
    mkdirSync(work, { recursive: true });
    const conf = JSON.stringify({
      cniVersion: '0.3.1',
      name: 'cbr0',
      type: 'flannel',
      subnetFile: writeSubnetEnv(work, SUBNET_ENV.v4()),
      dataDir,
      ipam: { dataDir: ipamDir },
    });

    const failures: string[] = [];
    const round = async (i: number): Promise<void> => {
      const pod = pods[i]!;
      const id = `race-${i}`;
      const add = flannel(host, 'ADD', id, pod, conf);
      await delay((i * 5) % 40);
      const del = flannel(host, 'DEL', id, pod, conf);
      // either order is fine for the pair; only the final DEL's clean-up is asserted
      await Promise.all([add, del]);
      const fin = await flannel(host, 'DEL', id, pod, conf);
      if (fin.status !== 0) failures.push(`final DEL of ${id}: ${fin.stdout}`);
    };
    const lanes = Array.from({ length: PARALLEL }, async (_, lane) => {
      for (let i = lane; i < ROUNDS; i += PARALLEL) await round(i);
    });
    await Promise.all(lanes);

    expect(failures).toEqual([]);
    expect(linkNames(host).filter((n) => n.startsWith('veth'))).toEqual([]);
    for (const pod of pods) expect(linkNames(pod)).toEqual(['lo']);
    const store = join(ipamDir, 'cbr0');
    const reserved = existsSync(store) ? readdirSync(store).filter((f) => /^[0-9a-f.:]+$/.test(f)) : [];
    expect(reserved).toEqual([]);
    expect(existsSync(dataDir) ? readdirSync(dataDir) : []).toEqual([]);
  }, 120_000);
});
