// The host-gw backend on FakeKernel: lease attrs, one route per peer and family, batching, removal,
// leases of other types, bad leases, routes the kernel refuses (peer not on our L2), the route check
// and the stale-route sweep after the first snapshot. Over 450 lines on purpose: one harness, one case
// per behaviour; the bogus-lease cases have their own file.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import { KernelError } from '../../../../../shared/kernel/errors.js';
import type { KernelOp, Route } from '../../../../../shared/kernel/kernel.js';
import { netContains, parseCIDR, parseIP, parseNet } from '../../../../../shared/net/ip.js';
import type { BackendDeps, BackendNetworkConfig, ExternalInterface } from '../../../../../daemon/backend/backend.js';
import { getBackendFactory } from '../../../../../daemon/backend/registry.js';
import { createHostgwBackend, NAT_ERROR } from '../../../../../daemon/backend/hostgw/hostgw.js';
import type { HostgwNetwork } from '../../../../../daemon/backend/hostgw/network.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../../../../../daemon/lease.js';
import { marshalLeaseAttrs } from '../../../../../daemon/subnet/lease-json.js';
import { FakeSubnetManager, linesLogger } from '../../../../helpers/fake-subnet-manager.js';
import { until, IN_PROCESS } from '../../../../helpers/until.js';

const OWN_SUBNET = '10.10.16.0/20';
const OWN_SUBNET6 = 'fd00:10:16::/64';

/**
 * FakeKernel that refuses a gateway not on a network directly attached to the route's device, as the
 * real kernel does (`Error: Nexthop has invalid gateway.`), stopping the batch there like `ip -batch`.
 */
class L2Kernel extends FakeKernel {
  override async batch(ops: readonly KernelOp[]): Promise<void> {
    const i = ops.findIndex((op) => op.op === 'replaceRoute' && op.route.via !== undefined && !this.onLink(op.route.via, op.route.dev));
    if (i < 0) return super.batch(ops);
    if (i > 0) await super.batch(ops.slice(0, i));
    else this.world.calls++;
    throw new KernelError('Nexthop has invalid gateway', { code: 'EINVAL' }).withOp(ops[i]!);
  }

  private onLink(via: string, dev: string | undefined): boolean {
    const ip = parseIP(via);
    return this.ns.routes.some((r) => r.proto === 'kernel' && r.via === undefined && r.dev === dev && r.dst !== 'default' && netContains(parseCIDR(r.dst).net, ip));
  }
}

const EXT: ExternalInterface = {
  iface: { name: 'eth0', index: 2, mtu: 1480 },
  ifaceAddr: parseIP('192.168.100.1'),
  extAddr: parseIP('192.168.100.1'),
  ifaceV6Addr: parseIP('fd00:100::1'),
  extV6Addr: parseIP('fd00:100::1'),
};

let kernel: L2Kernel;
let manager: FakeSubnetManager;
let logs: string[];
const controllers: AbortController[] = [];
const runs: Promise<void>[] = [];

function deps(over: Partial<BackendDeps> = {}): BackendDeps {
  return { subnetManager: manager, extIface: EXT, kernel, stateDir: '/nonexistent', logger: linesLogger(logs), ...over };
}

const CONFIG: BackendNetworkConfig = { enableIPv4: true, enableIPv6: false, backend: { Type: 'host-gw' }, network: parseNet('10.10.0.0/16') };

async function register(config: Partial<BackendNetworkConfig> = {}, over: Partial<BackendDeps> = {}) {
  const ac = new AbortController();
  controllers.push(ac);
  const nw = (await createHostgwBackend(deps(over)).registerNetwork(ac.signal, { ...CONFIG, ...config })) as HostgwNetwork;
  return { nw, ac };
}

/** Registers and runs the network; the route check only runs when asked (checkInterval 0). */
async function start(config: Partial<BackendNetworkConfig> = {}, checkInterval = 0) {
  const r = await register(config);
  r.nw.timing.checkInterval = checkInterval;
  const run = r.nw.run(r.ac.signal);
  runs.push(run);
  return { ...r, run };
}

