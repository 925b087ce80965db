import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake-kernel.js';
import { formatIP, parseIP, parseNet } from '../../../../../shared/net/ip.js';
import type { BackendDeps, ExternalInterface } from '../../../../../daemon/backend/backend.js';
import type { Lease, LeaseEvent } from '../../../../../daemon/lease.js';
import type { KernelOp } from '../../../../../shared/kernel/kernel.js';
import { FakeSubnetManager, vxlanLease } from '../../../../helpers/fake-subnet-manager.js';
import {
  createVxlanBackend,
  macFilePath,
  parseVxlanConfig,
} from '../../../../../daemon/backend/vxlan/vxlan.js';
import { vxlanIncompat } from '../../../../../daemon/backend/vxlan/device.js';
import { orderOps, type VxlanNetwork } from '../../../../../daemon/backend/vxlan/network.js';
import { planBatch } from '../../../../../shared/kernel/iproute.js';

const OWN_SUBNET = '10.10.16.0/20';

const lease = vxlanLease;

class FakeManager extends FakeSubnetManager {
  constructor() {
    super(OWN_SUBNET);
  }
}

const EXT: ExternalInterface = {
  iface: { name: 'eth0', index: 2, mtu: 1500 },
  ifaceAddr: parseIP('192.168.100.1'),
  extAddr: parseIP('192.168.100.1'),
};

const BACKEND = { Type: 'vxlan', VNI: 100, Port: 8472 };

let stateDir: string;
let kernel: FakeKernel;
let manager: FakeManager;
let logs: string[];
const controllers: AbortController[] = [];

function deps(over: Partial<BackendDeps> = {}): BackendDeps {
  return { subnetManager: manager, extIface: EXT, kernel, stateDir, log: (m) => logs.push(m), ...over };
}

async function register(backend: Record<string, unknown> = BACKEND, over: Partial<BackendDeps> = {}) {
  const ac = new AbortController();
  controllers.push(ac);
  const nw = (await createVxlanBackend(deps(over)).registerNetwork(ac.signal, {
    enableIPv4: true,
    enableIPv6: false,
    backend,
  })) as VxlanNetwork;
  return { nw, ac };
}

const ns = () => kernel.world.namespaces.get('/')!;

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met before the deadline');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** What the kernel holds for a peer on flannel.100. */
function peerState(subnet: string) {
  const gw = subnet.split('/')[0]!;
  const s = ns();
  const neigh = s.neighs.find((n) => n.dev === 'flannel.100' && n.ip === gw);
  const route = s.routes.find((r) => r.dst === subnet);
  const fdb = neigh ? s.fdb.filter((f) => f.dev === 'flannel.100' && f.mac === neigh.mac) : [];
  return { neigh, route, fdb };
}

beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'vxlan-unit-'));
  kernel = new FakeKernel();
  manager = new FakeManager();
  logs = [];
});

afterEach(() => {
  for (const ac of controllers.splice(0)) ac.abort();
  rmSync(stateDir, { recursive: true, force: true });
});

describe('parseVxlanConfig', () => {
  it('defaults as upstream: VNI 1, Port 0 (kernel 8472), nolearning, MTU of the interface', () => {
    expect(parseVxlanConfig({ Type: 'vxlan' }, 1500)).toEqual({ vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 1500 });
  });

  it('reads every key case-insensitively', () => {
    expect(parseVxlanConfig({ type: 'vxlan', vni: 42, port: 4789, gbp: true, learning: true, directRouting: true, mtu: 9000 }, 1500)).toEqual({
      vni: 42, port: 4789, gbp: true, learning: true, directRouting: true, mtu: 9000,
    });
  });

  it.each([
    [{ VNI: '100' }, /error decoding VXLAN backend config: json: cannot unmarshal string into Go struct field .*VNI of type int/],
    [{ Port: 1.5 }, /error decoding VXLAN backend config: .*Port of type int/],
    [{ Learning: 'yes' }, /error decoding VXLAN backend config: .*Learning of type bool/],
    [{ VNI: 1 << 24 }, /error decoding VXLAN backend config: VNI 16777216 out of range/],
  ])('rejects %j', (raw, msg) => {
    expect(() => parseVxlanConfig(raw, 1500)).toThrow(msg);
  });
});

