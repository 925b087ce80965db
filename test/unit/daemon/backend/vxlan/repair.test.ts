// vxlan continuous repair on the fake kernel: what someone deletes or changes behind the daemon's back
// (a write through the same FakeKernel, announced by its watch()) is restored, what no lease has is
// removed, each repair is logged once per object and counted.
import { describe, expect, it } from 'vitest';
import { metricValue } from '../../../../../daemon/metrics/metrics.js';
import type { VxlanNetwork } from '../../../../../daemon/backend/vxlan/network.js';
import { BACKEND, kernel, lease, logs, manager, ns, peerState, register, registerWith, useVxlanHarness } from './harness.js';
import { until, IN_PROCESS } from '../../../../helpers/until.js';

useVxlanHarness();

const DEV = 'flannel.100';
const PEERS = [
  lease('10.10.0.0/20', '192.168.100.2', '0a:00:00:00:00:02'),
  lease('10.10.32.0/20', '192.168.100.3', '0a:00:00:00:00:03'),
];

const repairs = (kind: string, action = 'restored') => metricValue('flannel_repairs_total', { kind, action });
const lines = (re: RegExp) => logs.filter((l) => re.test(l));

/** A running vxlan network with PEERS programmed; `watch` turns the fake's kernel events on. */
async function running(o: { watch?: boolean; network?: string; reconcileInterval?: number } = {}): Promise<VxlanNetwork> {
  kernel.world.watchable = o.watch ?? true;
  const { nw, ac } = o.network ? await registerWith({ network: o.network }) : await register(BACKEND);
  if (o.reconcileInterval !== undefined) nw.timing.reconcileInterval = o.reconcileInterval;
  void nw.run(ac.signal);
  manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
  await until(() => nw.knownPeers().size === 2, 'both peers programmed', IN_PROCESS);
  await nw.firstSync;
  return nw;
}

const healthy = (subnet: string, mac: string, dst: string) => () => {
  const s = peerState(subnet);
  return s.route?.onlink === true && s.neigh?.mac === mac && s.fdb.length === 1 && s.fdb[0]!.dst === dst;
};