function hgwLease(subnet: string, publicIP: string | undefined, o: { ipv6Subnet?: string; publicIPv6?: string; type?: string | undefined } = {}): Lease {
  const attrs: LeaseAttrs = { publicIP: parseIP(publicIP ?? '0.0.0.0') };
  const type = 'type' in o ? o.type : 'host-gw';
  if (type !== undefined) attrs.backendType = type;
  if (o.publicIPv6) attrs.publicIPv6 = parseIP(o.publicIPv6);
  return {
    enableIPv4: true,
    enableIPv6: !!o.ipv6Subnet,
    subnet: parseNet(subnet),
    ...(o.ipv6Subnet ? { ipv6Subnet: parseNet(o.ipv6Subnet) } : {}),
    attrs,
    expiration: Date.now() + 86_400_000,
  };
}

const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });
const removed = (l: Lease): LeaseEvent => ({ type: 'removed', lease: l });

const ns = () => kernel.world.namespaces.get('/')!;
const routeTo = (dst: string): Route | undefined => ns().routes.find((r) => r.dst === dst);
const routesTo = (dst: string): Route[] => ns().routes.filter((r) => r.dst === dst);

/** Pushes a batch and waits until the network has handled it. */
async function push(nw: HostgwNetwork, batch: LeaseEvent[]): Promise<void> {
  manager.push(batch);
  // the fake manager's generator takes it; the loop then queues it behind whatever runs
  await until(() => manager.queued === 0, 'manager.queued === 0', IN_PROCESS);
  await new Promise((r) => setTimeout(r, 0));
  await nw.idle();
}

beforeEach(async () => {
  kernel = new L2Kernel();
  manager = new FakeSubnetManager(OWN_SUBNET, OWN_SUBNET6);
  logs = [];
  // the underlay: eth0 with 192.168.100.1/24 and fd00:100::1/64 (the kernel adds the prefix routes)
  await kernel.batch([
    { op: 'addBridge', name: 'eth0', mtu: 1480 },
    { op: 'addAddr', dev: 'eth0', cidr: '192.168.100.1/24' },
    { op: 'addAddr', dev: 'eth0', cidr: 'fd00:100::1/64' },
    { op: 'setLinkUp', dev: 'eth0' },
  ]);
});

afterEach(async () => {
  for (const ac of controllers.splice(0)) ac.abort();
  await Promise.all(runs.splice(0));
});

describe('registerNetwork', () => {
  it('is registered as "host-gw"', () => {
    expect(getBackendFactory('host-gw')).toBe(createHostgwBackend);
  });

  it('acquires a lease with BackendType host-gw and no BackendData, as Go writes it', async () => {
    const { nw } = await register();
    expect(manager.acquired).toHaveLength(1);
    expect(marshalLeaseAttrs(manager.acquired[0]!)).toBe('{"PublicIP":"192.168.100.1","PublicIPv6":null,"BackendType":"host-gw"}');
    expect(nw.mtu()).toBe(1480);
    expect(nw.lease().subnet).toEqual(parseNet(OWN_SUBNET));
    // nothing is written at registration: no device, no address
    expect(ns().routes.every((r) => r.proto === 'kernel')).toBe(true);
  });

  it('dual stack: PublicIPv6 in the lease', async () => {
    await register({ enableIPv6: true });
    expect(marshalLeaseAttrs(manager.acquired[0]!)).toBe('{"PublicIP":"192.168.100.1","PublicIPv6":"fd00:100::1","BackendType":"host-gw"}');
  });

  it('IPv6 only: PublicIP 0.0.0.0', async () => {
    await register({ enableIPv4: false, enableIPv6: true });
    expect(marshalLeaseAttrs(manager.acquired[0]!)).toBe('{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:100::1","BackendType":"host-gw"}');
  });

  it('fails behind NAT (PublicIP is not the interface address), before acquiring a lease', async () => {
    await expect(register({}, { extIface: { ...EXT, extAddr: parseIP('203.0.113.7') } })).rejects.toThrow(NAT_ERROR);
    expect(manager.acquired).toHaveLength(0);
  });

  it('wraps a lease failure as Go does', async () => {
    manager.acquireLease = () => Promise.reject(new Error('out of subnets'));
    await expect(register()).rejects.toThrow('failed to acquire lease: out of subnets');
  });
});