describe('registerNetwork', () => {
  it('creates flannel.<VNI> as upstream and acquires the lease with the exact BackendData', async () => {
    const { nw } = await register();
    const link = ns().links.get('flannel.100')!;
    expect(link.kind).toBe('vxlan');
    expect(link.vxlan).toMatchObject({ vni: 100, port: 8472, local: '192.168.100.1', learning: false, gbp: false, dev: 'eth0' });
    expect(link.mtu).toBe(1450);
    expect(link.up).toBe(true);
    expect(ns().addrs.filter((a) => a.dev === 'flannel.100').map((a) => a.cidr)).toEqual(['10.10.16.0/32']);
    // no whole-network or subnet route on the device: only per-peer routes
    expect(ns().routes.filter((r) => r.dev === 'flannel.100')).toEqual([]);
    expect(nw.mtu()).toBe(1450);
    expect(nw.lease().subnet).toEqual(parseNet(OWN_SUBNET));

    const attrs = manager.acquired[0]!;
    expect(attrs.backendType).toBe('vxlan');
    expect(JSON.stringify(attrs.backendData)).toBe(`{"VNI":100,"VtepMAC":"${link.mac}"}`);
    expect(readFileSync(macFilePath(stateDir, 'flannel.100'), 'utf8').trim()).toBe(link.mac);
  });

  it('uses the configured underlay MTU minus 50 and learning/GBP when asked', async () => {
    const { nw } = await register({ Type: 'vxlan', VNI: 7, MTU: 9000, Learning: true, GBP: true });
    const link = ns().links.get('flannel.7')!;
    expect(link.mtu).toBe(8950);
    expect(link.vxlan).toMatchObject({ vni: 7, learning: true, gbp: true });
    expect(nw.mtu()).toBe(8950);
  });

  it('keeps the VtepMAC and the device across a restart', async () => {
    await register();
    const first = { ...ns().links.get('flannel.100')! };
    await register();
    const second = ns().links.get('flannel.100')!;
    expect(second.mac).toBe(first.mac);
    expect(second.index).toBe(first.index);
    expect(JSON.stringify(manager.acquired[1]!.backendData)).toBe(JSON.stringify(manager.acquired[0]!.backendData));
  });

  it('re-creates a lost device with the persisted MAC', async () => {
    await register();
    const mac = ns().links.get('flannel.100')!.mac;
    await kernel.deleteLink('flannel.100');
    await register();
    expect(ns().links.get('flannel.100')!.mac).toBe(mac);
  });

  it('adopts the MAC of a device left by an earlier flanneld when no MAC was persisted', async () => {
    await kernel.ensureVxlan('flannel.100', { vni: 100, port: 8472, local: '192.168.100.1', dev: 'eth0', learning: false, mac: '0a:11:22:33:44:55', mtu: 1450 });
    await register();
    expect(ns().links.get('flannel.100')!.mac).toBe('0a:11:22:33:44:55');
    expect(readFileSync(macFilePath(stateDir, 'flannel.100'), 'utf8').trim()).toBe('0a:11:22:33:44:55');
  });

  it('reconciles the MTU of a compatible device without re-creating it', async () => {
    await register();
    const before = ns().links.get('flannel.100')!;
    await kernel.setLinkMtu('flannel.100', 1300);
    await register();
    const after = ns().links.get('flannel.100')!;
    expect(after.index).toBe(before.index);
    expect(after.mtu).toBe(1450);
  });

  it.each([
    ['another local address', { local: '192.168.100.9' }],
    ['another VNI', { vni: 5 }],
    ['learning on', { learning: true }],
  ])('re-creates a device with %s', async (_what, change) => {
    writeFileSync(macFilePath(stateDir, 'flannel.100'), '0a:bb:cc:dd:ee:ff\n');
    await kernel.ensureVxlan('flannel.100', {
      vni: 100, port: 8472, local: '192.168.100.1', dev: 'eth0', learning: false, mac: '0a:bb:cc:dd:ee:ff', mtu: 1450, ...change,
    });
    const before = ns().links.get('flannel.100')!.index;
    await register();
    const link = ns().links.get('flannel.100')!;
    expect(link.index).not.toBe(before);
    expect(link.mac).toBe('0a:bb:cc:dd:ee:ff');
    expect(link.vxlan).toMatchObject({ vni: 100, local: '192.168.100.1', learning: false });
    expect(logs.join('\n')).toMatch(/incompatible configuration/);
  });

  it('removes a stale address of an earlier lease (no Network given: every other v4 address)', async () => {
    await register();
    await kernel.ensureAddr('flannel.100', '10.10.32.0/32');
    await register();
    expect(ns().addrs.filter((a) => a.dev === 'flannel.100').map((a) => a.cidr)).toEqual(['10.10.16.0/32']);
  });

  it('gives the IPv6 device MTU − 70', async () => {
    const ext: ExternalInterface = { ...EXT, ifaceV6Addr: parseIP('fd00::1'), extV6Addr: parseIP('fd00::1') };
    const ac = new AbortController();
    controllers.push(ac);
    const nw = await createVxlanBackend(deps({ extIface: ext })).registerNetwork(ac.signal, { enableIPv4: true, enableIPv6: true, backend: BACKEND });
    expect(ns().links.get('flannel.100')!.mtu).toBe(1450);
    expect(ns().links.get('flannel-v6.100')!.mtu).toBe(1430);
    expect(ns().addrs.filter((a) => a.dev === 'flannel-v6.100').map((a) => a.cidr)).toEqual(['fd00:10:16::/128']);
    expect(nw.mtu()).toBe(1430);
    const attrs = manager.acquired[0]!;
    expect((attrs.backendV6Data as { VtepMAC: string }).VtepMAC).toBe(ns().links.get('flannel-v6.100')!.mac);
  });
});

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
    const execs = kernel.world.execs;
    manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
    await until(() => nw.knownPeers().size === 3);
    expect(kernel.world.execs - execs).toBe(1);
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
    await until(() => nw.knownPeers().size === 3);
    const before = JSON.stringify(ns());
    manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
    await until(() => logs.length > 0 && JSON.stringify(ns()) === before);
    expect(ns().neighs).toHaveLength(3);
    expect(ns().fdb).toHaveLength(3);
    expect(logs.join('\n')).not.toMatch(/failed/);
  });

  it('removes exactly the removed peer: route, neighbour and FDB entry', async () => {
    const { nw } = await running();
    manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
    await until(() => nw.knownPeers().size === 3);
    manager.push([{ type: 'removed', lease: PEERS[1]! }]);
    await until(() => nw.knownPeers().size === 2);
    expect(peerState('10.10.32.0/20')).toEqual({ neigh: undefined, route: undefined, fdb: [] });
    expect(ns().fdb.map((f) => f.mac).sort()).toEqual(['0a:00:00:00:00:02', '0a:00:00:00:00:04']);
    expect(peerState('10.10.0.0/20').route).toBeDefined();
    expect(peerState('10.10.48.0/20').route).toBeDefined();
  });

  it('drops the old FDB entry when a peer comes back with a new VtepMAC', async () => {
    const { nw } = await running();
    manager.push([{ type: 'added', lease: PEERS[0]! }]);
    await until(() => nw.knownPeers().size === 1);
    manager.push([{ type: 'added', lease: lease('10.10.0.0/20', '192.168.100.2', '0a:00:00:00:00:99') }]);
    await until(() => ns().neighs[0]?.mac === '0a:00:00:00:00:99');
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
    await until(() => nw.knownPeers().size === 1);
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
    await until(() => net.knownPeers().size === 3);
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
    await until(() => logs.some((l) => l.includes('rolling it back')));
    // rolled back: no neighbour or FDB entry without its route
    expect(peerState('10.10.0.0/20')).toEqual({ neigh: undefined, route: undefined, fdb: [] });
    await until(() => net.knownPeers().size === 1);
    expect(peerState('10.10.0.0/20').route).toBeDefined();
  });

  it('removes a peer even when some of its entries are already gone', async () => {
    const { nw } = await running();
    manager.push([{ type: 'added', lease: PEERS[0]! }, { type: 'added', lease: PEERS[1]! }]);
    await until(() => nw.knownPeers().size === 2);
    await kernel.batch([{ op: 'deleteNeigh', dev: 'flannel.100', ip: '10.10.0.0' }]);
    manager.push([{ type: 'removed', lease: PEERS[0]! }]);
    await until(() => nw.knownPeers().size === 1);
    expect(peerState('10.10.0.0/20')).toEqual({ neigh: undefined, route: undefined, fdb: [] });
    expect(peerState('10.10.32.0/20').route).toBeDefined();
  });

  it('ignores our own lease', async () => {
    const { nw } = await running();
    manager.push([{ type: 'added', lease: lease(OWN_SUBNET, '192.168.100.1', '0a:00:00:00:00:01') }, { type: 'added', lease: PEERS[0]! }]);
    await until(() => nw.knownPeers().size === 1);
    expect(ns().routes.some((r) => r.dst === OWN_SUBNET)).toBe(false);
  });

  it('re-creates a deleted device with the same MAC and re-programs every peer', async () => {
    const { nw } = await running();
    manager.push(PEERS.map((l) => ({ type: 'added' as const, lease: l })));
    await until(() => nw.knownPeers().size === 3);
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
    await until(() => nw.knownPeers().size === 1);
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
    await until(() => nw.knownPeers().size === 2);
    expect(ns().routes.find((r) => r.dst === '10.10.0.0/20')).toMatchObject({ via: '192.168.100.2' });
    expect(ns().routes.find((r) => r.dst === '10.10.0.0/20')!.dev).toBeUndefined();
    expect(ns().neighs.map((n) => n.ip)).toEqual(['10.10.128.0']);
    expect(ns().routes.find((r) => r.dst === '10.10.128.0/20')).toMatchObject({ via: '10.10.128.0', dev: 'flannel.100', onlink: true });
    manager.push([{ type: 'removed', lease: PEERS[0]! }]);
    await until(() => nw.knownPeers().size === 1);
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
    const execs = kernel.world.execs;
    manager.push(many);
    await until(() => nw.knownPeers().size === 5000, 15_000);
    expect(kernel.world.execs - execs).toBe(1);
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

describe('vxlanIncompat', () => {
  const base = { name: 'flannel.1', family: 4 as const, vni: 1, vtepDev: 'eth0', vtepAddr: '10.0.0.1', vtepPort: 0, gbp: false, learning: false, mtu: 1450, mac: '0a:00:00:00:00:01' };
  const link = { name: 'flannel.1', index: 5, kind: 'vxlan', mtu: 1450, mac: '0a:00:00:00:00:01', up: true, vxlan: { vni: 1, port: 8472, local: '10.0.0.1', learning: false, gbp: false, dev: 'eth0' } };
  it('treats Port 0 as the kernel default 8472 and ignores the MTU', () => {
    expect(vxlanIncompat({ ...link, mtu: 9000 }, base)).toBeUndefined();
    expect(vxlanIncompat({ ...link, vxlan: { ...link.vxlan, port: 4789 } }, base)).toMatch(/port 4789 != 8472/);
  });
  it('names the first difference', () => {
    expect(vxlanIncompat({ ...link, kind: 'bridge' }, base)).toMatch(/type bridge/);
    expect(vxlanIncompat({ ...link, vxlan: { ...link.vxlan, gbp: true } }, base)).toMatch(/gbp/);
  });
});

/** A peer lease as a dual-stack (or, without `subnet`, a v6-only) flanneld writes it. */
function dualLease(o: { subnet?: string; v6: string; publicIP?: string; publicIPv6: string; mac?: string; mac6: string }): Lease {
  const l: Lease = {
    enableIPv4: o.subnet !== undefined,
    enableIPv6: true,
    subnet: parseNet(o.subnet ?? '0.0.0.0/0'),
    ipv6Subnet: parseNet(o.v6),
    attrs: {
      publicIP: parseIP(o.publicIP ?? '0.0.0.0'),
      publicIPv6: parseIP(o.publicIPv6),
      backendType: 'vxlan',
      backendV6Data: { VNI: 100, VtepMAC: o.mac6 },
    },
    expiration: Date.now() + 86_400_000,
  };
  if (o.mac !== undefined) l.attrs.backendData = { VNI: 100, VtepMAC: o.mac };
  return l;
}

const EXT6: ExternalInterface = { ...EXT, ifaceV6Addr: parseIP('fd00::1'), extV6Addr: parseIP('fd00::1') };

async function registerWith(config: { enableIPv4?: boolean; enableIPv6?: boolean; network?: string; backend?: Record<string, unknown> }, over: Partial<BackendDeps> = {}) {
  const ac = new AbortController();
  controllers.push(ac);
  const nw = (await createVxlanBackend(deps(over)).registerNetwork(ac.signal, {
    enableIPv4: config.enableIPv4 ?? true,
    enableIPv6: config.enableIPv6 ?? false,
    backend: config.backend ?? BACKEND,
    ...(config.network ? { network: parseNet(config.network) } : {}),
  })) as VxlanNetwork;
  return { nw, ac };
}

const addrsOn = (dev: string) => ns().addrs.filter((a) => a.dev === dev).map((a) => a.cidr).sort();

describe('device address (upstream TestEnsureV4AddressOnLink)', () => {
  it('keeps addresses outside the flannel Network and removes the other ones inside it', async () => {
    await registerWith({ network: '10.10.0.0/16' });
    for (const cidr of ['10.10.32.0/32', '10.10.48.1/24', '192.0.2.7/32', '172.31.1.1/24']) await kernel.ensureAddr('flannel.100', cidr);
    await registerWith({ network: '10.10.0.0/16' });
    expect(addrsOn('flannel.100')).toEqual(['10.10.16.0/32', '172.31.1.1/24', '192.0.2.7/32']);
    expect(logs.filter((l) => l.includes('removing stale address')).sort()).toEqual([
      'removing stale address 10.10.32.0/32 from flannel.100',
      'removing stale address 10.10.48.1/24 from flannel.100',
    ]);
  });

  it('replaces our own address held with another prefix length', async () => {
    await registerWith({ network: '10.10.0.0/16' });
    await kernel.deleteAddr('flannel.100', '10.10.16.0/32');
    await kernel.ensureAddr('flannel.100', '10.10.16.0/20');
    await registerWith({ network: '10.10.0.0/16' });
    expect(addrsOn('flannel.100')).toEqual(['10.10.16.0/32']);
  });

  it('removes stale addresses, adds ours and sets the link up in one batch', async () => {
    await registerWith({ network: '10.10.0.0/16' });
    await kernel.ensureAddr('flannel.100', '10.10.32.0/32');
    await kernel.setLinkDown('flannel.100');
    const batches: KernelOp[][] = [];
    const spy = vi.spyOn(kernel, 'batch').mockImplementation(async function (this: FakeKernel, ops) {
      batches.push([...ops]);
      return FakeKernel.prototype.batch.call(this, ops);
    });
    await registerWith({ network: '10.10.0.0/16' });
    spy.mockRestore();
    expect(batches).toEqual([[
      { op: 'deleteAddr', dev: 'flannel.100', cidr: '10.10.32.0/32' },
      { op: 'setLinkUp', dev: 'flannel.100' },
    ]]);
    expect(ns().links.get('flannel.100')!.up).toBe(true);
  });

  it('refuses a peer whose subnet lies outside the Network (no route over the LAN or the default)', async () => {
    const { nw, ac } = await registerWith({ network: '10.10.0.0/16' });
    void nw.run(ac.signal);
    manager.push([
      { type: 'added', lease: lease('192.168.100.0/24', '192.168.100.3', '0a:00:00:00:00:03') },
      { type: 'added', lease: lease('10.10.32.0/20', '192.168.100.2', '0a:00:00:00:00:02') },
    ]);
    await until(() => nw.knownPeers().size === 1);
    expect(ns().routes.filter((r) => r.dev === 'flannel.100').map((r) => r.dst)).toEqual(['10.10.32.0/20']);
    expect(logs.join('\n')).toMatch(/refusing peer lease 192\.168\.100\.0\/24 .*: its subnet 192\.168\.100\.0\/24 is outside the network 10\.10\.0\.0\/16/);
    ac.abort();
  });

  it('the watchdog re-configures a repaired device with the same rule', async () => {
    const { nw } = await registerWith({ network: '10.10.0.0/16' });
    await kernel.ensureAddr('flannel.100', '192.0.2.7/32');
    await kernel.ensureAddr('flannel.100', '10.10.99.0/32');
    await kernel.setLinkDown('flannel.100');
    await nw.checkDevices();
    expect(addrsOn('flannel.100')).toEqual(['10.10.16.0/32', '192.0.2.7/32']);
  });

  it('IPv6: keeps link-local addresses and exactly one global one (upstream EnsureV6AddressOnLink)', async () => {
    await registerWith({ enableIPv6: true, network: '10.10.0.0/16' }, { extIface: EXT6 });
    await kernel.ensureAddr('flannel-v6.100', 'fd00:99::1/128');
    await kernel.ensureAddr('flannel-v6.100', 'fe80::1/64');
    await registerWith({ enableIPv6: true, network: '10.10.0.0/16' }, { extIface: EXT6 });
    expect(addrsOn('flannel-v6.100')).toEqual(['fd00:10:16::/128', 'fe80::1/64']);
  });
});

describe('IPv6 peers', () => {
  const PEER = dualLease({ subnet: '10.10.32.0/20', v6: 'fd00:10:32::/64', publicIP: '192.168.100.3', publicIPv6: 'fd00::3', mac: '0a:00:00:00:00:03', mac6: '0a:00:00:00:06:03' });

  it('programs a dual-stack peer on flannel.<VNI> and flannel-v6.<VNI> in one batch, and removes both', async () => {
    const { nw, ac } = await registerWith({ enableIPv6: true }, { extIface: EXT6 });
    void nw.run(ac.signal);
    const execs = kernel.world.execs;
    manager.push([{ type: 'added', lease: PEER }]);
    await until(() => nw.knownPeers().size === 1);
    expect(kernel.world.execs - execs).toBe(1);
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
    await until(() => nw.knownPeers().size === 0);
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
    await until(() => nw.knownPeers().size === 1);
    expect(ns().neighs).toEqual([{ dev: 'flannel-v6.100', ip: 'fd00:10:48::', mac: '0a:00:00:00:06:04', permanent: true }]);
    expect(ns().fdb).toEqual([{ dev: 'flannel-v6.100', mac: '0a:00:00:00:06:04', dst: 'fd00::4', self: true, permanent: true }]);
    expect(ns().routes.find((r) => r.dst === 'fd00:10:48::/64')).toMatchObject({ via: 'fd00:10:48::', dev: 'flannel-v6.100', onlink: true });
  });

  it('a v4-only peer on a dual-stack network gets only the v4 entries', async () => {
    const { nw, ac } = await registerWith({ enableIPv6: true }, { extIface: EXT6 });
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: lease('10.10.0.0/20', '192.168.100.2', '0a:00:00:00:00:02') }]);
    await until(() => nw.knownPeers().size === 1);
    expect(ns().neighs.map((n) => n.dev)).toEqual(['flannel.100']);
    expect(ns().routes.filter((r) => r.dev === 'flannel-v6.100')).toEqual([]);
  });

  it('DirectRouting applies per family: a v6 PublicIP on the same L2 gets a plain v6 route', async () => {
    ns().routes.push({ family: 6, dst: 'fd00::/64', dev: 'eth0', proto: 'kernel' });
    ns().routes.push({ family: 4, dst: 'default', via: '192.168.100.254', dev: 'eth0' });
    const { nw, ac } = await registerWith({ enableIPv6: true, backend: { ...BACKEND, DirectRouting: true } }, { extIface: EXT6 });
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: dualLease({ subnet: '10.10.32.0/20', v6: 'fd00:10:32::/64', publicIP: '172.16.0.3', publicIPv6: 'fd00::3', mac: '0a:00:00:00:00:03', mac6: '0a:00:00:00:06:03' }) }]);
    await until(() => nw.knownPeers().size === 1);
    expect(ns().routes.find((r) => r.dst === 'fd00:10:32::/64')).toEqual({ family: 6, dst: 'fd00:10:32::/64', via: 'fd00::3' });
    expect(ns().routes.find((r) => r.dst === '10.10.32.0/20')).toMatchObject({ via: '10.10.32.0', dev: 'flannel.100', onlink: true });
    expect(ns().neighs.map((n) => n.dev)).toEqual(['flannel.100']);
  });
});

