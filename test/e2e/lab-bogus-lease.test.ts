// Bogus leases on the lab (issue 9, item 3): 2 hosts running our flanneld (vxlan) with etcd, 1 pod each
// through our CNI plugins. While both pods ping each other without pause, leases that are not what
// they claim are written into etcd by hand and then deleted: one at h2's VTEP address (a /21 at h2's
// /20 base), one with h2's VtepMAC from another PublicIP, a /24 inside h1's subnet, one with a broadcast
// PublicIP and one with a broadcast VtepMAC. Every flanneld refuses each with a log line, h1's and h2's
// entries for each other never change, and no ping is lost, during or after.
// Namespaces fl-e2b-<pid>-*, state in a temp dir; afterAll tears it all down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { labCanRun, leaseKey, newLab, type PingSummary } from './lab-harness.js';

const canRun = labCanRun();
const L = newLab({ name: 'bogus', prefix: 'fl-e2b', hosts: 2, pods: 1 });
const { run: lab, flanneldLog } = L;

const [host, entries] = [L.host, L.peerEntries];
const value = (publicIP: string, mac: string) =>
  JSON.stringify({ PublicIP: publicIP, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 100, VtepMAC: mac } });

describe.skipIf(!canRun)('bogus leases on the lab', () => {
  beforeAll(() => {
    lab('lab_up');
  }, 120_000);

  afterAll(() => {
    L.down();
  });

  it('are refused by every flanneld, and neither they nor their deletion disturb the healthy pods', async () => {
    const [h1, h2] = [host(1), host(2)];
    const [o1, o2, o3] = h1.gw.split('.');
    const bogus: Array<[string, string]> = [
      [`${h2.gw}/21`, value('192.168.100.77', '0a:00:00:00:00:77')], // h2's VTEP address
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
    const pings = [L.ping('h1p1', dst2), L.ping('h2p1', dst1)];
    let stats: PingSummary[] = [];
    try {
      // the pings work before anything is done
      await until(() => lab(`lab_ping 1 1 ${dst2}`, true).status === 0, 'h1p1 → h2p1', { ms: 10_000 });

      lab(bogus.map(([s, v]) => `lab_etcdctl put ${leaseKey(s)} '${v}' >/dev/null`).join(' && '));
      for (const i of [1, 2]) {
        await until(() => (flanneldLog(i).match(/refusing peer lease/g) ?? []).length >= bogus.length, `h${i}'s flanneld to refuse the ${bogus.length} leases`, { ms: 15_000 });
      }
      await new Promise((r) => setTimeout(r, 2000)); // pings go on while the bogus leases are present
      expect([entries(1, h2), entries(2, h1)]).toEqual(healthy);

      lab(bogus.map(([s]) => `lab_etcdctl del ${leaseKey(s)} >/dev/null`).join(' && '));
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