describe('peer routes', () => {
  it('adds `<subnet> via <PublicIP> dev <ext iface>` per host-gw peer, all in one kernel batch', async () => {
    const { nw } = await start();
    const before = kernel.world.calls;
    await push(nw, [
      added(hgwLease('10.10.32.0/20', '192.168.100.2')),
      added(hgwLease('10.10.48.0/20', '192.168.100.3')),
      added(hgwLease('10.10.64.0/20', '192.168.100.4')),
    ]);
    expect(routeTo('10.10.32.0/20')).toMatchObject({ via: '192.168.100.2', dev: 'eth0' });
    expect(routeTo('10.10.48.0/20')).toMatchObject({ via: '192.168.100.3', dev: 'eth0' });
    expect(routeTo('10.10.64.0/20')).toMatchObject({ via: '192.168.100.4', dev: 'eth0' });
    expect(routeTo('10.10.32.0/20')?.onlink).toBeUndefined();
    // one batch for the routes, one read for the sweep after the snapshot
    expect(kernel.world.calls - before).toBe(2);
    expect(nw.knownPeers().size).toBe(3);
    expect(logs).toContain('Subnet added: 10.10.32.0/20 via 192.168.100.2');
  });

  it('programs 1000 peers with one batch', async () => {
    const { nw } = await start({ network: parseNet('10.0.0.0/8') });
    await push(nw, []);
    const batch: LeaseEvent[] = [];
    for (let i = 0; i < 1000; i++) batch.push(added(hgwLease(`10.${100 + (i >> 8)}.${i & 0xff}.0/24`, `192.168.100.${2 + (i % 250)}`)));
    const before = kernel.world.calls;
    await push(nw, batch);
    expect(kernel.world.calls - before).toBe(1);
    expect(ns().routes.filter((r) => r.via !== undefined)).toHaveLength(1000);
    expect(logs.at(-1)).toMatch(/applied a batch of 1000 lease events \(1000 host-gw added, 0 removed\)/);
  });

  it('never routes a subnet outside the Network (a junk or hostile key must not take the default or LAN route)', async () => {
    const { nw } = await start();
    await push(nw, []);
    const before = ns().routes.map((r) => ({ ...r }));
    await push(nw, [
      added(hgwLease('0.0.0.0/0', '192.168.100.2')),
      added(hgwLease('192.168.100.0/24', '192.168.100.3')),
      added(hgwLease('10.10.48.0/20', '192.168.100.4')),
    ]);
    expect(ns().routes.filter((r) => !before.some((b) => b.dst === r.dst))).toEqual([expect.objectContaining({ dst: '10.10.48.0/20', via: '192.168.100.4' })]);
    expect(logs.join('\n')).toMatch(/its subnet 0\.0\.0\.0\/0 is outside the network 10\.10\.0\.0\/16/);
    expect(logs.join('\n')).toMatch(/its subnet 192\.168\.100\.0\/24 is outside the network 10\.10\.0\.0\/16/);
  });

  it('IPv6: routes the v6 subnet via PublicIPv6', async () => {
    const { nw } = await start({ enableIPv6: true });
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2', { ipv6Subnet: 'fd00:10:32::/64', publicIPv6: 'fd00:100::2' }))]);
    expect(routeTo('10.10.32.0/20')).toMatchObject({ via: '192.168.100.2', dev: 'eth0' });
    expect(routeTo('fd00:10:32::/64')).toMatchObject({ family: 6, via: 'fd00:100::2', dev: 'eth0' });
  });

  it('IPv6 only: no IPv4 route', async () => {
    const { nw } = await start({ enableIPv4: false, enableIPv6: true });
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2', { ipv6Subnet: 'fd00:10:32::/64', publicIPv6: 'fd00:100::2' }))]);
    expect(routeTo('10.10.32.0/20')).toBeUndefined();
    expect(routeTo('fd00:10:32::/64')).toMatchObject({ via: 'fd00:100::2' });
  });

  it('removes exactly the removed peer', async () => {
    const { nw } = await start();
    const a = hgwLease('10.10.32.0/20', '192.168.100.2');
    const b = hgwLease('10.10.48.0/20', '192.168.100.3');
    await push(nw, [added(a), added(b)]);
    await push(nw, [removed(a)]);
    expect(routeTo('10.10.32.0/20')).toBeUndefined();
    expect(routeTo('10.10.48.0/20')).toMatchObject({ via: '192.168.100.3' });
    expect(nw.knownPeers().size).toBe(1);
    expect(logs).toContain('Subnet removed: 10.10.32.0/20');
  });

  it('a removal of a lease never seen removes its route, but only with its gateway', async () => {
    await kernel.replaceRoute({ dst: '10.10.32.0/20', via: '192.168.100.2', dev: 'eth0' });
    const { nw } = await start({ network: undefined });
    await push(nw, [removed(hgwLease('10.10.32.0/20', '192.168.100.2'))]);
    expect(routeTo('10.10.32.0/20')).toBeUndefined();
  });

  it('a peer that changes its PublicIP gets its route replaced (still one route)', async () => {
    const { nw } = await start();
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2'))]);
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.7'))]);
    expect(routesTo('10.10.32.0/20')).toHaveLength(1);
    expect(routeTo('10.10.32.0/20')).toMatchObject({ via: '192.168.100.7' });
  });

  it('only the last event per lease in a batch counts', async () => {
    const { nw } = await start();
    const a = hgwLease('10.10.32.0/20', '192.168.100.2');
    const b = hgwLease('10.10.48.0/20', '192.168.100.3');
    await push(nw, [added(a), removed(a), removed(b), added(b)]);
    expect(routeTo('10.10.32.0/20')).toBeUndefined();
    expect(routeTo('10.10.48.0/20')).toMatchObject({ via: '192.168.100.3' });
  });

  it('a lease that takes over a destination keeps it when the old lease goes (dual-stack key change)', async () => {
    const { nw } = await start({ enableIPv6: true });
    const old = hgwLease('10.10.32.0/20', '192.168.100.2', { ipv6Subnet: 'fd00:10:32::/64', publicIPv6: 'fd00:100::2' });
    const now = hgwLease('10.10.32.0/20', '192.168.100.2', { ipv6Subnet: 'fd00:10:33::/64', publicIPv6: 'fd00:100::2' });
    await push(nw, [added(old)]);
    await push(nw, [added(now), removed(old)]);
    expect(routeTo('10.10.32.0/20')).toMatchObject({ via: '192.168.100.2' });
    expect(routeTo('fd00:10:33::/64')).toMatchObject({ via: 'fd00:100::2' });
    expect(routeTo('fd00:10:32::/64')).toBeUndefined();
  });

  it('ignores our own lease', async () => {
    const { nw } = await start();
    await push(nw, [added(hgwLease(OWN_SUBNET, '192.168.100.1'))]);
    expect(routeTo(OWN_SUBNET)).toBeUndefined();
    expect(nw.knownPeers().size).toBe(0);
  });

  it('ignores leases of other backend types, with a log', async () => {
    const { nw } = await start();
    await push(nw, [
      added(hgwLease('10.10.32.0/20', '192.168.100.2', { type: 'vxlan' })),
      added(hgwLease('10.10.48.0/20', '192.168.100.3', { type: undefined })),
      added(hgwLease('10.10.64.0/20', '192.168.100.4')),
    ]);
    expect(routeTo('10.10.32.0/20')).toBeUndefined();
    expect(routeTo('10.10.48.0/20')).toBeUndefined();
    expect(routeTo('10.10.64.0/20')).toMatchObject({ via: '192.168.100.4' });
    expect(logs).toContain('Ignoring non-host-gw subnet 10.10.32.0/20: type=vxlan');
    expect(logs).toContain('Ignoring non-host-gw subnet 10.10.48.0/20: type=');
  });

  it('a known peer that switches to another backend type loses its route', async () => {
    const { nw } = await start();
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2'))]);
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2', { type: 'vxlan' }))]);
    expect(routeTo('10.10.32.0/20')).toBeUndefined();
    expect(nw.knownPeers().size).toBe(0);
    // and the route check does not bring it back
    await nw.checkRoutes();
    expect(routeTo('10.10.32.0/20')).toBeUndefined();
  });

  it('skips a family without a PublicIP and carries on', async () => {
    const { nw } = await start({ enableIPv6: true });
    await push(nw, [
      added(hgwLease('10.10.32.0/20', undefined, { ipv6Subnet: 'fd00:10:32::/64', publicIPv6: 'fd00:100::2' })),
      added(hgwLease('10.10.48.0/20', '192.168.100.3', { ipv6Subnet: 'fd00:10:48::/64' })),
    ]);
    expect(routeTo('10.10.32.0/20')).toBeUndefined();
    expect(routeTo('fd00:10:32::/64')).toMatchObject({ via: 'fd00:100::2' });
    expect(routeTo('10.10.48.0/20')).toMatchObject({ via: '192.168.100.3' });
    expect(routeTo('fd00:10:48::/64')).toBeUndefined();
    expect(logs.some((l) => /skipping IPv4 of lease 10\.10\.32\.0\/20&fd00:10:32::\/64: no public IPv4/.test(l))).toBe(true);
    expect(logs.some((l) => /skipping IPv6 of lease 10\.10\.48\.0\/20&fd00:10:48::\/64: no public IPv6/.test(l))).toBe(true);
  });
});