describe('entries left by leases deleted while flanneld was down', () => {
  const A = lease('10.10.0.0/20', '192.168.100.2', '0a:00:00:00:00:02');
  const B = lease('10.10.32.0/20', '192.168.100.3', '0a:00:00:00:00:03');
  const C = lease('10.10.48.0/20', '192.168.100.4', '0a:00:00:00:00:04');

  /** What a previous run wrote for a peer (neighbour, FDB, onlink route). */
  const programmed = (dev: string, subnet: string, gw: string, mac: string, publicIP: string): KernelOp[] => [
    { op: 'replaceNeigh', dev, ip: gw, mac },
    { op: 'replaceFdb', dev, mac, dst: publicIP },
    { op: 'replaceRoute', route: { dst: subnet, via: gw, dev, onlink: true } },
  ];

  /** Records every write batch the network sends. */
  function recordBatches(): KernelOp[][] {
    const batches: KernelOp[][] = [];
    vi.spyOn(kernel, 'batch').mockImplementation(async function (this: FakeKernel, ops) {
      batches.push([...ops]);
      return FakeKernel.prototype.batch.call(this, ops);
    });
    return batches;
  }

  afterEach(() => vi.restoreAllMocks());

  it('removes only the stale peer, after the snapshot is programmed, in one batch; foreign entries stay', async () => {
    await registerWith({});
    // the previous run's peers A, B, C; B's lease was deleted while we were down
    for (const [l, i] of [[A, 0], [B, 32], [C, 48]] as const) {
      const m = (l.attrs.backendData as { VtepMAC: string }).VtepMAC;
      await kernel.batch(programmed('flannel.100', `10.10.${i}.0/20`, `10.10.${i}.0`, m, formatIP(l.attrs.publicIP)));
    }
    // not flannel's: a learned neighbour, an operator's dev route, the all-zeros flood entry on our
    // device; a look-alike device; a plain route on the underlay
    ns().neighs.push({ dev: 'flannel.100', ip: '10.10.99.9', mac: '0a:00:00:00:99:99', permanent: false });
    await kernel.replaceRoute({ dst: '10.99.0.0/16', dev: 'flannel.100' });
    await kernel.batch([{ op: 'appendFdb', dev: 'flannel.100', mac: '00:00:00:00:00:00', dst: '192.168.100.50' }]);
    await kernel.ensureVxlan('flannel.200', { vni: 200, port: 8472, local: '192.168.100.1', learning: false });
    await kernel.batch(programmed('flannel.200', '10.20.32.0/20', '10.20.32.0', '0a:00:00:00:00:03', '192.168.100.3'));
    await kernel.replaceRoute({ dst: '10.30.0.0/16', via: '192.168.100.3' });
    const foreign = JSON.stringify({
      neighs: ns().neighs.filter((n) => !(n.dev === 'flannel.100' && n.permanent)),
      fdb: ns().fdb.filter((f) => f.dev !== 'flannel.100' || f.mac === '00:00:00:00:00:00'),
      routes: ns().routes.filter((r) => !(r.dev === 'flannel.100' && r.onlink)),
    });

    // flanneld starts again: the device is there, so it is searched for leftovers
    const { nw, ac } = await registerWith({});
    const batches = recordBatches();
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: A }, { type: 'added', lease: C }]);
    await until(() => logs.some((l) => /^removed \d+ stale entries/.test(l)));
    await until(() => batches.length === 2);

    expect(peerState('10.10.32.0/20')).toEqual({ neigh: undefined, route: undefined, fdb: [] });
    expect(ns().fdb.some((f) => f.mac === '0a:00:00:00:00:03' && f.dev === 'flannel.100')).toBe(false);
    for (const s of ['10.10.0.0/20', '10.10.48.0/20']) {
      const st = peerState(s);
      expect(st.neigh && st.route && st.fdb.length === 1).toBeTruthy();
    }
    expect(JSON.stringify({
      neighs: ns().neighs.filter((n) => !(n.dev === 'flannel.100' && n.permanent)),
      fdb: ns().fdb.filter((f) => f.dev !== 'flannel.100' || f.mac === '00:00:00:00:00:00'),
      routes: ns().routes.filter((r) => !(r.dev === 'flannel.100' && r.onlink)),
    })).toBe(foreign);
    // batch 1 programs the snapshot, batch 2 is the whole clean-up, route first
    expect(batches[1]).toEqual([
      { op: 'deleteRoute', route: { dst: '10.10.32.0/20', via: '10.10.32.0', dev: 'flannel.100', onlink: true } },
      { op: 'deleteNeigh', dev: 'flannel.100', ip: '10.10.32.0' },
      { op: 'deleteFdb', dev: 'flannel.100', mac: '0a:00:00:00:00:03', dst: '192.168.100.3' },
    ]);
    expect(logs.join('\n')).toMatch(/removed 3 stale entries .*route 10\.10\.32\.0\/20 dev flannel\.100/);
  });

  it('an empty snapshot removes every flannel-owned entry; nothing to remove means no batch', async () => {
    await registerWith({});
    await kernel.batch(programmed('flannel.100', '10.10.32.0/20', '10.10.32.0', '0a:00:00:00:00:03', '192.168.100.3'));
    const { nw, ac } = await registerWith({});
    const batches = recordBatches();
    void nw.run(ac.signal);
    manager.push([]);
    await until(() => batches.length === 1);
    expect(ns().neighs).toEqual([]);
    expect(ns().fdb).toEqual([]);
    expect(ns().routes.filter((r) => r.dev === 'flannel.100')).toEqual([]);

    // a second start with nothing left over writes nothing
    ac.abort();
    const again = await registerWith({});
    const before = { batches: batches.length, execs: kernel.world.execs };
    void again.nw.run(again.ac.signal);
    manager.push([]);
    await again.nw.firstSync;
    expect(batches.length - before.batches).toBe(0);
    expect(kernel.world.execs - before.execs).toBe(3); // routes, neighbours, FDB of flannel.100
  });

  it('drops the FDB entry of the old VtepMAC of a peer that came back with a new one', async () => {
    await registerWith({});
    await kernel.batch(programmed('flannel.100', '10.10.32.0/20', '10.10.32.0', '0a:00:00:00:00:33', '192.168.100.3'));
    const { nw, ac } = await registerWith({});
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: B }]);
    await until(() => logs.some((l) => /^removed \d+ stale entries/.test(l)));
    expect(ns().fdb).toEqual([{ dev: 'flannel.100', mac: '0a:00:00:00:00:03', dst: '192.168.100.3', self: true, permanent: true }]);
    expect(ns().neighs).toEqual([{ dev: 'flannel.100', ip: '10.10.32.0', mac: '0a:00:00:00:00:03', permanent: true }]);
  });

  it('cleans flannel-v6.<VNI> in the same batch as flannel.<VNI>', async () => {
    await registerWith({ enableIPv6: true }, { extIface: EXT6 });
    const kept = dualLease({ subnet: '10.10.48.0/20', v6: 'fd00:10:48::/64', publicIP: '192.168.100.4', publicIPv6: 'fd00::4', mac: '0a:00:00:00:00:04', mac6: '0a:00:00:00:06:04' });
    // 10.10.32.0/20 & fd00:10:32::/64 were deleted while we were down
    for (const [i, m] of [[32, 3], [48, 4]] as const) {
      await kernel.batch([
        ...programmed('flannel.100', `10.10.${i}.0/20`, `10.10.${i}.0`, `0a:00:00:00:00:0${m}`, `192.168.100.${m}`),
        ...programmed('flannel-v6.100', `fd00:10:${i}::/64`, `fd00:10:${i}::`, `0a:00:00:00:06:0${m}`, `fd00::${m}`),
      ]);
    }
    const { nw, ac } = await registerWith({ enableIPv6: true }, { extIface: EXT6 });
    const batches = recordBatches();
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: kept }]);
    await until(() => batches.length === 2);
    // per device route before neighbour; then one bridge run for both FDB entries
    expect(batches[1]!.map((o) => `${o.op} ${'dev' in o ? o.dev : o.op === 'deleteRoute' ? o.route.dev : ''}`)).toEqual([
      'deleteRoute flannel.100', 'deleteNeigh flannel.100', 'deleteRoute flannel-v6.100', 'deleteNeigh flannel-v6.100',
      'deleteFdb flannel.100', 'deleteFdb flannel-v6.100',
    ]);
    expect(ns().neighs.map((n) => n.ip).sort()).toEqual(['10.10.48.0', 'fd00:10:48::']);
    expect(ns().fdb.map((f) => f.dst).sort()).toEqual(['192.168.100.4', 'fd00::4']);
    expect(ns().routes.filter((r) => r.onlink).map((r) => r.dst).sort()).toEqual(['10.10.48.0/20', 'fd00:10:48::/64']);
  });

  it('recognises our routes as `ip route show dev X` lists them (without dev)', async () => {
    await registerWith({});
    await kernel.batch(programmed('flannel.100', '10.10.32.0/20', '10.10.32.0', '0a:00:00:00:00:03', '192.168.100.3'));
    const { nw, ac } = await registerWith({});
    const list = kernel.listRoutes.bind(kernel);
    vi.spyOn(kernel, 'listRoutes').mockImplementation(async (o) =>
      (await list(o)).map((r) => {
        if (o?.dev === undefined) return r;
        const { dev: _dev, ...rest } = r;
        return rest;
      }),
    );
    void nw.run(ac.signal);
    manager.push([]);
    await until(() => logs.some((l) => /^removed \d+ stale entries/.test(l)));
    expect(ns().routes.filter((r) => r.dev === 'flannel.100')).toEqual([]);
  });

  it('falls back to one entry at a time when the clean-up batch fails', async () => {
    await registerWith({});
    await kernel.batch(programmed('flannel.100', '10.10.32.0/20', '10.10.32.0', '0a:00:00:00:00:03', '192.168.100.3'));
    await kernel.batch(programmed('flannel.100', '10.10.48.0/20', '10.10.48.0', '0a:00:00:00:00:04', '192.168.100.4'));
    const { nw, ac } = await registerWith({});
    kernel.world.failOn('deleteNeigh');
    void nw.run(ac.signal);
    manager.push([]);
    await until(() => ns().fdb.length === 0 && ns().neighs.length === 0);
    expect(ns().routes.filter((r) => r.dev === 'flannel.100')).toEqual([]);
    expect(logs.join('\n')).toMatch(/failed to remove stale entries in one batch .*; removing them one by one/);
  });

  it('runs once, after the first batch only', async () => {
    await registerWith({});
    const { nw, ac } = await registerWith({});
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: A }]);
    await nw.firstSync;
    // an entry that shows up later is not ours to judge any more
    await kernel.batch(programmed('flannel.100', '10.10.32.0/20', '10.10.32.0', '0a:00:00:00:00:03', '192.168.100.3'));
    manager.push([{ type: 'added', lease: C }]);
    await until(() => nw.knownPeers().size === 2);
    expect(peerState('10.10.32.0/20').route).toBeDefined();
    expect(logs.join('\n')).not.toMatch(/stale entries/);
  });

  it('leaves a direct route (DirectRouting) alone: it is not on our device', async () => {
    ns().routes.push({ family: 4, dst: '192.168.100.0/24', dev: 'eth0', scope: 'link', proto: 'kernel' });
    await registerWith({ backend: { ...BACKEND, DirectRouting: true } });
    await kernel.replaceRoute({ dst: '10.10.32.0/20', via: '192.168.100.3' });
    const { nw, ac } = await registerWith({ backend: { ...BACKEND, DirectRouting: true } });
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: A }]);
    await nw.firstSync;
    expect(nw.knownPeers().size).toBe(1);
    expect(ns().routes.find((r) => r.dst === '10.10.32.0/20')).toEqual({ family: 4, dst: '10.10.32.0/20', via: '192.168.100.3' });
    expect(ns().routes.find((r) => r.dst === '10.10.0.0/20')).toMatchObject({ via: '192.168.100.2' });
  });
});

