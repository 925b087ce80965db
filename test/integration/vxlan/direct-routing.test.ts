// DirectRouting on the real kernel. Hosts h1 and h2 share the underlay bridge (one L2 segment); h3 sits
// on another segment behind a router namespace. With DirectRouting on every host:
// - h1 ↔ h2: a plain route `<subnet> via <PublicIP>`, no neighbour or FDB entry, nothing through
//   flannel.100, pods and flannel addresses reachable;
// - h1 ↔ h3: the PublicIP is only reachable through the router, so the usual VXLAN entries, and pods
//   reachable over flannel.100 across the routed underlay.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { configureEth0, createHost, createPod, createUnderlay, peerLease, ping, startFlannel, txPackets, type Flannel } from './hosts.js';
import { until } from '../../helpers/until.js';

interface Host {
  ns: Netns;
  pod: Netns;
  flannel: Flannel;
  subnet: string;
  publicIP: string;
}

const BACKEND = { Type: 'vxlan', VNI: 100, DirectRouting: true };

describe.skipIf(!canUseNetns)('vxlan backend, DirectRouting', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'vxlan-dr-'));
  const hosts: Host[] = [];

  beforeAll(async () => {
    const ul = createUnderlay();
    // the router: one leg on br0 (192.168.77.254), one to h3's segment (192.168.78.254)
    const rt = createNetns('rt');
    ul.exec(['ip', 'link', 'add', 'ulrt', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', rt.name]);
    ul.exec(['ip', 'link', 'set', 'ulrt', 'master', 'br0', 'up']);
    rt.exec(['ip', 'addr', 'add', '192.168.77.254/24', 'dev', 'eth0']);
    rt.exec(['ip', 'link', 'set', 'eth0', 'up']);
    rt.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);

    const h1 = createHost(ul, { cidr: '192.168.77.1/24', gateway: '192.168.77.254' });
    const h2 = createHost(ul, { cidr: '192.168.77.2/24', gateway: '192.168.77.254' });
    const h3 = createNetns('h');
    rt.exec(['ip', 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h3.name]);
    rt.exec(['ip', 'addr', 'add', '192.168.78.254/24', 'dev', 'eth1']);
    rt.exec(['ip', 'link', 'set', 'eth1', 'up']);
    configureEth0(h3, { cidr: '192.168.78.3/24', gateway: '192.168.78.254' });

    for (const [ns, subnet, publicIP] of [
      [h1, '10.10.16.0/20', '192.168.77.1'],
      [h2, '10.10.32.0/20', '192.168.77.2'],
      [h3, '10.10.48.0/20', '192.168.78.3'],
    ] as const) {
      const flannel = await startFlannel(ns, { subnet, backend: BACKEND, network: '10.10.0.0/16', stateDir: join(stateDir, ns.name) });
      const pod = createPod(ns, { gateway: subnet.replace('.0/', '.1/'), cidr: subnet.replace('.0/', '.2/') });
      hosts.push({ ns, pod, flannel, subnet, publicIP });
    }
    // every host gets the other two leases, as etcd would hand them out
    for (const h of hosts) {
      h.flannel.manager.push(
        hosts.filter((p) => p !== h).map((p) => ({ type: 'added' as const, lease: peerLease({ subnet: p.subnet, publicIP: p.publicIP, mac: p.flannel.mac! }) })),
      );
    }
    for (const h of hosts) await until(() => h.flannel.nw.knownPeers().size === 2, 'each host to know both peers');
  });

  afterAll(async () => {
    await Promise.allSettled(hosts.map((h) => h.flannel.stop()));
    cleanupNetns();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const routeTo = (h: Host, dst: string) => h.ns.exec(['ip', 'route', 'show', 'exact', dst]).stdout.trim();

  it('a peer on the same L2 gets a plain route via its PublicIP and no VXLAN entries', () => {
    const [h1, h2] = hosts as [Host, Host];
    expect(routeTo(h1, '10.10.32.0/20')).toMatch(/^10\.10\.32\.0\/20 via 192\.168\.77\.2 dev eth0/);
    expect(routeTo(h2, '10.10.16.0/20')).toMatch(/^10\.10\.16\.0\/20 via 192\.168\.77\.1 dev eth0/);
    expect(h1.ns.exec(['ip', 'neigh', 'show', 'dev', 'flannel.100']).stdout).not.toContain('10.10.32.0');
    expect(h1.ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout).not.toContain(h2.flannel.mac!);
    expect(h1.flannel.logs.join('\n')).toContain('adding direct route to subnet: 10.10.32.0/20 PublicIP: 192.168.77.2');
  });

  it('a peer NOT on the same L2 still gets the VXLAN route, neighbour and FDB entry', () => {
    const [h1, , h3] = hosts as [Host, Host, Host];
    expect(routeTo(h1, '10.10.48.0/20')).toMatch(/^10\.10\.48\.0\/20 via 10\.10\.48\.0 dev flannel\.100 onlink/);
    expect(h1.ns.exec(['ip', 'neigh', 'show', 'dev', 'flannel.100']).stdout).toMatch(new RegExp(`10\\.10\\.48\\.0 lladdr ${h3.flannel.mac} PERMANENT`));
    expect(h1.ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout).toMatch(new RegExp(`${h3.flannel.mac} dst 192\\.168\\.78\\.3 self permanent`));
    // and h3 sees both h1 and h2 behind the router: VXLAN to each
    expect(routeTo(h3, '10.10.16.0/20')).toMatch(/via 10\.10\.16\.0 dev flannel\.100 onlink/);
    expect(routeTo(h3, '10.10.32.0/20')).toMatch(/via 10\.10\.32\.0 dev flannel\.100 onlink/);
  });

  it('pods and flannel addresses on the same L2 reach each other without VXLAN', async () => {
    const [h1, h2] = hosts as [Host, Host];
    const tx = txPackets(h1.ns, 'flannel.100');
    await until(() => ping(h1.pod, '10.10.32.2'), "ping(h1.pod, '10.10.32.2')");
    expect(ping(h2.pod, '10.10.16.2')).toBe(true);
    expect(ping(h1.ns, '10.10.32.0', '10.10.16.0')).toBe(true);
    expect(txPackets(h1.ns, 'flannel.100')).toBe(tx);
  });

  it('pods behind the router are reached over VXLAN', async () => {
    const [h1, h2, h3] = hosts as [Host, Host, Host];
    const tx = txPackets(h1.ns, 'flannel.100');
    await until(() => ping(h1.pod, '10.10.48.2'), "ping(h1.pod, '10.10.48.2')");
    expect(ping(h3.pod, '10.10.32.2')).toBe(true);
    expect(ping(h2.pod, '10.10.48.2')).toBe(true);
    expect(txPackets(h1.ns, 'flannel.100')).toBeGreaterThan(tx);
  });

  it('removing a direct peer removes its plain route', async () => {
    const [h1, h2] = hosts as [Host, Host];
    h1.flannel.manager.push([{ type: 'removed', lease: peerLease({ subnet: h2.subnet, publicIP: h2.publicIP, mac: h2.flannel.mac! }) }]);
    await until(() => routeTo(h1, '10.10.32.0/20') === '', "routeTo(h1, '10.10.32.0/20') === ''");
    expect(routeTo(h1, '10.10.48.0/20')).toMatch(/dev flannel\.100 onlink/);
  });
});