describe('a peer the kernel refuses (not on our L2 segment)', () => {
  it('logs why, programs every other peer of the batch, and never uses onlink', async () => {
    const { nw } = await start();
    await push(nw, [
      added(hgwLease('10.10.32.0/20', '192.168.100.2')),
      added(hgwLease('10.10.48.0/20', '192.168.200.3')),
      added(hgwLease('10.10.64.0/20', '192.168.100.4')),
    ]);
    expect(routeTo('10.10.32.0/20')).toMatchObject({ via: '192.168.100.2' });
    expect(routeTo('10.10.48.0/20')).toBeUndefined();
    expect(routeTo('10.10.64.0/20')).toMatchObject({ via: '192.168.100.4' });
    const line = logs.find((l) => l.startsWith('Error adding route to 10.10.48.0/20'));
    expect(line).toMatch(/Nexthop has invalid gateway/);
    expect(line).toMatch(/192\.168\.200\.3 is not on a network directly attached to eth0: host-gw needs every host on one L2 segment/);
    expect(nw.wantedRoutes().get('10.10.48.0/20')).toMatchObject({ ok: false });
  });

  it('is retried by the route check, logged once, and added once reachable', async () => {
    const { nw } = await start();
    await push(nw, [added(hgwLease('10.10.48.0/20', '192.168.200.3'))]);
    await nw.checkRoutes();
    await nw.checkRoutes();
    expect(logs.filter((l) => l.startsWith('Error adding route to 10.10.48.0/20'))).toHaveLength(1);
    // the operator puts the host on the peer's network
    await kernel.batch([{ op: 'addAddr', dev: 'eth0', cidr: '192.168.200.1/24' }]);
    await nw.checkRoutes();
    expect(routeTo('10.10.48.0/20')).toMatchObject({ via: '192.168.200.3', dev: 'eth0' });
    expect(logs.some((l) => l.startsWith('added route to 10.10.48.0/20 via 192.168.200.3 dev eth0, which had failed'))).toBe(true);
    expect(nw.wantedRoutes().get('10.10.48.0/20')).toEqual({ route: { dst: '10.10.48.0/20', via: '192.168.200.3', dev: 'eth0' }, ok: true });
  });

  it('a removed unreachable peer is forgotten (no more retries)', async () => {
    const { nw } = await start();
    const l = hgwLease('10.10.48.0/20', '192.168.200.3');
    await push(nw, [added(l)]);
    await push(nw, [removed(l)]);
    expect(nw.wantedRoutes().size).toBe(0);
    await kernel.batch([{ op: 'addAddr', dev: 'eth0', cidr: '192.168.200.1/24' }]);
    await nw.checkRoutes();
    expect(routeTo('10.10.48.0/20')).toBeUndefined();
  });
});

