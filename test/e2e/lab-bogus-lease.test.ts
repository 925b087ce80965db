// Bogus leases on the lab (issue 9, item 3): 2 hosts running our flanneld (vxlan) with etcd, 1 pod each
// through our CNI plugins. While both pods ping each other without pause, leases that are not what
// they claim are written into etcd by hand and then deleted: one at h2's VTEP address (a /21 at h2's
// /20 base), one with h2's VtepMAC from another PublicIP, a /24 inside h1's subnet, one with a broadcast
// PublicIP and one with a broadcast VtepMAC. Every flanneld refuses each with a log line, h1's and h2's
// entries for each other never change, and no ping is lost, during or after.
// Namespaces fl-e2b-<pid>-*, state in a temp dir; afterAll tears it all down.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { labCanRun, newLab } from './lab-harness.js';

const canRun = labCanRun();
const L = newLab({ name: 'bogus', prefix: 'fl-e2b', hosts: 2, pods: 1 });
const { run: lab, ns, inHost, flanneldLog } = L;

interface Host {
  subnet: string; // 10.23.16.0/20
  base: string; // 10.23.16.0
  mac: string;
  ip: string;
}

function host(i: number): Host {
  const subnet = lab(`lab_host_subnet ${i}`).stdout.trim();
  return { subnet, base: subnet.split('/')[0]!, mac: lab(`lab_vtep_mac ${i}`).stdout.trim(), ip: `192.168.100.${i}` };
}

/** What host i holds for peer p: route, neighbour and FDB entry. */
function entries(i: number, p: Host) {
  return {
    route: inHost(i, ['ip', 'route', 'show', p.subnet]).stdout.trim(),
    neigh: inHost(i, ['ip', 'neigh', 'show', p.base, 'dev', 'flannel.100']).stdout.trim(),
    fdb: inHost(i, ['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout.split('\n').filter((l) => l.startsWith(p.mac)).join('\n'),
  };
}

const key = (subnet: string) => `/coreos.com/network/subnets/${subnet.replace('/', '-')}`;
const value = (publicIP: string, mac: string) =>
  JSON.stringify({ PublicIP: publicIP, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 100, VtepMAC: mac } });

/** A continuous ping (every 0.2 s) from one pod; stop() ends it with SIGINT and returns the summary. */
function pinger(fromPod: string, dst: string): { stop(): Promise<{ sent: number; received: number; late: number; text: string }> } {
  const p: ChildProcess = spawn('ip', ['netns', 'exec', ns(fromPod), 'ping', '-O', '-i', '0.2', '-W', '1', dst], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  p.stdout!.on('data', (d) => (text += d));
  p.stderr!.on('data', (d) => (text += d));
  const exited = new Promise((r) => p.once('exit', r));
  return {
    async stop() {
      if (p.exitCode === null) p.kill('SIGINT');
      await exited;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(text);
      return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), late: (text.match(/no answer yet/g) ?? []).length, text };
    },
  };
}

describe.skipIf(!canRun)('bogus leases on the lab', () => {
  beforeAll(() => {
    lab('lab_up');
  }, 120_000);

  afterAll(() => {
    L.down();
  });

  it('are refused by every flanneld, and neither they nor their deletion disturb the healthy pods', async () => {
    const [h1, h2] = [host(1), host(2)];
    const [o1, o2, o3] = h1.base.split('.');
    const bogus: Array<[string, string]> = [
      [`${h2.base}/21`, value('192.168.100.77', '0a:00:00:00:00:77')], // h2's VTEP address
      ['10.100.0.0/20', value('192.168.100.78', h2.mac)], // h2's VtepMAC from another PublicIP
      [`${o1}.${o2}.${Number(o3) + 1}.0/24`, value('192.168.100.79', '0a:00:00:00:00:79')], // inside h1's subnet
      ['10.101.0.0/20', value('255.255.255.255', '0a:00:00:00:00:80')], // broadcast PublicIP
      ['10.102.0.0/20', value('192.168.100.81', 'ff:ff:ff:ff:ff:ff')], // broadcast VtepMAC
    ];
    const healthy = [entries(1, h2), entries(2, h1)];
    expect(healthy[0]!.neigh).toContain(h2.mac);
    expect(healthy[1]!.neigh).toContain(h1.mac);

    const dst1 = lab('lab_pod_ip 1 1').stdout.trim();
    const dst2 = lab('lab_pod_ip 2 1').stdout.trim();
    const pings = [pinger('h1p1', dst2), pinger('h2p1', dst1)];
    let stats: Awaited<ReturnType<ReturnType<typeof pinger>['stop']>>[] = [];
    try {
      // the pings work before anything is done
      await until(() => lab(`lab_ping 1 1 ${dst2}`, true).status === 0, 'h1p1 → h2p1', { ms: 10_000 });

      lab(bogus.map(([s, v]) => `lab_etcdctl put ${key(s)} '${v}' >/dev/null`).join(' && '));
      for (const i of [1, 2]) {
        await until(() => (flanneldLog(i).match(/refusing peer lease/g) ?? []).length >= bogus.length, `h${i}'s flanneld to refuse the ${bogus.length} leases`, { ms: 15_000 });
      }
      await new Promise((r) => setTimeout(r, 2000)); // pings go on while the bogus leases are present
      expect([entries(1, h2), entries(2, h1)]).toEqual(healthy);

      lab(bogus.map(([s]) => `lab_etcdctl del ${key(s)} >/dev/null`).join(' && '));
      for (const i of [1, 2]) {
        await until(() => (flanneldLog(i).match(/refused peer lease .* was removed/g) ?? []).length >= bogus.length, `h${i}'s flanneld to see the deletions`, { ms: 15_000 });
      }
      await new Promise((r) => setTimeout(r, 2000)); // and after they are gone
      expect([entries(1, h2), entries(2, h1)]).toEqual(healthy);
    } finally {
      stats = await Promise.all(pings.map((p) => p.stop()));
    }
    for (const s of stats) {
      expect(s.sent, s.text).toBeGreaterThan(10);
      // the last echo may still be in flight when ping is interrupted
      expect(s.sent - s.received, s.text).toBeLessThanOrEqual(1);
      expect(s.late, s.text).toBe(0);
    }
    // a broadcast VtepMAC never reaches the kernel, so there is nothing to retry or log again
    for (const i of [1, 2]) expect(flanneldLog(i)).not.toMatch(/failed to program lease/);
  }, 90_000);
});
