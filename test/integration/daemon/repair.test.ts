// Continuous repair on the real kernel: a vxlan and a host-gw backend run in a host namespace (leases
// handed over by a FakeSubnetManager, as etcd would); entries are deleted, changed and added behind
// their back with `ip` / `bridge`, and must come back (or go) by themselves. With the iproute2 adapter
// (no kernel events) the periodic reconcile does it, so the test shortens its interval; with the
// netlink adapter (kernel events) the periodic round is off and events alone do it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKernel } from '../../../shared/kernel/iproute2/kernel.js';
import { createNetlinkKernel } from '../../../shared/kernel/netlink/kernel.js';
import { nativeAddon } from '../../../shared/native/load.js';
import type { Kernel } from '../../../shared/kernel/kernel.js';
import { parseIP, parseNet } from '../../../shared/net/ip.js';
import { createVxlanBackend } from '../../../daemon/backend/vxlan/vxlan.js';
import type { VxlanNetwork } from '../../../daemon/backend/vxlan/network.js';
import { createHostgwBackend } from '../../../daemon/backend/hostgw/hostgw.js';
import type { HostgwNetwork } from '../../../daemon/backend/hostgw/network.js';
import type { Lease } from '../../../daemon/lease.js';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { FakeSubnetManager, linesLogger, vxlanLease } from '../../helpers/fake-subnet-manager.js';
import { until } from '../../helpers/until.js';

/** The adapters to run on: iproute2 always, netlink (kernel events) when its native shim loads. */
const ADAPTERS: Array<[string, () => Kernel]> = [['iproute2', () => createKernel()]];
if (nativeAddon() !== undefined) ADAPTERS.push(['netlink', () => createNetlinkKernel()]);

const PEERS = [vxlanLease('10.10.32.0/20', '192.168.77.2', '0a:00:00:00:00:02'), vxlanLease('10.10.48.0/20', '192.168.77.3', '0a:00:00:00:00:03')];
const RECONCILE_MS = 200;
const DEADLINE = { ms: 5000, every: 20 };

function hgw(subnet: string, publicIP: string): Lease {
  return { enableIPv4: true, enableIPv6: false, subnet: parseNet(subnet), attrs: { publicIP: parseIP(publicIP), backendType: 'host-gw' }, expiration: Date.now() + 86_400_000 };
}

