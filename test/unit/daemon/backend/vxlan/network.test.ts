// VxlanNetwork: peers programmed, removed, rolled back and retried; watchdog; DirectRouting; IPv6 peers.
import { describe, expect, it, vi } from 'vitest';
import { memoryLogger } from '../../../../../shared/log.js';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import type { LeaseEvent } from '../../../../../daemon/lease.js';
import { orderOps, type VxlanNetwork } from '../../../../../daemon/backend/vxlan/network.js';
import { planBatch } from '../../../../../shared/kernel/iproute2/batch.js';
import { BACKEND, OWN_SUBNET, controllers, dualLease, EXT6, kernel, lease, logs, manager, ns, peerState, register, registerWith, useVxlanHarness } from './harness.js';
import { until, IN_PROCESS } from '../../../../helpers/until.js';

useVxlanHarness();

describe('VxlanNetwork', () => {
  const PEERS = [
    lease('10.10.0.0/20', '192.168.100.2', '0a:00:00:00:00:02'),
    lease('10.10.32.0/20', '192.168.100.3', '0a:00:00:00:00:03'),
    lease('10.10.48.0/20', '192.168.100.4', '0a:00:00:00:00:04'),
  ];

  async function running(over: Record<string, unknown> = {}) {
    const { nw, ac } = await register({ ...BACKEND, ...over });
    const done = nw.run(ac.signal);
    return { nw, ac, done };
  }

  it('programs neighbour, FDB and onlink route per peer, the whole snapshot in one batch', async () => {
    const { nw } = await running();
    const calls = kernel.world.calls;
    manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
    await until(() => nw.knownPeers().size === 3, 'nw.knownPeers().size === 3', IN_PROCESS);
    expect(kernel.world.calls - calls).toBe(1);
    for (const [i, p] of PEERS.entries()) {
      const s = peerState(p.subnet ? `10.10.${[0, 32, 48][i]}.0/20` : '');
      expect(s.neigh).toMatchObject({ mac: `0a:00:00:00:00:0${i + 2}`, permanent: true });
      expect(s.fdb).toEqual([{ dev: 'flannel.100', mac: `0a:00:00:00:00:0${i + 2}`, dst: `192.168.100.${i + 2}`, self: true, permanent: true }]);
      expect(s.route).toMatchObject({ via: s.neigh!.ip, dev: 'flannel.100', onlink: true });
    }
  });

  it('a second identical add changes nothing and does not fail (replace semantics)', async () => {
    const { nw } = await running();
    manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
    await until(() => nw.knownPeers().size === 3, 'nw.knownPeers().size === 3', IN_PROCESS);
    const before = JSON.stringify(ns());
    manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
    await until(() => logs.length > 0 && JSON.stringify(ns()) === before, 'logs.length > 0 && JSON.stringify(ns()) === before', IN_PROCESS);
    expect(ns().neighs).toHaveLength(3);
    expect(ns().fdb).toHaveLength(3);
    expect(logs.join('\n')).not.toMatch(/failed/);
  });

  it('removes exactly the removed peer: route, neighbour and FDB entry', async () => {
    const { nw } = await running();
    manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
    await until(() => nw.knownPeers().size === 3, 'nw.knownPeers().size === 3', IN_PROCESS);
    manager.push([{ type: 'removed', lease: PEERS[1]! }]);
    await until(() => nw.knownPeers().size === 2, 'nw.knownPeers().size === 2', IN_PROCESS);
    expect(peerState('10.10.32.0/20')).toEqual({ neigh: undefined, route: undefined, fdb: [] });
    expect(ns().fdb.map((f) => f.mac).sort()).toEqual(['0a:00:00:00:00:02', '0a:00:00:00:00:04']);
    expect(peerState('10.10.0.0/20').route).toBeDefined();
    expect(peerState('10.10.48.0/20').route).toBeDefined();
  });

  it('drops the old FDB entry when a peer comes back with a new VtepMAC', async () => {
    const { nw } = await running();
    manager.push([{ type: 'added', lease: PEERS[0]! }]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    manager.push([{ type: 'added', lease: lease('10.10.0.0/20', '192.168.100.2', '0a:00:00:00:00:99') }]);
    await until(() => ns().neighs[0]?.mac === '0a:00:00:00:00:99', "ns().neighs[0]?.mac === '0a:00:00:00:00:99'", IN_PROCESS);
    expect(ns().fdb).toEqual([{ dev: 'flannel.100', mac: '0a:00:00:00:00:99', dst: '192.168.100.2', self: true, permanent: true }]);
  });

  it('ignores leases of other backend types and skips a bad lease without blocking the others', async () => {
    const { nw } = await running();
    manager.push([
      { type: 'added', lease: lease('10.10.64.0/20', '192.168.100.5', undefined, 'host-gw') },
      { type: 'added', lease: lease('10.10.80.0/20', '192.168.100.6', 'not-a-mac') },
      { type: 'added', lease: lease('10.10.96.0/20', '0.0.0.0', '0a:00:00:00:00:07') },
      { type: 'added', lease: lease('0.0.0.0/0', '192.168.100.8', '0a:00:00:00:00:08') },
      { type: 'added', lease: PEERS[0]! },
    ]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    expect(ns().routes.filter((r) => r.dev === 'flannel.100').map((r) => r.dst)).toEqual(['10.10.0.0/20']);
    expect(logs.join('\n')).toMatch(/refusing peer lease 0\.0\.0\.0\/0 \(PublicIP 192\.168\.100\.8\): its subnet 0\.0\.0\.0\/0 would replace the default route/);
    expect(logs.join('\n')).toMatch(/ignoring non-vxlan v4Subnet\(10\.10\.64\.0\/20\).*type=host-gw/);
    expect(logs.join('\n')).toMatch(/skipping lease 10\.10\.80\.0\/20: .*invalid VtepMAC/);
    expect(logs.join('\n')).toMatch(/skipping lease 10\.10\.96\.0\/20: no public IPv4/);
  });

  it('never leaves a peer half-programmed when a write fails, and retries it', async () => {
    const { nw } = await register({ ...BACKEND });
    const ac = new AbortController();
    controllers.push(ac);
    // the combined batch fails, then the per-lease retry of PEERS[1] fails at its route
    kernel.world.failOn('replaceRoute');
    const net = nw as VxlanNetwork;
    const o = net.timing;
    o.retryDelay = 20;
    void net.run(ac.signal);
    manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
    // the combined batch is retried lease by lease: all three end up programmed
    await until(() => net.knownPeers().size === 3, 'net.knownPeers().size === 3', IN_PROCESS);
    for (const s of ['10.10.0.0/20', '10.10.32.0/20', '10.10.48.0/20']) {
      const st = peerState(s);
      expect(st.neigh && st.route && st.fdb.length === 1).toBeTruthy();
    }
    expect(logs.join('\n')).toMatch(/applying them one by one/);
  });

  it('rolls back a lease whose route cannot be written and programs it on retry', async () => {
    const { nw, ac } = await register();
    const net = nw as VxlanNetwork;
    net.timing.retryDelay = 30;
    void net.run(ac.signal);
    kernel.world.failOn('replaceRoute');
    manager.push([{ type: 'added', lease: PEERS[0]! }]);
    await until(() => logs.some((l) => l.includes('rolling it back')), "logs.some((l) => l.includes('rolling it back'))", IN_PROCESS);
    // rolled back: no neighbour or FDB entry without its route
    expect(peerState('10.10.0.0/20')).toEqual({ neigh: undefined, route: undefined, fdb: [] });
    await until(() => net.knownPeers().size === 1, 'net.knownPeers().size === 1', IN_PROCESS);
    expect(peerState('10.10.0.0/20').route).toBeDefined();
  });

  it('a thrown bug in one batch is logged at error level and the next batch is still programmed', async () => {
    const logger = memoryLogger();
    const { nw, ac } = await register(BACKEND, { logger });
    vi.spyOn(nw as unknown as { planAdd: () => unknown }, 'planAdd').mockImplementationOnce(() => {
      throw new Error('a bug');
    });
    const done = nw.run(ac.signal);
    manager.push([{ type: 'added', lease: PEERS[0]! }]);
    await nw.firstSync;
    manager.push([{ type: 'added', lease: PEERS[1]! }]);
    await until(() => nw.knownPeers().has('10.10.32.0/20'), "nw.knownPeers().has('10.10.32.0/20')", IN_PROCESS);
    expect(logger.lines).toContain('E vxlan: unexpected error: a bug');
    ac.abort();
    await done;
  });

  it('logs a lease the kernel refuses at error level', async () => {
    const logger = memoryLogger();
    const { nw, ac } = await register(BACKEND, { logger });
    nw.timing.retryDelay = 60_000;
    void nw.run(ac.signal);
    kernel.world.failOn('replaceRoute');
    manager.push([{ type: 'added', lease: PEERS[0]! }]);
    await until(() => logger.lines.some((l) => l.includes('failed to program lease')), 'a "failed to program lease" log line', IN_PROCESS);
    expect(logger.lines.filter((l) => l.includes('failed to program lease 10.10.0.0/20'))[0]).toMatch(/^E /);
  });

  it('removes a peer even when some of its entries are already gone', async () => {
    const { nw } = await running();
    manager.push([{ type: 'added', lease: PEERS[0]! }, { type: 'added', lease: PEERS[1]! }]);
    await until(() => nw.knownPeers().size === 2, 'nw.knownPeers().size === 2', IN_PROCESS);
    await kernel.batch([{ op: 'deleteNeigh', dev: 'flannel.100', ip: '10.10.0.0' }]);
    manager.push([{ type: 'removed', lease: PEERS[0]! }]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    expect(peerState('10.10.0.0/20')).toEqual({ neigh: undefined, route: undefined, fdb: [] });
    expect(peerState('10.10.32.0/20').route).toBeDefined();
  });

  it('ignores our own lease', async () => {
    const { nw } = await running();
    manager.push([{ type: 'added', lease: lease(OWN_SUBNET, '192.168.100.1', '0a:00:00:00:00:01') }, { type: 'added', lease: PEERS[0]! }]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    expect(ns().routes.some((r) => r.dst === OWN_SUBNET)).toBe(false);
  });

  it('re-creates a deleted device with the same MAC and re-programs every peer', async () => {
    const { nw } = await running();
    manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
    await until(() => nw.knownPeers().size === 3, 'nw.knownPeers().size === 3', IN_PROCESS);
    const mac = ns().links.get('flannel.100')!.mac;
    await kernel.deleteLink('flannel.100');
    expect(ns().neighs).toHaveLength(0);
    await nw.checkDevices();
    const link = ns().links.get('flannel.100')!;
    expect(link.mac).toBe(mac);
    expect(link.up).toBe(true);
    expect(ns().addrs.filter((a) => a.dev === 'flannel.100').map((a) => a.cidr)).toEqual(['10.10.16.0/32']);
    expect(ns().neighs).toHaveLength(3);
    expect(ns().fdb).toHaveLength(3);
    expect(ns().routes.filter((r) => r.dev === 'flannel.100')).toHaveLength(3);
  });

  it('the watchdog heals a device set down or given a wrong MTU', async () => {
    const { nw } = await running();
    manager.push([{ type: 'added', lease: PEERS[0]! }]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    await kernel.setLinkDown('flannel.100');
    await kernel.setLinkMtu('flannel.100', 1000);
    await nw.checkDevices();
    const link = ns().links.get('flannel.100')!;
    expect(link.up).toBe(true);
    expect(link.mtu).toBe(1450);
    expect(peerState('10.10.0.0/20').route).toBeDefined();
  });

  it('DirectRouting: a peer on the same L2 gets a plain route via its PublicIP, no neighbour or FDB', async () => {
    ns().routes.push({ family: 4, dst: '192.168.100.0/24', dev: 'eth0', scope: 'link', proto: 'kernel' });
    ns().routes.push({ family: 4, dst: 'default', via: '192.168.100.254', dev: 'eth0' });
    const { nw } = await running({ DirectRouting: true });
    manager.push([
      { type: 'added', lease: PEERS[0]! },
      { type: 'added', lease: lease('10.10.128.0/20', '172.16.0.9', '0a:00:00:00:00:09') },
    ]);
    await until(() => nw.knownPeers().size === 2, 'nw.knownPeers().size === 2', IN_PROCESS);
    expect(ns().routes.find((r) => r.dst === '10.10.0.0/20')).toMatchObject({ via: '192.168.100.2' });
    expect(ns().routes.find((r) => r.dst === '10.10.0.0/20')!.dev).toBeUndefined();
    expect(ns().neighs.map((n) => n.ip)).toEqual(['10.10.128.0']);
    expect(ns().routes.find((r) => r.dst === '10.10.128.0/20')).toMatchObject({ via: '10.10.128.0', dev: 'flannel.100', onlink: true });
    manager.push([{ type: 'removed', lease: PEERS[0]! }]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    expect(ns().routes.find((r) => r.dst === '10.10.0.0/20')).toBeUndefined();
  });

  it('converges 5000 peers in one batch', async () => {
    const { nw } = await running();
    const many: LeaseEvent[] = [];
    for (let i = 0; i < 5000; i++) {
      const sub = `10.${20 + Math.floor(i / 256)}.${i % 256}.0/24`;
      const mac = `0a:00:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      many.push({ type: 'added', lease: lease(sub, `192.168.${1 + (i >> 8)}.${i & 0xff}`, mac) });
    }
    const calls = kernel.world.calls;
    manager.push(many);
    await until(() => nw.knownPeers().size === 5000, 'nw.knownPeers().size === 5000', { ms: 15_000 });
    expect(kernel.world.calls - calls).toBe(1);
    expect(ns().routes.filter((r) => r.dev === 'flannel.100')).toHaveLength(5000);
  }, 20_000); // FakeKernel applies 15000 ops in ~5 s (linear scans per op): the default 5 s cut the wait short
});

describe('orderOps', () => {
  it('groups by tool while keeping each peer neighbour → FDB → route, and removals route-first', () => {
    const ops = orderOps([
      { op: 'replaceNeigh', dev: 'f', ip: '10.0.0.0', mac: 'a' },
      { op: 'replaceFdb', dev: 'f', mac: 'a', dst: '1.1.1.1' },
      { op: 'replaceRoute', route: { dst: '10.0.0.0/20' } },
      { op: 'deleteRoute', route: { dst: '10.1.0.0/20' } },
      { op: 'deleteNeigh', dev: 'f', ip: '10.1.0.0' },
      { op: 'deleteFdb', dev: 'f', mac: 'b' },
      { op: 'replaceNeigh', dev: 'f', ip: '10.2.0.0', mac: 'c' },
    ]);
    expect(ops.map((o) => o.op)).toEqual(['replaceNeigh', 'deleteRoute', 'deleteNeigh', 'replaceNeigh', 'replaceFdb', 'deleteFdb', 'replaceRoute']);
    // with iproute2 that is three execs: ip -batch, bridge -batch, ip -batch
    expect(planBatch(ops).map((r) => r.tool)).toEqual(['ip', 'bridge', 'ip']);
  });
});

describe('IPv6 peers', () => {
  const PEER = dualLease({ subnet: '10.10.32.0/20', v6: 'fd00:10:32::/64', publicIP: '192.168.100.3', publicIPv6: 'fd00::3', mac: '0a:00:00:00:00:03', mac6: '0a:00:00:00:06:03' });

  it('programs a dual-stack peer on flannel.<VNI> and flannel-v6.<VNI> in one batch, and removes both', async () => {
    const { nw, ac } = await registerWith({ enableIPv6: true }, { extIface: EXT6 });
    void nw.run(ac.signal);
    const calls = kernel.world.calls;
    manager.push([{ type: 'added', lease: PEER }]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    expect(kernel.world.calls - calls).toBe(1);
    expect(ns().neighs).toEqual(expect.arrayContaining([
      { dev: 'flannel.100', ip: '10.10.32.0', mac: '0a:00:00:00:00:03', permanent: true },
      { dev: 'flannel-v6.100', ip: 'fd00:10:32::', mac: '0a:00:00:00:06:03', permanent: true },
    ]));
    expect(ns().fdb).toEqual(expect.arrayContaining([
      { dev: 'flannel.100', mac: '0a:00:00:00:00:03', dst: '192.168.100.3', self: true, permanent: true },
      { dev: 'flannel-v6.100', mac: '0a:00:00:00:06:03', dst: 'fd00::3', self: true, permanent: true },
    ]));
    expect(ns().routes.find((r) => r.dst === 'fd00:10:32::/64')).toMatchObject({ family: 6, via: 'fd00:10:32::', dev: 'flannel-v6.100', onlink: true });
    expect(ns().routes.find((r) => r.dst === '10.10.32.0/20')).toMatchObject({ via: '10.10.32.0', dev: 'flannel.100', onlink: true });

    manager.push([{ type: 'removed', lease: PEER }]);
    await until(() => nw.knownPeers().size === 0, 'nw.knownPeers().size === 0', IN_PROCESS);
    expect(ns().neighs).toEqual([]);
    expect(ns().fdb).toEqual([]);
    expect(ns().routes.filter((r) => r.dev?.startsWith('flannel'))).toEqual([]);
  });

  it('v6-only network: only flannel-v6.<VNI>, MTU − 70, the peer programmed there', async () => {
    const { nw, ac } = await registerWith({ enableIPv4: false, enableIPv6: true }, { extIface: EXT6 });
    expect(ns().links.has('flannel.100')).toBe(false);
    expect(ns().links.get('flannel-v6.100')!.mtu).toBe(1430);
    expect(nw.mtu()).toBe(1430);
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: dualLease({ v6: 'fd00:10:48::/64', publicIPv6: 'fd00::4', mac6: '0a:00:00:00:06:04' }) }]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    expect(ns().neighs).toEqual([{ dev: 'flannel-v6.100', ip: 'fd00:10:48::', mac: '0a:00:00:00:06:04', permanent: true }]);
    expect(ns().fdb).toEqual([{ dev: 'flannel-v6.100', mac: '0a:00:00:00:06:04', dst: 'fd00::4', self: true, permanent: true }]);
    expect(ns().routes.find((r) => r.dst === 'fd00:10:48::/64')).toMatchObject({ via: 'fd00:10:48::', dev: 'flannel-v6.100', onlink: true });
  });

  it('a v4-only peer on a dual-stack network gets only the v4 entries', async () => {
    const { nw, ac } = await registerWith({ enableIPv6: true }, { extIface: EXT6 });
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: lease('10.10.0.0/20', '192.168.100.2', '0a:00:00:00:00:02') }]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    expect(ns().neighs.map((n) => n.dev)).toEqual(['flannel.100']);
    expect(ns().routes.filter((r) => r.dev === 'flannel-v6.100')).toEqual([]);
  });

  it('DirectRouting applies per family: a v6 PublicIP on the same L2 gets a plain v6 route', async () => {
    ns().routes.push({ family: 6, dst: 'fd00::/64', dev: 'eth0', proto: 'kernel' });
    ns().routes.push({ family: 4, dst: 'default', via: '192.168.100.254', dev: 'eth0' });
    const { nw, ac } = await registerWith({ enableIPv6: true, backend: { ...BACKEND, DirectRouting: true } }, { extIface: EXT6 });
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: dualLease({ subnet: '10.10.32.0/20', v6: 'fd00:10:32::/64', publicIP: '172.16.0.3', publicIPv6: 'fd00::3', mac: '0a:00:00:00:00:03', mac6: '0a:00:00:00:06:03' }) }]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    expect(ns().routes.find((r) => r.dst === 'fd00:10:32::/64')).toEqual({ family: 6, dst: 'fd00:10:32::/64', via: 'fd00::3' });
    expect(ns().routes.find((r) => r.dst === '10.10.32.0/20')).toMatchObject({ via: '10.10.32.0', dev: 'flannel.100', onlink: true });
    expect(ns().neighs.map((n) => n.dev)).toEqual(['flannel.100']);
  });
});