describe('route check (Go routeCheck)', () => {
  it('re-adds a route deleted behind our back', async () => {
    const { nw } = await start({}, 20);
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2')), added(hgwLease('10.10.48.0/20', '192.168.100.3'))]);
    await kernel.deleteRoute({ dst: '10.10.32.0/20', dev: 'eth0' });
    await until(() => routeTo('10.10.32.0/20') !== undefined, "routeTo('10.10.32.0/20') !== undefined", IN_PROCESS);
    expect(routeTo('10.10.32.0/20')).toMatchObject({ via: '192.168.100.2', dev: 'eth0' });
    expect(logs).toContain('Route recovered 10.10.32.0/20 : 192.168.100.2');
  });

  it('replaces a route whose gateway was changed behind our back', async () => {
    const { nw } = await start();
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2'))]);
    await kernel.replaceRoute({ dst: '10.10.32.0/20', via: '192.168.100.99', dev: 'eth0' });
    await nw.checkRoutes();
    expect(routesTo('10.10.32.0/20')).toEqual([expect.objectContaining({ via: '192.168.100.2', dev: 'eth0' })]);
  });

  it('does nothing when every route is there', async () => {
    const { nw } = await start();
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2'))]);
    const before = kernel.world.calls;
    await nw.checkRoutes();
    expect(kernel.world.calls - before).toBe(1); // the route list only
  });

  it('survives a failing route list', async () => {
    const { nw } = await start();
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2'))]);
    kernel.world.failOn('listRoutes');
    await nw.checkRoutes();
    expect(logs.some((l) => l.startsWith('Error fetching route list. Will automatically retry'))).toBe(true);
  });
});