describe.skipIf(!canUseNetns).each(ADAPTERS)('continuous repair on the real kernel (%s adapter)', (_name, makeKernel) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'repair-int-'));
  const controllers: AbortController[] = [];
  const runs: Promise<void>[] = [];
  let ns: Netns;

  beforeAll(() => {
    ns = createNetns('rep');
    // eth0 is one end of a veth pair in the same namespace: entries need a live underlay device, not a peer
    ns.exec(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p']);
    ns.exec(['ip', 'addr', 'add', '192.168.77.1/24', 'dev', 'eth0']);
    ns.exec(['ip', 'link', 'set', 'eth0p', 'up']);
    ns.exec(['ip', 'link', 'set', 'eth0', 'up']);
  });

  afterAll(async () => {
    for (const ac of controllers) ac.abort();
    await Promise.all(runs);
    cleanupNetns();
    rmSync(stateDir, { recursive: true, force: true });
  });

  const ip = (...args: string[]) => ns.exec(['ip', ...args]).stdout;
  const bridge = (...args: string[]) => ns.exec(['bridge', ...args]).stdout;

  async function start<N extends VxlanNetwork | HostgwNetwork>(register: (kernel: Kernel, manager: FakeSubnetManager, logs: string[], ac: AbortController) => Promise<N>) {
    const kernel = makeKernel().inNetns(ns.path);
    const manager = new FakeSubnetManager('10.10.16.0/20');
    const logs: string[] = [];
    const ac = new AbortController();
    controllers.push(ac);
    const nw = await register(kernel, manager, logs, ac);
    // with kernel events the periodic round is off: the events alone must repair
    nw.timing.reconcileInterval = kernel.watch ? 0 : RECONCILE_MS;
    runs.push(nw.run(ac.signal));
    return { nw, manager, logs, ac };
  }

  it('vxlan: restores a deleted route, neighbour and FDB entry and the device MTU; removes a stray entry', async () => {
    const eth0 = { name: 'eth0', index: 0, mtu: 1500 };
    const { nw, manager, logs, ac } = await start(async (kernel, manager, logs, ac) => {
      eth0.index = (await kernel.getLink('eth0'))!.index;
      const deps = { subnetManager: manager, kernel, stateDir, logger: linesLogger(logs), extIface: { iface: eth0, ifaceAddr: parseIP('192.168.77.1'), extAddr: parseIP('192.168.77.1') } };
      return (await createVxlanBackend(deps).registerNetwork(ac.signal, { enableIPv4: true, enableIPv6: false, backend: { Type: 'vxlan', VNI: 100 }, network: parseNet('10.10.0.0/16') })) as VxlanNetwork;
    });
    manager.push(PEERS.map((lease) => ({ type: 'added' as const, lease })));
    await nw.firstSync;
    const routeOk = () => /10\.10\.32\.0\/20 via 10\.10\.32\.0 dev flannel\.100 onlink/.test(ip('route', 'show', 'dev', 'flannel.100', 'table', 'main').replace(/\n/g, ' ') + ' dev flannel.100') || /10\.10\.32\.0\/20 via 10\.10\.32\.0 onlink/.test(ip('route', 'show', 'dev', 'flannel.100'));
    const neighOk = () => /10\.10\.32\.0 lladdr 0a:00:00:00:00:02 PERMANENT/.test(ip('neigh', 'show', 'dev', 'flannel.100'));
    const fdbOk = () => /0a:00:00:00:00:02 dst 192\.168\.77\.2 self permanent/.test(bridge('fdb', 'show', 'dev', 'flannel.100'));
    expect(routeOk() && neighOk() && fdbOk()).toBe(true);

    ip('route', 'del', '10.10.32.0/20', 'dev', 'flannel.100');
    ip('neigh', 'del', '10.10.32.0', 'dev', 'flannel.100');
    bridge('fdb', 'del', '0a:00:00:00:00:02', 'dev', 'flannel.100', 'dst', '192.168.77.2', 'self');
    ip('link', 'set', 'flannel.100', 'mtu', '1300');
    expect(routeOk() || neighOk() || fdbOk()).toBe(false);
    await until(() => routeOk() && neighOk() && fdbOk() && /mtu 1450 /.test(ip('link', 'show', 'flannel.100')), 'the route, neighbour, FDB entry and MTU restored', DEADLINE);
    const said = [
      'Repaired route 10.10.32.0/20 via 10.10.32.0 dev flannel.100 (was missing)',
      'Repaired neighbour 10.10.32.0 lladdr 0a:00:00:00:00:02 dev flannel.100 (was missing)',
      'Repaired fdb 0a:00:00:00:00:02 dst 192.168.77.2 dev flannel.100 (was missing)',
      'Repaired device flannel.100 (was mtu 1300)',
    ];
    // the line follows the write that the `ip` reads above can already see
    await until(() => said.every((l) => logs.includes(l)), 'a log line per repair', DEADLINE);

    // a changed neighbour and a stray route of our shape
    ip('neigh', 'replace', '10.10.48.0', 'lladdr', '0a:00:00:00:00:99', 'dev', 'flannel.100', 'nud', 'permanent');
    ip('route', 'replace', '10.10.80.0/20', 'via', '10.10.80.0', 'dev', 'flannel.100', 'onlink');
    await until(
      () => /10\.10\.48\.0 lladdr 0a:00:00:00:00:03 PERMANENT/.test(ip('neigh', 'show', 'dev', 'flannel.100')) && !/10\.10\.80\.0/.test(ip('route', 'show', 'dev', 'flannel.100')),
      'the neighbour corrected and the stray route removed',
      DEADLINE,
    );
    await until(() => logs.includes('Removed stale route 10.10.80.0/20 via 10.10.80.0 dev flannel.100 (no lease has it)'), 'the removal logged', DEADLINE);
    ac.abort();
  });

  it('host-gw: restores a deleted route and corrects a changed gateway', async () => {
    const { nw, manager, logs, ac } = await start(async (kernel, manager, logs, ac) => {
      const eth0 = (await kernel.getLink('eth0'))!;
      const deps = { subnetManager: manager, kernel, stateDir, logger: linesLogger(logs), extIface: { iface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu }, ifaceAddr: parseIP('192.168.77.1'), extAddr: parseIP('192.168.77.1') } };
      return (await createHostgwBackend(deps).registerNetwork(ac.signal, { enableIPv4: true, enableIPv6: false, backend: { Type: 'host-gw' }, network: parseNet('10.10.0.0/16') })) as HostgwNetwork;
    });
    nw.timing.checkInterval = RECONCILE_MS;
    manager.push([{ type: 'added', lease: hgw('10.10.96.0/20', '192.168.77.2') }, { type: 'added', lease: hgw('10.10.112.0/20', '192.168.77.3') }]);
    await nw.firstSync;
    const route = (dst: string) => ip('route', 'show', dst);
    expect(route('10.10.96.0/20')).toMatch(/via 192\.168\.77\.2 dev eth0/);
    ip('route', 'del', '10.10.96.0/20');
    ip('route', 'replace', '10.10.112.0/20', 'via', '192.168.77.99', 'dev', 'eth0');
    await until(() => /via 192\.168\.77\.2 dev eth0/.test(route('10.10.96.0/20')) && /via 192\.168\.77\.3 dev eth0/.test(route('10.10.112.0/20')), 'both routes repaired', DEADLINE);
    const said = ['Route recovered 10.10.96.0/20 : 192.168.77.2', 'Repaired route 10.10.112.0/20 via 192.168.77.3 dev eth0 (was via 192.168.77.99 dev eth0)'];
    await until(() => said.every((l) => logs.includes(l)), 'a log line per repair', DEADLINE);
    ac.abort();
  });
});
