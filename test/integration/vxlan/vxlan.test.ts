// The vxlan backend on the real kernel: two host namespaces on a bridge underlay, each running the
// backend (no etcd: leases are handed over by a FakeSubnetManager), traffic between the hosts'
// flannel.100 addresses crosses VXLAN. Also: healing a deleted device, and 5000 peers in one batch.
import { NOOP_LOGGER } from '../../../shared/log.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKernel } from '../../../shared/kernel/iproute2/kernel.js';
import type { Kernel } from '../../../shared/kernel/kernel.js';
import { parseIP } from '../../../shared/net/ip.js';
import { createVxlanBackend } from '../../../daemon/backend/vxlan/vxlan.js';
import type { VxlanNetwork } from '../../../daemon/backend/vxlan/network.js';
import type { LeaseEvent } from '../../../daemon/lease.js';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { FakeSubnetManager, vxlanLease } from '../../helpers/fake-subnet-manager.js';
import { until } from '../../helpers/until.js';

const BACKEND = { Type: 'vxlan', VNI: 100, Port: 8472 };

interface Host {
  ns: Netns;
  kernel: Kernel;
  manager: FakeSubnetManager;
  nw: VxlanNetwork;
  ac: AbortController;
  run: Promise<void>;
  mac: string;
  subnet: string;
  ip: string;
}

