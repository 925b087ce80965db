// Continuous repair in the lab (issue 11): 2 hosts running our flanneld (vxlan) with etcd, 1 pod each
// through our CNI plugins. On h1, h2's route, neighbour and FDB entry are deleted one at a time, then
// flannel.100's MTU is changed; each is back within 1 s, h1p1's pings to h2p1 recover, and h1's
// flanneld logs one line per repair.
//
// flanneld's kernel adapter decides how the repair is triggered: with netlink (the native shim loads),
// kernel events alone (the periodic round stays at its 60 s); with iproute2 (no events, FLANNEL_KERNEL=
// iproute2 or no shim) the periodic reconcile, which the test then sets to 300 ms
// (FLANNELD_RECONCILE_INTERVAL) so that the 1 s budget holds there too.
// Namespaces fl-e2r-<pid>-*, state in a temp dir; afterAll tears it all down.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { kernelBackend } from '../../shared/kernel/create.js';
import { labCanRun, leaseKey, newLab, type LabHost } from './lab-harness.js';

const canRun = labCanRun();
const L = newLab({ name: 'repair', prefix: 'fl-e2r', hosts: 2, pods: 1 });
const adapter = canRun ? kernelBackend(L.env).name : 'iproute2';
if (adapter !== 'netlink') L.env.FLANNELD_RECONCILE_INTERVAL = '300ms';
const { run: lab, flanneldLog, inHost } = L;

/** The repair budget of issue 11. */
const RESTORED = { ms: 1000, every: 10 };

describe.skipIf(!canRun)('continuous repair on the lab', () => {
  beforeAll(() => {
    lab('lab_up');
  }, 120_000);

  afterAll(() => {
    L.down();
  });

  it('a deleted route, neighbour and FDB entry and a changed MTU are each repaired within 1 s, and pings recover', async () => {
    expect(flanneldLog(1)).toContain(`Kernel programming through ${adapter}`);
    const [h1, h2] = [L.host(1), L.host(2)];
    const dst = lab('lab_pod_ip 2 1').stdout.trim();
    await until(() => lab(`lab_ping 1 1 ${dst}`, true).status === 0, 'h1p1 → h2p1 before any damage', { ms: 10_000 });
    const healthy = L.peerEntries(1, h2);
    expect(healthy.route).toContain(`via ${h2.gw} dev flannel.100 onlink`);
    expect(healthy.neigh).toContain(h2.mac);
    expect(healthy.fdb).toContain(`dst ${h2.ip}`);

    const ip = (...argv: string[]) => {
      const r = inHost(1, argv);
      if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    };
    const pinger = L.ping('h1p1', dst);
    const took: Record<string, number> = {};
    /** damages h1, waits (1 s budget) until `fixed`, then for fresh ping replies */
    const repair = async (what: string, damage: () => void, fixed: () => boolean) => {
      const replies = pinger.replies();
      damage();
      const t0 = Date.now();
      await until(fixed, `${what} repaired within 1 s`, RESTORED);
      took[what] = Date.now() - t0;
      await until(() => pinger.replies() >= replies + 2, `h1p1's pings to recover after ${what}`, { ms: 5000 });
    };
    const same = (k: keyof ReturnType<typeof L.peerEntries>, h: LabHost) => () => L.peerEntries(1, h)[k] === healthy[k];
    try {
      await repair('route', () => ip('ip', 'route', 'del', h2.subnet, 'dev', 'flannel.100'), same('route', h2));
      await repair('neighbour', () => ip('ip', 'neigh', 'del', h2.gw, 'dev', 'flannel.100'), same('neigh', h2));
      await repair('fdb', () => ip('bridge', 'fdb', 'del', h2.mac, 'dev', 'flannel.100', 'dst', h2.ip, 'self'), same('fdb', h2));
      await repair('mtu', () => ip('ip', 'link', 'set', 'flannel.100', 'mtu', '1300'), () => /mtu 1450 /.test(inHost(1, ['ip', 'link', 'show', 'flannel.100']).stdout));
    } finally {
      await pinger.stop();
    }
    console.log(`repair times on ${adapter} (ms): ${JSON.stringify(took)}`);

    const said = [
      `Repaired route ${h2.subnet} via ${h2.gw} dev flannel.100 (was missing)`,
      `Repaired neighbour ${h2.gw} lladdr ${h2.mac} dev flannel.100 (was `,
      `Repaired fdb ${h2.mac} dst ${h2.ip} dev flannel.100 (was missing)`,
      'Repaired device flannel.100 (was mtu 1300)',
    ];
    await until(() => said.every((l) => flanneldLog(1).includes(l)), 'a log line per repair', { ms: 5000 });
    // h2 saw none of it
    expect(flanneldLog(2)).not.toMatch(/Repaired/);
  }, 90_000);

  it.skipIf(adapter !== 'netlink' || !existsSync('/usr/bin/strace'))('100 lease events program the kernel without one exec (strace -f -e trace=execve)', async () => {
    const pid = readFileSync(join(L.dir, 'pids', 'flanneld-h1.pid'), 'utf8').trim();
    const trace = join(L.dir, 'execve.trace');
    const strace = spawn('strace', ['-f', '-qq', '-e', 'trace=execve', '-o', trace, '-p', pid], { stdio: ['ignore', 'ignore', 'pipe'] });
    // a subnet no host holds: 10.99.0.0/20 is SubnetMax, handed out last
    const subnet = '10.99.0.0/20';
    const key = leaseKey(subnet);
    const value = JSON.stringify({ PublicIP: '192.168.100.77', PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 100, VtepMAC: '0a:77:00:00:00:01' } });
    const routed = () => inHost(1, ['ip', 'route', 'show', subnet]).stdout.includes('flannel.100');
    try {
      await until(() => existsSync(trace), 'strace attached', { ms: 5000, every: 20 });
      for (let i = 0; i < 50; i++) {
        lab(`lab_etcdctl put ${key} '${value}' >/dev/null`);
        await until(routed, `event ${2 * i + 1}: the lease's route`, { ms: 5000, every: 5 });
        lab(`lab_etcdctl del ${key} >/dev/null`);
        await until(() => !routed(), `event ${2 * i + 2}: the route gone`, { ms: 5000, every: 5 });
      }
    } finally {
      strace.kill('SIGINT');
      await new Promise((r) => strace.once('exit', r));
    }
    // the traffic rules' periodic check may exec iptables/nft (issue 11 allows it); nothing else may run
    const execs = readFileSync(trace, 'utf8').split('\n').filter((l) => l.includes('execve(') && !/execve\("[^"]*\/(ip6?tables[^"]*|nft)"/.test(l));
    expect(execs).toEqual([]);
  }, 120_000);
});

