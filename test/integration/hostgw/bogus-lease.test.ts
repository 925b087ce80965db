// host-gw on the real kernel (issue 9, item 4): a /24 inside h1's own /20 from another PublicIP must
// not make h1 route part of its own pod subnet away. h1 and h2 run the backend, a pod on each; h1 is
// handed the bogus lease and then its deletion: h1 → its own pod and pod → pod keep working.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKernel } from '../../../shared/kernel/iproute2/kernel.js';
import { parseIP, parseNet } from '../../../shared/net/ip.js';
import { createHostgwBackend } from '../../../daemon/backend/hostgw/hostgw.js';
import type { HostgwNetwork } from '../../../daemon/backend/hostgw/network.js';
import type { Lease, LeaseEvent } from '../../../daemon/lease.js';
import { canUseNetns, cleanupNetns, type Netns } from '../../helpers/netns.js';
import { FakeSubnetManager, linesLogger } from '../../helpers/fake-subnet-manager.js';
import { createHost, createPod, createUnderlay, ping, pushLeases } from '../vxlan/hosts.js';
import { until } from '../../helpers/until.js';

interface Flannel {
  manager: FakeSubnetManager;
  nw: HostgwNetwork;
  logs: string[];
  ac: AbortController;
  run: Promise<void>;
}

async function startFlannel(ns: Netns, subnet: string, ip: string): Promise<Flannel> {
  const kernel = createKernel().inNetns(ns.path);
  const eth0 = (await kernel.getLink('eth0'))!;
  const manager = new FakeSubnetManager(subnet);
  const logs: string[] = [];
  const ac = new AbortController();
  const nw = (await createHostgwBackend({
    subnetManager: manager,
    kernel,
    stateDir: '/nonexistent',
    logger: linesLogger(logs),
    extIface: { iface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu }, ifaceAddr: parseIP(ip), extAddr: parseIP(ip) },
  }).registerNetwork(ac.signal, { enableIPv4: true, enableIPv6: false, backend: { Type: 'host-gw' }, network: parseNet('10.10.0.0/16') })) as HostgwNetwork;
  nw.timing.checkInterval = 200;
  return { manager, nw, logs, ac, run: nw.run(ac.signal) };
}

const hgw = (subnet: string, ip: string): Lease => ({
  enableIPv4: true,
  enableIPv6: false,
  subnet: parseNet(subnet),
  attrs: { publicIP: parseIP(ip), backendType: 'host-gw' },
  expiration: Date.now() + 86_400_000,
});

describe.skipIf(!canUseNetns)('host-gw: a lease inside our own subnet on the real kernel', () => {
  const flannels: Flannel[] = [];
  let h1: Netns;
  let pod1: Netns;
  let f1: Flannel;

  const pushH1 = (batch: LeaseEvent[]) => pushLeases(f1, batch);

  beforeAll(async () => {
    const ul = createUnderlay();
    h1 = createHost(ul, { cidr: '192.168.77.1/24' });
    const h2 = createHost(ul, { cidr: '192.168.77.2/24' });
    pod1 = createPod(h1, { gateway: '10.10.16.1/20', cidr: '10.10.16.2/20' });
    createPod(h2, { gateway: '10.10.32.1/20', cidr: '10.10.32.2/20' });
    f1 = await startFlannel(h1, '10.10.16.0/20', '192.168.77.1');
    const f2 = await startFlannel(h2, '10.10.32.0/20', '192.168.77.2');
    flannels.push(f1, f2);
    f2.manager.push([{ type: 'added', lease: hgw('10.10.16.0/20', '192.168.77.1') }]);
    await pushH1([{ type: 'added', lease: hgw('10.10.32.0/20', '192.168.77.2') }]);
    await until(() => ping(pod1, '10.10.32.2'), "ping(pod1, '10.10.32.2')");
  });

  afterAll(async () => {
    for (const f of flannels) f.ac.abort();
    await Promise.allSettled(flannels.map((f) => f.run));
    cleanupNetns();
  });

  it('is not routed while present (h1 still reaches its own pod) and its deletion changes nothing', async () => {
    const bogus = hgw('10.10.16.0/24', '192.168.77.2');
    expect(ping(h1, '10.10.16.2')).toBe(true);
    await pushH1([{ type: 'added', lease: bogus }]);
    expect(h1.exec(['ip', 'route', 'show', '10.10.16.0/24']).stdout.trim()).toBe('');
    expect(ping(h1, '10.10.16.2')).toBe(true);
    expect(ping(pod1, '10.10.32.2')).toBe(true);
    expect(f1.logs.join('\n')).toMatch(/refusing peer lease 10\.10\.16\.0\/24 \(PublicIP 192\.168\.77\.2\): its subnet 10\.10\.16\.0\/24 overlaps our own subnet 10\.10\.16\.0\/20/);

    await pushH1([{ type: 'removed', lease: bogus }]);
    expect(ping(h1, '10.10.16.2')).toBe(true);
    expect(ping(pod1, '10.10.32.2')).toBe(true);
    expect(h1.exec(['ip', 'route', 'show', '10.10.32.0/20']).stdout).toContain('via 192.168.77.2 dev eth0');
  });
});