describe.skipIf(!canUseNetns)('vxlan backend on the real kernel', () => {
  let ul: Netns;
  const hosts: Host[] = [];
  const stateDir = mkdtempSync(join(tmpdir(), 'vxlan-int-'));

  beforeAll(async () => {
    ul = createNetns('ul');
    ul.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge']);
    ul.exec(['ip', 'link', 'set', 'br0', 'up']);
    for (const i of [1, 2]) {
      const ns = createNetns(`h${i}`);
      ul.exec(['ip', 'link', 'add', `ul${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
      ul.exec(['ip', 'link', 'set', `ul${i}`, 'master', 'br0', 'up']);
      ns.exec(['ip', 'addr', 'add', `192.168.77.${i}/24`, 'dev', 'eth0']);
      ns.exec(['ip', 'link', 'set', 'eth0', 'up']);
      const kernel = createKernel().inNetns(ns.path);
      const subnet = i === 1 ? '10.10.16.0/20' : '10.10.32.0/20';
      const manager = new FakeSubnetManager(subnet);
      const ac = new AbortController();
      const eth0 = (await kernel.getLink('eth0'))!;
      const backend = createVxlanBackend({
        subnetManager: manager,
        kernel,
        stateDir: join(stateDir, `h${i}`),
        logger: NOOP_LOGGER,
        extIface: { iface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu }, ifaceAddr: parseIP(`192.168.77.${i}`), extAddr: parseIP(`192.168.77.${i}`) },
      });
      const nw = (await backend.registerNetwork(ac.signal, { enableIPv4: true, enableIPv6: false, backend: BACKEND })) as VxlanNetwork;
      const mac = (manager.acquired[0]!.backendData as { VtepMAC: string }).VtepMAC;
      nw.timing.pollInterval = 100;
      hosts.push({ ns, kernel, manager, nw, ac, run: nw.run(ac.signal), mac, subnet, ip: `192.168.77.${i}` });
    }
    // hand each host the other's lease, as etcd would
    const [h1, h2] = hosts as [Host, Host];
    h1.manager.push([{ type: 'added', lease: vxlanLease(h2.subnet, h2.ip, h2.mac) }]);
    h2.manager.push([{ type: 'added', lease: vxlanLease(h1.subnet, h1.ip, h1.mac) }]);
  });

  afterAll(async () => {
    for (const h of hosts) h.ac.abort();
    await Promise.allSettled(hosts.map((h) => h.run));
    cleanupNetns();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const ping = (from: Host, src: string, dst: string) =>
    from.ns.exec(['ping', '-c', '1', '-W', '1', '-I', src, dst], { allowFail: true }).status === 0;

  it('creates flannel.100 as flannel does and programs the peer', async () => {
    const [h1, h2] = hosts as [Host, Host];
    const d = h1.ns.exec(['ip', '-d', 'link', 'show', 'flannel.100']).stdout;
    expect(d).toMatch(/mtu 1450 /);
    expect(d).toMatch(/vxlan id 100 local 192\.168\.77\.1 dev eth0 .*dstport 8472 nolearning/);
    expect(d).toContain(`link/ether ${h1.mac}`);
    expect(h1.ns.exec(['ip', '-4', 'addr', 'show', 'dev', 'flannel.100']).stdout).toMatch(/inet 10\.10\.16\.0\/32/);
    await until(() => h1.ns.exec(['ip', 'route', 'show', 'dev', 'flannel.100']).stdout.includes('10.10.32.0/20'), 'h1: route 10.10.32.0/20 on flannel.100 present');
    expect(h1.ns.exec(['ip', 'route', 'show', 'dev', 'flannel.100']).stdout).toMatch(/10\.10\.32\.0\/20 via 10\.10\.32\.0 onlink/);
    expect(h1.ns.exec(['ip', 'neigh', 'show', 'dev', 'flannel.100']).stdout).toMatch(new RegExp(`10\\.10\\.32\\.0 lladdr ${h2.mac} PERMANENT`));
    expect(h1.ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout).toMatch(new RegExp(`${h2.mac} dst 192\\.168\\.77\\.2 self permanent`));
  });

  it('carries traffic between the hosts over VXLAN', async () => {
    const [h1, h2] = hosts as [Host, Host];
    await until(() => ping(h1, '10.10.16.0', '10.10.32.0'), "ping(h1, '10.10.16.0', '10.10.32.0')");
    expect(ping(h2, '10.10.32.0', '10.10.16.0')).toBe(true);
  });

  it('heals a deleted flannel.100: same MAC, peer back, traffic flows', async () => {
    const [h1, h2] = hosts as [Host, Host];
    h2.ns.exec(['ip', 'link', 'del', 'flannel.100']);
    expect(ping(h1, '10.10.16.0', '10.10.32.0')).toBe(false);
    await until(() => h2.ns.exec(['ip', 'route', 'show', 'dev', 'flannel.100'], { allowFail: true }).stdout.includes('10.10.16.0/20'), 'h2: route 10.10.16.0/20 on flannel.100 present');
    expect(h2.ns.exec(['ip', 'link', 'show', 'flannel.100']).stdout).toContain(`link/ether ${h2.mac}`);
    await until(() => ping(h1, '10.10.16.0', '10.10.32.0'), "ping(h1, '10.10.16.0', '10.10.32.0')");
  });

  it('removes exactly the removed peer', async () => {
    const [h1] = hosts as [Host];
    h1.manager.push([{ type: 'added', lease: vxlanLease('10.10.48.0/20', '192.168.77.9', '0a:00:00:00:00:09') }]);
    await until(() => h1.ns.exec(['ip', 'route', 'show', 'dev', 'flannel.100']).stdout.includes('10.10.48.0/20'), 'h1: route 10.10.48.0/20 on flannel.100 present');
    h1.manager.push([{ type: 'removed', lease: vxlanLease('10.10.48.0/20', '192.168.77.9', '0a:00:00:00:00:09') }]);
    await until(() => !h1.ns.exec(['ip', 'route', 'show', 'dev', 'flannel.100']).stdout.includes('10.10.48.0/20'), 'h1: route 10.10.48.0/20 on flannel.100 gone');
    expect(h1.ns.exec(['ip', 'neigh', 'show', 'dev', 'flannel.100']).stdout).not.toContain('10.10.48.0');
    expect(h1.ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout).not.toContain('0a:00:00:00:00:09');
    expect(h1.ns.exec(['ip', 'route', 'show', 'dev', 'flannel.100']).stdout).toContain('10.10.32.0/20');
    expect(ping(h1, '10.10.16.0', '10.10.32.0')).toBe(true);
  });

  it('programs 5000 peers from one batch', async () => {
    const [h1] = hosts as [Host];
    const batch: LeaseEvent[] = [];
    for (let i = 0; i < 5000; i++) {
      const sub = `10.${100 + (i >> 8)}.${i & 0xff}.0/24`;
      const mac = `0a:01:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      batch.push({ type: 'added', lease: vxlanLease(sub, `172.16.${i >> 8}.${i & 0xff}`, mac) });
    }
    h1.manager.push(batch);
    await until(() => h1.nw.knownPeers().size >= 5001, 'h1.nw.knownPeers().size >= 5001', { ms: 30_000 });
    const routes = h1.ns.exec(['ip', 'route', 'show', 'dev', 'flannel.100']).stdout.trim().split('\n');
    expect(routes.length).toBe(5001);
    expect(h1.ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout.trim().split('\n').length).toBeGreaterThanOrEqual(5001);
  });
});