describe('stale routes after the first snapshot', () => {
  async function seed(routes: Array<Parameters<FakeKernel['replaceRoute']>[0]>) {
    for (const r of routes) await kernel.replaceRoute(r);
  }

  it('removes routes of ours that no lease accounts for, and nothing else', async () => {
    await kernel.batch([{ op: 'addBridge', name: 'eth1' }, { op: 'addAddr', dev: 'eth1', cidr: '192.168.150.1/24' }]);
    await seed([
      { dst: '10.10.80.0/20', via: '192.168.100.9', dev: 'eth0' }, // stale: ours
      { dst: '10.10.96.0/20', via: '192.168.100.10', dev: 'eth0' }, // stale: ours
      { dst: '10.10.32.0/20', via: '192.168.100.2', dev: 'eth0' }, // a current peer
      { dst: '10.10.112.0/20', via: '192.168.100.11', dev: 'eth0' }, // a current lease of another type
      { dst: '10.10.0.0/16', via: '192.168.100.254', dev: 'eth0' }, // the whole network: an operator's
      { dst: '10.10.128.0/24', via: '192.168.100.12', dev: 'eth0' }, // another prefix length
      { dst: '172.16.0.0/20', via: '192.168.100.13', dev: 'eth0' }, // outside the network
      { dst: '10.10.144.0/20', via: '192.168.100.14', dev: 'eth0', proto: 'static' }, // another proto
      { dst: '10.10.160.0/20', via: '192.168.100.15', dev: 'eth0', metric: 100 }, // another metric
      { dst: '10.10.176.0/20', via: '192.168.150.16', dev: 'eth1' }, // another device
      { dst: '10.10.192.0/20', via: '192.168.100.17', dev: 'eth0', onlink: true }, // onlink
      { dst: '10.10.208.0/20', via: '192.168.100.18', dev: 'eth0', table: 100 }, // another table
      { dst: '10.10.224.0/20', dev: 'eth0' }, // no gateway
    ]);
    const { nw } = await start();
    manager.push([added(hgwLease('10.10.32.0/20', '192.168.100.2')), added(hgwLease('10.10.112.0/20', '192.168.100.11', { type: 'vxlan' }))]);
    await nw.firstSync;
    expect(routeTo('10.10.80.0/20')).toBeUndefined();
    expect(routeTo('10.10.96.0/20')).toBeUndefined();
    for (const dst of ['10.10.32.0/20', '10.10.112.0/20', '10.10.0.0/16', '10.10.128.0/24', '172.16.0.0/20', '10.10.144.0/20', '10.10.160.0/20', '10.10.176.0/20', '10.10.192.0/20', '10.10.208.0/20', '10.10.224.0/20']) {
      expect(routeTo(dst), dst).toBeDefined();
    }
    expect(logs).toContain(
      'removed 2 stale routes left by leases deleted while flanneld was not running: route 10.10.80.0/20 via 192.168.100.9 dev eth0, route 10.10.96.0/20 via 192.168.100.10 dev eth0',
    );
  });

  it('runs once, after the first batch only', async () => {
    const { nw } = await start();
    manager.push([]);
    await nw.firstSync;
    await seed([{ dst: '10.10.80.0/20', via: '192.168.100.9', dev: 'eth0' }]);
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2'))]);
    expect(routeTo('10.10.80.0/20')).toBeDefined();
  });

  it('without the flannel Network nothing is swept', async () => {
    await seed([{ dst: '10.10.80.0/20', via: '192.168.100.9', dev: 'eth0' }]);
    const { nw } = await start({ network: undefined });
    manager.push([]);
    await nw.firstSync;
    expect(routeTo('10.10.80.0/20')).toBeDefined();
  });

  it('IPv6 is swept when the IPv6Network is given', async () => {
    await seed([
      { dst: 'fd00:10:80::/64', via: 'fd00:100::9', dev: 'eth0' },
      { dst: 'fd00:10:90::/64', via: 'fd00:100::10', dev: 'eth0' },
      { dst: 'fd00:99::/64', via: 'fd00:100::11', dev: 'eth0' }, // outside IPv6Network
    ]);
    const { nw } = await start({ enableIPv6: true, ipv6Network: parseNet('fd00:10::/32') });
    manager.push([added(hgwLease('10.10.32.0/20', '192.168.100.2', { ipv6Subnet: 'fd00:10:90::/64', publicIPv6: 'fd00:100::10' }))]);
    await nw.firstSync;
    expect(routeTo('fd00:10:80::/64')).toBeUndefined();
    expect(routeTo('fd00:10:90::/64')).toMatchObject({ via: 'fd00:100::10' });
    expect(routeTo('fd00:99::/64')).toBeDefined();
  });
});

describe('run', () => {
  it('ends when the signal aborts, leaving the routes in place', async () => {
    const { nw, ac, run } = await start({}, 10);
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2'))]);
    ac.abort();
    await run;
    expect(routeTo('10.10.32.0/20')).toBeDefined();
  });

  it('a failing kernel never stops the loop', async () => {
    const { nw } = await start();
    kernel.world.failOn('replaceRoute');
    await push(nw, [added(hgwLease('10.10.32.0/20', '192.168.100.2'))]);
    expect(routeTo('10.10.32.0/20')).toBeUndefined();
    await push(nw, [added(hgwLease('10.10.48.0/20', '192.168.100.3'))]);
    expect(routeTo('10.10.48.0/20')).toBeDefined();
    await nw.checkRoutes();
    expect(routeTo('10.10.32.0/20')).toMatchObject({ via: '192.168.100.2' });
  });
});
