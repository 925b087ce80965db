// End to end on the lab (scripts/lab/lib.sh): etcd in an underlay namespace, our flanneld in 3 host
// namespaces, 2 pods per host added through our CNI plugins by our cnitool. Everything is in
// namespaces named fl-e2e-<pid>-*, state in a temp dir; afterAll tears it all down.
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { labCanRun, leaseKey, newLab, type LabHost } from './lab-harness.js';

const HOSTS = [1, 2, 3] as const;
const canRun = labCanRun(['tcpdump'], process.env.LAB_MANUAL_PODS !== '1');

const L = newLab({ name: 'vxlan', prefix: 'fl-e2e', hosts: 3, pods: 2 });
const { run: lab, ns, inHost, etcdGet, dir: LAB_DIR } = L;
/** Lab waits are longer than the helper's default: a daemon restart plus a full resync takes seconds. */
const LAB_WAIT = { ms: 20_000, every: 50 };

const entries = L.peerEntries;

describe.skipIf(!canRun)('the lab end to end', () => {
  const views = new Map<number, LabHost>();

  beforeAll(() => {
    lab('lab_up');
    for (const i of HOSTS) views.set(i, L.host(i));
  }, 180_000);

  afterAll(() => {
    L.down();
  });

  it('every pod pings every pod across hosts', () => {
    const r = lab('lab_ping_matrix', true);
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout.match(/\bok\b/g)).toHaveLength(36);
    expect(r.status).toBe(0);
  });

  it('the underlay carries UDP 8472 with VNI 100', async () => {
    const cap = spawn('ip', ['netns', 'exec', ns('ul'), 'tcpdump', '-i', 'br0', '-nn', '-l', '-c', '2', '-T', 'vxlan', 'udp port 8472'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    cap.stdout.on('data', (d) => (out += d));
    cap.stderr.on('data', (d) => (err += d));
    const exited = new Promise((r) => cap.once('exit', r));
    try {
      await until(() => err.includes('listening on'), 'tcpdump to listen', LAB_WAIT);
      const dst = lab('lab_pod_ip 2 1').stdout.trim();
      await until(() => {
        lab(`lab_ping 1 1 ${dst}`, true);
        return out.split('\n').filter((l) => l.includes('VXLAN')).length >= 2;
      }, 'captured VXLAN packets', LAB_WAIT);
      await exited;
    } finally {
      cap.kill();
    }
    const [h1, h2] = [views.get(1)!, views.get(2)!];
    expect(out).toMatch(new RegExp(`${h1.ip.replace(/\./g, '\\.')}\\.\\d+ > ${h2.ip.replace(/\./g, '\\.')}\\.8472: VXLAN, flags \\[I\\] \\(0x08\\), vni 100`));
  });

  it('subnet.env on each host has the exact lines', () => {
    const subnets = new Set<string>();
    for (const i of HOSTS) {
      const v = views.get(i)!;
      const text = readFileSync(join(LAB_DIR, `h${i}`, 'subnet.env'), 'utf8');
      const first = v.subnet.replace(/\.0\/20$/, '.1/20');
      expect(text).toBe(`FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=${first}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n`);
      const [a, b] = v.subnet.split('.').map(Number) as [number, number];
      expect(a).toBe(10);
      expect(b >= 10 && b <= 99).toBe(true);
      subnets.add(v.subnet);
      // the lease in etcd is ours, byte for byte as Go writes it
      const key = leaseKey(v.subnet);
      expect(etcdGet(key)).toBe(
        `{"PublicIP":"${v.ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":100,"VtepMAC":"${v.mac}"}}`,
      );
    }
    expect(subnets.size).toBe(3);
  });

  it('SIGKILL + restart of a flanneld keeps its subnet and VtepMAC and never removes its routes elsewhere', async () => {
    const h2 = views.get(2)!;
    // watch h1's and h3's routing tables for any deletion of h2's route while h2 restarts
    const monitors = [1, 3].map((i) => {
      const m = spawn('ip', ['-n', ns(`h${i}`), 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
      let text = '';
      m.stdout.on('data', (d) => (text += d));
      return { m, text: () => text };
    });
    try {
      // A monitor is surely subscribed once it has printed a change made after it started: add and
      // delete a probe route (TEST-NET-1, in a table nothing reads) until both monitors have shown it.
      const probe = ['unreachable', '192.0.2.1/32', 'table', '4242'];
      await until(() => {
        for (const i of [1, 3]) {
          for (const verb of ['add', 'del']) {
            const r = inHost(i, ['ip', 'route', verb, ...probe]);
            if (r.status !== 0) throw new Error(`ip route ${verb} ${probe.join(' ')} in h${i}: ${r.stderr}`);
          }
        }
        return monitors.every(({ text }) => text().includes('Deleted unreachable 192.0.2.1'));
      }, 'the route monitors to subscribe', LAB_WAIT);
      // an operator's address outside the flannel Network on flannel.100 survives the restart (Go's
      // rule: only other addresses inside the Network are removed); one inside it does not
      for (const a of ['192.0.2.7/32', '10.99.255.7/32']) {
        const r = inHost(2, ['ip', 'addr', 'add', a, 'dev', 'flannel.100']);
        if (r.status !== 0) throw new Error(`ip addr add ${a} in h2: ${r.stderr}`);
      }
      const subnetEnv = join(LAB_DIR, 'h2', 'subnet.env');
      const before = statSync(subnetEnv).mtimeMs;
      lab('lab_kill flanneld-h2 KILL');
      lab('lab_flanneld_start 2');
      await until(() => statSync(subnetEnv, { throwIfNoEntry: false })?.mtimeMs !== before, 'the restarted flanneld to rewrite subnet.env', LAB_WAIT);
      const after = L.host(2);
      expect(after.subnet).toBe(h2.subnet);
      expect(after.mac).toBe(h2.mac);
      expect(etcdGet(leaseKey(h2.subnet))).toContain(`"VtepMAC":"${h2.mac}"`);
      await until(() => lab('lab_peer_routes 2').stdout.trim() === '2', 'h2 to hold its 2 peers', LAB_WAIT);
      const dst = lab('lab_pod_ip 2 1').stdout.trim();
      expect(lab(`lab_ping 1 1 ${dst}`, true).status).toBe(0);
      for (const { text } of monitors) expect(text()).not.toMatch(new RegExp(`Deleted ${h2.subnet.replace(/\./g, '\\.')}`));
      for (const i of [1, 3]) expect(entries(i, h2).route).toContain(`via ${h2.gw} dev flannel.100 onlink`);
      const addrs = inHost(2, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'flannel.100']).stdout;
      expect(addrs).toContain('192.0.2.7/32');
      expect(addrs).not.toContain('10.99.255.7/32');
      expect(addrs).toContain(`${h2.gw}/32`);
    } finally {
      for (const { m } of monitors) m.kill();
    }
  });

  it('deleting flannel.100 on a host is healed with the same MAC and all peers back', async () => {
    const h1 = views.get(1)!;
    inHost(1, ['ip', 'link', 'del', 'flannel.100']);
    await until(() => lab('lab_peer_routes 1', true).stdout.trim() === '2', 'flannel.100 back on h1 with its 2 peer routes', LAB_WAIT);
    expect(lab('lab_vtep_mac 1').stdout.trim()).toBe(h1.mac);
    for (const p of [2, 3]) {
      const e = entries(1, views.get(p)!);
      expect(e.neigh).toMatch(/PERMANENT/);
      expect(e.fdb).toContain(`dst ${views.get(p)!.ip}`);
    }
    const dst = lab('lab_pod_ip 3 2').stdout.trim();
    await until(() => lab(`lab_ping 1 1 ${dst}`, true).status === 0, 'h1p1 → h3p2 to answer', LAB_WAIT);
  });

  it("deleting a lease in etcd removes exactly that peer's route, neighbour and FDB entry everywhere", async () => {
    const [h1, h2, h3] = [views.get(1)!, views.get(2)!, views.get(3)!];
    for (const i of [1, 2]) {
      const e = entries(i, h3);
      expect(e.route && e.neigh && e.fdb).toBeTruthy();
    }
    // h3's own flanneld would re-acquire its lease at once: stop it first (SIGTERM leaves its lease in
    // etcd and its kernel state in place, as Go's flanneld does), then delete the lease
    lab('lab_kill flanneld-h3 TERM');
    expect(entries(1, h3).route).toContain(`via ${h3.gw}`);
    lab(`lab_etcdctl del /coreos.com/network/subnets/${h3.subnet.replace('/', '-')}`);
    for (const i of [1, 2]) {
      await until(() => {
        const e = entries(i, h3);
        return e.route === '' && e.neigh === '' && e.fdb === '';
      }, `h${i} to drop h3`, LAB_WAIT);
    }
    // the other peer is untouched
    expect(entries(1, h2).route).toContain(`via ${h2.gw}`);
    expect(entries(1, h2).fdb).toContain(h2.mac);
    expect(entries(2, h1).route).toContain(`via ${h1.gw}`);
    expect(entries(2, h1).neigh).toMatch(/PERMANENT/);
    // h3 comes back: it re-acquires its previous subnet (subnet.env hint) and the others re-add it
    lab('lab_flanneld_start 3');
    for (const i of [1, 2]) {
      await until(() => entries(i, h3).route.includes(`via ${h3.gw}`) && entries(i, h3).fdb !== '', `h${i} to re-add h3`, LAB_WAIT);
    }
  });
});