describe('vxlan repair on kernel events', () => {
  it('restores a deleted route, neighbour and FDB entry of a live lease, logged and counted', async () => {
    await running();
    const before = { route: await repairs('route'), neigh: await repairs('neigh'), fdb: await repairs('fdb') };
    await kernel.batch([
      { op: 'deleteRoute', route: { dst: '10.10.0.0/20', dev: DEV } },
      { op: 'deleteNeigh', dev: DEV, ip: '10.10.0.0' },
      { op: 'deleteFdb', dev: DEV, mac: '0a:00:00:00:00:02', dst: '192.168.100.2' },
    ]);
    expect(peerState('10.10.0.0/20').route).toBeUndefined();
    await until(healthy('10.10.0.0/20', '0a:00:00:00:00:02', '192.168.100.2'), 'the peer restored', IN_PROCESS);
    expect(logs).toContain('Repaired route 10.10.0.0/20 via 10.10.0.0 dev flannel.100 (was missing)');
    expect(logs).toContain('Repaired neighbour 10.10.0.0 lladdr 0a:00:00:00:00:02 dev flannel.100 (was missing)');
    expect(logs).toContain('Repaired fdb 0a:00:00:00:00:02 dst 192.168.100.2 dev flannel.100 (was missing)');
    expect(await repairs('route')).toBe(before.route + 1);
    expect(await repairs('neigh')).toBe(before.neigh + 1);
    expect(await repairs('fdb')).toBe(before.fdb + 1);
  });

  it('corrects a changed route, neighbour and FDB entry', async () => {
    await running();
    await kernel.batch([
      { op: 'replaceNeigh', dev: DEV, ip: '10.10.32.0', mac: '0a:00:00:00:00:99' },
      { op: 'replaceFdb', dev: DEV, mac: '0a:00:00:00:00:03', dst: '192.168.100.99' },
      { op: 'replaceRoute', route: { dst: '10.10.32.0/20', via: '10.10.32.7', dev: DEV, onlink: true } },
    ]);
    await until(healthy('10.10.32.0/20', '0a:00:00:00:00:03', '192.168.100.3'), 'the peer corrected', IN_PROCESS);
    expect(peerState('10.10.32.0/20').route).toMatchObject({ via: '10.10.32.0' });
    expect(logs).toContain('Repaired neighbour 10.10.32.0 lladdr 0a:00:00:00:00:03 dev flannel.100 (was lladdr 0a:00:00:00:00:99)');
    expect(logs).toContain('Repaired fdb 0a:00:00:00:00:03 dst 192.168.100.3 dev flannel.100 (was dst 192.168.100.99)');
    expect(logs).toContain('Repaired route 10.10.32.0/20 via 10.10.32.0 dev flannel.100 (was via 10.10.32.7 onlink)');
  });

  it('removes an entry on our device that no lease has', async () => {
    await running();
    const before = await repairs('route', 'removed');
    await kernel.batch([
      { op: 'replaceNeigh', dev: DEV, ip: '10.10.64.0', mac: '0a:00:00:00:00:64' },
      { op: 'replaceFdb', dev: DEV, mac: '0a:00:00:00:00:64', dst: '192.168.100.64' },
      { op: 'replaceRoute', route: { dst: '10.10.64.0/20', via: '10.10.64.0', dev: DEV, onlink: true } },
    ]);
    await until(() => !ns().routes.some((r) => r.dst === '10.10.64.0/20') && !ns().neighs.some((n) => n.ip === '10.10.64.0') && !ns().fdb.some((f) => f.mac === '0a:00:00:00:00:64'), 'the stale entries removed', IN_PROCESS);
    expect(logs).toContain('Removed stale route 10.10.64.0/20 via 10.10.64.0 dev flannel.100 (no lease has it)');
    expect(logs).toContain('Removed stale neighbour 10.10.64.0 dev flannel.100 (no lease has it)');
    expect(logs).toContain('Removed stale fdb 0a:00:00:00:00:64 dst 192.168.100.64 dev flannel.100 (no lease has it)');
    expect(await repairs('route', 'removed')).toBe(before + 1);
    // the live peers are untouched
    expect(healthy('10.10.0.0/20', '0a:00:00:00:00:02', '192.168.100.2')()).toBe(true);
  });

  it('never restores the entries of a lease the guard refused', async () => {
    const nw = await running({ network: '10.10.0.0/16' });
    // a lease outside the Network is refused; someone writes its entries anyway
    manager.push([{ type: 'added', lease: lease('192.168.50.0/24', '192.168.100.9', '0a:00:00:00:00:09') }]);
    await until(() => logs.some((l) => /refusing peer lease 192\.168\.50\.0\/24/.test(l)), 'the refusal', IN_PROCESS);
    await kernel.batch([{ op: 'replaceNeigh', dev: DEV, ip: '192.168.50.0', mac: '0a:00:00:00:00:09' }]);
    await until(() => !ns().neighs.some((n) => n.ip === '192.168.50.0'), 'the refused lease’s neighbour removed', IN_PROCESS);
    await nw.reconcileAll();
    expect(ns().routes.some((r) => r.dst === '192.168.50.0/24')).toBe(false);
    expect(ns().fdb.some((f) => f.mac === '0a:00:00:00:00:09')).toBe(false);
    expect(lines(/^Repaired .*192\.168\.50\.0/)).toEqual([]);
  });

  it('our own programming echoes back as events and costs reads only', async () => {
    const nw = await running();
    await nw.reconcileAll('event');
    const calls = kernel.world.calls;
    await nw.reconcileAll('event');
    expect(kernel.world.calls - calls).toBe(5); // getLink, listAddrs, listRoutes, listNeighs, listFdb
    expect(lines(/^(Repaired|Removed)/)).toEqual([]);
  });

  it('a resync (lost events) reads everything again', async () => {
    await running();
    // a change the fake does not announce, then the socket says it lost events
    ns().routes = ns().routes.filter((r) => r.dst !== '10.10.0.0/20');
    kernel.world.emit('/', { kind: 'resync' });
    await until(() => peerState('10.10.0.0/20').route !== undefined, 'the route restored after resync', IN_PROCESS);
  });

  it('fixes the device MTU and a device set down (with the routes it lost) in place', async () => {
    await running();
    const index = ns().links.get(DEV)!.index;
    const before = await repairs('device');
    await kernel.setLinkMtu(DEV, 1000);
    await until(() => ns().links.get(DEV)!.mtu === 1450, 'the MTU reconciled', IN_PROCESS);
    expect(logs).toContain('Repaired device flannel.100 (was mtu 1000)');
    // down: the kernel flushes the device's routes with it
    await kernel.setLinkDown(DEV);
    ns().routes = ns().routes.filter((r) => r.dev !== DEV);
    await until(() => ns().links.get(DEV)!.up && peerState('10.10.32.0/20').route !== undefined, 'up again with its routes', IN_PROCESS);
    expect(ns().links.get(DEV)!.index).toBe(index); // fixed in place, not re-created
    expect(await repairs('device')).toBe(before + 2);
  });

  it('logs a flapping object once until a periodic round finds it healthy; counts every repair', async () => {
    const nw = await running();
    const before = await repairs('neigh');
    for (let i = 0; i < 3; i++) {
      await kernel.batch([{ op: 'deleteNeigh', dev: DEV, ip: '10.10.0.0' }]);
      await until(() => peerState('10.10.0.0/20').neigh !== undefined, `neighbour restored (${i})`, IN_PROCESS);
    }
    expect(lines(/^Repaired neighbour 10\.10\.0\.0 /)).toHaveLength(1);
    expect(await repairs('neigh')).toBe(before + 3);
    await nw.reconcileAll('periodic'); // healthy now
    await kernel.batch([{ op: 'deleteNeigh', dev: DEV, ip: '10.10.0.0' }]);
    await until(() => lines(/^Repaired neighbour 10\.10\.0\.0 /).length === 2, 'logged again after it was healthy', IN_PROCESS);
  });
});

describe('vxlan repair without kernel events (the iproute2 adapter)', () => {
  it('the periodic reconcile restores what was deleted', async () => {
    await running({ watch: false, reconcileInterval: 30 });
    await kernel.batch([{ op: 'deleteRoute', route: { dst: '10.10.32.0/20', dev: DEV } }, { op: 'deleteFdb', dev: DEV, mac: '0a:00:00:00:00:03' }]);
    await until(healthy('10.10.32.0/20', '0a:00:00:00:00:03', '192.168.100.3'), 'restored by the periodic round', IN_PROCESS);
  });
});
