// The netlink adapter against its oracle, the iproute2 adapter: the SAME op lists run through each in
// twin namespaces (A: iproute2, B: netlink, each with its own second namespace for veth peers), and
// after every step the outcome (success, or the failed op's index and code) and the kernel's state as
// `ip -d -j` / `bridge -d -j` print it (links, addresses, routes of every table, neighbours, FDB) must be
// the same, field by field, bar per-instance noise (lifetimes, timers). Then both adapters' reads of
// the same namespace must give the same answers.
import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { KernelError } from '../../../shared/kernel/errors.js';
import { createKernel } from '../../../shared/kernel/iproute2/kernel.js';
import type { Kernel, KernelOp } from '../../../shared/kernel/kernel.js';
import { createNetlinkKernel } from '../../../shared/kernel/netlink/kernel.js';
import { nativeAddon } from '../../../shared/native/load.js';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { until } from '../../helpers/until.js';

interface Side {
  ns: Netns;
  /** where veth peers go */
  peer: Netns;
  kernel: Kernel;
}

interface Twins {
  a: Side;
  b: Side;
  done(): void;
}

function twins(): Twins {
  const side = (tag: string, kernel: (path: string) => Kernel): Side => {
    const ns = createNetns(`df${tag}`);
    const peer = createNetns(`df${tag}p`);
    for (const n of [ns, peer]) {
      // no DAD: addresses must not be tentative in one twin and not the other
      n.exec(['sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    }
    return { ns, peer, kernel: kernel(ns.path) };
  };
  const a = side('a', (p) => createKernel().inNetns(p));
  const b = side('b', (p) => createNetlinkKernel().inNetns(p));
  return { a, b, done: () => [a.ns, a.peer, b.ns, b.peer].forEach((n) => n.delete()) };
}

/** How a batch ended: ok, or which op failed and with what code. */
async function outcome(k: Kernel, ops: readonly KernelOp[]): Promise<string> {
  try {
    await k.batch(ops);
    return 'ok';
  } catch (err) {
    if (!(err instanceof KernelError)) throw err;
    return `failed at ${err.index} with ${err.code}`;
  }
}

/** Per-instance noise in `ip -d -j` output: timers and lifetimes tick, and nothing else may differ. */
const NOISE = /(_timer|_life_time|^used|^updated|^confirmed)$/;

function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (NOISE.test(k)) continue;
    // link state follows carrier, which the kernel settles asynchronously (linkwatch)
    if (k === 'operstate' || k === 'flags' && Array.isArray(x) && x.includes('LOWER_UP')) continue;
    out[k] = normalize(x);
  }
  return out;
}

const DUMPS: Readonly<Record<string, string>> = {
  links: 'ip -d -j link show',
  addrs: 'ip -d -j addr show',
  routes4: 'ip -d -j -4 route show table all',
  routes6: 'ip -d -j -6 route show table all',
  // the permanent ones: what ops write (traffic makes others: ARP for a vxlan peer, multicast)
  neighs: 'ip -d -j neigh show nud permanent',
  fdb: 'bridge -d -j fdb show',
};

/** The state of a namespace as iproute2 prints it (one exec for all of it). */
function dump(ns: Netns): Record<string, unknown> {
  const script = Object.values(DUMPS).map((c) => `${c}; echo`).join('\n');
  const lines = ns.exec(['sh', '-c', script]).stdout.split('\n');
  const out: Record<string, unknown> = {};
  Object.keys(DUMPS).forEach((k, i) => (out[k] = normalize(JSON.parse(lines[i] || '[]'))));
  return out;
}

/** Each side's namespaces dumped; a list of ops on both sides must end the same way and leave the same state. */
async function same(t: Twins, ops: (s: Side) => KernelOp[], expected: string | null = 'ok', o: { compare?: boolean } = {}): Promise<void> {
  const ra = await outcome(t.a.kernel, ops(t.a));
  const rb = await outcome(t.b.kernel, ops(t.b));
  expect({ netlink: rb }).toEqual({ netlink: ra });
  if (expected !== null) expect(ra).toBe(expected); // null: whatever this kernel does, as long as both agree
  if (o.compare === false) return;
  // the kernel settles link state after carrier changes asynchronously (linkwatch, up to 1 s later):
  // wait for the twins to agree, then compare the last dumps so that a lasting difference shows field by field
  let last = { a: {}, b: {}, aPeer: {}, bPeer: {} };
  const agree = () => {
    last = { a: dump(t.a.ns), b: dump(t.b.ns), aPeer: dump(t.a.peer), bPeer: dump(t.b.peer) };
    return isDeepStrictEqual(last.b, last.a) && isDeepStrictEqual(last.bPeer, last.aPeer);
  };
  await until(agree, 'the twins to agree', { ms: 5000, every: 100 }).catch(() => undefined);
  expect(last.b).toEqual(last.a);
  expect(last.bPeer).toEqual(last.aPeer);
}

const MAC = (n: number) => `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`;

/** An underlay (ul0, a bridge standing in for eth0) with v4 and v6 addresses, and a vxlan device on it. */
const underlay = (): KernelOp[] => [
  { op: 'addBridge', name: 'ul0', mtu: 1500 },
  { op: 'setLink', dev: 'ul0', mac: MAC(1), up: true },
  { op: 'replaceAddr', dev: 'ul0', cidr: '10.0.0.1/24' },
  { op: 'addAddr', dev: 'ul0', cidr: 'fd00::1/64' },
  { op: 'addVxlan', name: 'vx0', vni: 7, port: 8472, local: '10.0.0.1', dev: 'ul0', learning: false, gbp: true, mtu: 1450, mac: MAC(2) },
  { op: 'addVxlan', name: 'vx6', vni: 9, port: 4789, local: 'fd00::1', learning: true, mac: MAC(3) },
  { op: 'setLinkUp', dev: 'vx0' },
  { op: 'setLink', dev: 'vx6', up: true, mtu: 1400 },
];

// each case spends a few hundred execs of `ip` on the iproute2 twin and the dumps: slow on a busy machine
describe.skipIf(!canUseNetns || nativeAddon() === undefined)('differential: iproute2 vs netlink adapters', { timeout: 240_000 }, () => {
  afterAll(cleanupNetns);

  it('links: bridge, veth into a second namespace, vxlan with every attribute, ports, up/mtu/mac/promisc/master', () =>
    twinCase(async (t) => {
      await same(t, (s) => [
        { op: 'addBridge', name: 'cni0', mtu: 1400 },
        { op: 'setLink', dev: 'cni0', mac: MAC(4) },
        { op: 'addVeth', name: 'veth0', peer: 'eth0', peerNetns: s.peer.path, mtu: 1400, mac: MAC(5), peerMac: MAC(6) },
        { op: 'addVeth', name: 'veth1', peer: 'veth1p', mac: MAC(7), peerMac: MAC(8) },
        { op: 'setLink', dev: 'veth0', master: 'cni0', up: true, promisc: true },
        { op: 'setBridgePort', dev: 'veth0', hairpin: true, isolated: true },
        { op: 'setBridgePort', dev: 'veth0', isolated: false },
        { op: 'setLink', dev: 'veth1', master: 'cni0', mtu: 1300, promisc: false },
        { op: 'setLinkUp', dev: 'cni0' },
      ]);
      await same(t, (s) => [{ op: 'addVeth', name: 'veth2', peer: 'eth1', peerNetns: s.peer.path, mtu: 9000 }, { op: 'deleteLink', dev: 'veth2' }, { op: 'deleteLink', dev: 'veth1' }]);
      await readsAgree(t);
    }));

  it('addresses and routes of every kind: via, onlink, dev-only, prepend, table, metrics, src, proto, scope, blackhole/unreachable/prohibit, IPv6', () =>
    twinCase(async (t) => {
      await same(t, () => [
        { op: 'addAddr', dev: 'ul0', cidr: '10.1.0.1/24' },
        { op: 'replaceAddr', dev: 'ul0', cidr: '10.1.0.1/24' },
        { op: 'addAddr', dev: 'ul0', cidr: '10.3.0.1/31' },
        { op: 'addAddr', dev: 'lo', cidr: '127.0.0.2/8' },
        { op: 'replaceAddr', dev: 'vx0', cidr: '10.244.1.0/32' },
        { op: 'addAddr', dev: 'vx6', cidr: 'fd01::1/128' },
        { op: 'deleteAddr', dev: 'ul0', cidr: '10.3.0.1/31' },
      ]);
      await same(t, () => [
        { op: 'replaceRoute', route: { dst: '10.244.2.0/24', via: '10.244.2.0', dev: 'vx0', onlink: true } },
        { op: 'replaceRoute', route: { dst: '10.244.3.0/24', via: '10.244.3.0', dev: 'vx0', onlink: true, mtu: 1400, advmss: 1360 } },
        { op: 'addRoute', route: { dst: '10.5.0.0/16', via: '10.0.0.2', dev: 'ul0' } },
        { op: 'addRoute', route: { dst: '10.6.0.0/16', dev: 'ul0' } },
        { op: 'addRoute', route: { dst: '10.7.0.0/16', via: '10.6.0.9', dev: 'ul0' } }, // gateway through the route just added
        { op: 'prependRoute', route: { dst: '10.5.0.0/16', via: '10.0.0.3', dev: 'ul0' } },
        { op: 'addRoute', route: { dst: '10.8.0.0/16', via: '10.0.0.2', dev: 'ul0', src: '10.0.0.1', table: 100, proto: 'static', metric: 50, mtu: 1400, advmss: 1360 } },
        { op: 'addRoute', route: { dst: '10.8.0.0/16', via: '10.0.0.2', dev: 'ul0', table: 1000 } },
        { op: 'addRoute', route: { dst: '10.9.0.0/16', dev: 'ul0', scope: 'host' } },
        { op: 'addRoute', route: { dst: '10.11.0.5', dev: 'ul0', scope: 'link', metric: 10 } },
        { op: 'addRoute', route: { dst: 'default', via: '10.0.0.254', dev: 'ul0' } },
        { op: 'addRoute', route: { dst: '10.97.0.0/16', type: 'blackhole' } },
        { op: 'addRoute', route: { dst: '10.98.0.0/16', type: 'unreachable' } },
        { op: 'addRoute', route: { dst: '10.99.0.0/16', type: 'prohibit' } },
        { op: 'replaceRoute', route: { dst: 'fd02::/64', via: 'fd00::2', dev: 'ul0' } },
        { op: 'replaceRoute', route: { dst: 'fd03::/64', via: 'fd03::', dev: 'vx6', onlink: true } },
        { op: 'addRoute', route: { dst: 'default', via: 'fd00::fe', dev: 'ul0', metric: 2048 } },
        { op: 'addRoute', route: { dst: 'fd04::/64', type: 'blackhole' } },
      ]);
      await same(t, () => [
        { op: 'deleteRoute', route: { dst: '10.5.0.0/16', via: '10.0.0.3', dev: 'ul0' } },
        { op: 'deleteRoute', route: { dst: '10.97.0.0/16', type: 'blackhole' } },
        { op: 'deleteRoute', route: { dst: '10.8.0.0/16', table: 1000 } },
        { op: 'deleteRoute', route: { dst: 'fd02::/64', dev: 'ul0' } },
        { op: 'replaceRoute', route: { dst: '10.244.2.0/24', via: '10.244.2.0', dev: 'vx0', onlink: true, metric: 5 } },
      ]);
      await readsAgree(t);
    }));

  it('neighbours and FDB entries: replace, append, delete (IPv4 and IPv6)', () =>
    twinCase(async (t) => {
      await same(t, () => [
        { op: 'replaceNeigh', dev: 'vx0', ip: '10.244.2.0', mac: MAC(0x21) },
        { op: 'replaceNeigh', dev: 'vx0', ip: '10.244.2.0', mac: MAC(0x22) },
        { op: 'replaceNeigh', dev: 'vx6', ip: 'fd03::', mac: MAC(0x23) },
        { op: 'replaceFdb', dev: 'vx0', mac: MAC(0x22), dst: '10.0.0.2' },
        { op: 'replaceFdb', dev: 'vx0', mac: MAC(0x22), dst: '10.0.0.3' },
        { op: 'appendFdb', dev: 'vx0', mac: '00:00:00:00:00:00', dst: '10.0.0.4' },
        { op: 'appendFdb', dev: 'vx0', mac: '00:00:00:00:00:00', dst: '10.0.0.5' },
        { op: 'replaceFdb', dev: 'vx6', mac: MAC(0x23), dst: 'fd00::3' },
      ]);
      await same(t, () => [
        { op: 'deleteNeigh', dev: 'vx0', ip: '10.244.2.0' },
        { op: 'deleteFdb', dev: 'vx0', mac: '00:00:00:00:00:00', dst: '10.0.0.4' },
        { op: 'deleteFdb', dev: 'vx0', mac: MAC(0x22) },
      ]);
      await readsAgree(t);
    }));

  it('failures: the same op index and errno code, and the same state left behind', () =>
    twinCase(async (t) => {
      const once = { compare: false }; // single failed ops leave nothing: the state is compared once, below
      await same(t, () => [{ op: 'setLinkUp', dev: 'ul0' }, { op: 'addBridge', name: 'ul0' }], 'failed at 1 with EEXIST');
      await same(t, () => [{ op: 'addVeth', name: 'vx0', peer: 'p0' }], 'failed at 0 with EEXIST', once);
      await same(t, () => [{ op: 'addVeth', name: 'b1', peer: 'b1p', mac: MAC(10), peerMac: MAC(11) }, { op: 'setLinkUp', dev: 'nope0' }, { op: 'setLinkUp', dev: 'b1' }], 'failed at 1 with ENODEV');
      await same(t, () => [{ op: 'replaceRoute', route: { dst: '10.50.0.0/16', dev: 'nope0' } }], 'failed at 0 with ENODEV', once);
      await same(t, () => [{ op: 'replaceNeigh', dev: 'nope0', ip: '10.0.0.9', mac: MAC(9) }], 'failed at 0 with ENODEV', once);
      await same(t, () => [{ op: 'addRoute', route: { dst: '10.51.0.0/16', dev: 'ul0' } }, { op: 'addRoute', route: { dst: '10.51.0.0/16', dev: 'ul0' } }], 'failed at 1 with EEXIST');
      await same(t, () => [{ op: 'addRoute', route: { dst: '10.0.0.0/24', type: 'blackhole' } }], 'failed at 0 with EEXIST', once);
      await same(t, () => [{ op: 'deleteRoute', route: { dst: '10.52.0.0/16', dev: 'ul0' } }], 'failed at 0 with ESRCH', once);
      await same(t, () => [{ op: 'deleteAddr', dev: 'ul0', cidr: '10.53.0.1/24' }], 'failed at 0 with EADDRNOTAVAIL', once);
      await same(t, () => [{ op: 'addAddr', dev: 'ul0', cidr: '10.0.0.1/24' }], 'failed at 0 with EEXIST', once);
      await same(t, () => [{ op: 'deleteNeigh', dev: 'vx0', ip: '10.244.9.0' }], 'failed at 0 with ENOENT', once);
      await same(t, () => [{ op: 'deleteFdb', dev: 'vx0', mac: MAC(0x99), dst: '10.0.0.9' }], 'failed at 0 with ENOENT', once);
      await same(t, () => [{ op: 'deleteLink', dev: 'nope0' }], 'failed at 0 with ENODEV', once);
      // EOPNOTSUPP where the kernel has no bridge vlan filtering (this lab's), else both create it
      await same(t, () => [{ op: 'addBridge', name: 'b2', vlanFiltering: true }, { op: 'setLink', dev: 'b2', mac: MAC(12) }], null);
      await same(t, () => [{ op: 'sysctl', key: 'net/ipv4/conf/b1/forwarding', value: '1' }, { op: 'sysctl', key: 'net/ipv6/conf/nope0/accept_ra', value: '0', optional: true }]);
      expect(t.b.ns.exec(['cat', '/proc/sys/net/ipv4/conf/b1/forwarding']).stdout.trim()).toBe('1');
      expect(await t.b.kernel.readSysctl('net.ipv4.conf.b1.forwarding')).toBe('1');
      for (const s of [t.a, t.b]) expect(await s.kernel.readSysctl('net/ipv4/conf/ul0/forwarding')).toBe('0');
      await readsAgree(t);
    }));

  it('where iproute2 prints words that hide the errno, netlink reports the kernel\'s errno (known differences)', () =>
    twinCase(async (t) => {
      const cases: Array<[KernelOp, string, string]> = [
        // [op, iproute2 adapter's code (from stderr words), the kernel's errno]
        [{ op: 'addRoute', route: { dst: '10.60.0.0/16', via: '192.168.9.9', dev: 'ul0' } }, 'EINVAL', 'ENETUNREACH'], // "Nexthop has invalid gateway."
        [{ op: 'addVeth', name: 'v9', peer: 'p9', peerNetns: '/var/run/netns/ftest-nope' }, 'EINVAL', 'ENOENT'], // iproute2: 'Invalid "netns" value'
      ];
      for (const [op, ipCode, nlCode] of cases) {
        expect(await outcome(t.a.kernel, [op])).toBe(`failed at 0 with ${ipCode}`);
        expect(await outcome(t.b.kernel, [op])).toBe(`failed at 0 with ${nlCode}`);
      }
      expect(dump(t.b.ns)).toEqual(dump(t.a.ns));
    }));
});

/** One case: twin namespaces with the same underlay laid by both adapters, `body`, then the twins removed. */
async function twinCase(body: (t: Twins) => Promise<void>): Promise<void> {
  const t = twins();
  try {
    await same(t, () => underlay());
    await body(t);
  } finally {
    t.done();
  }
}

/** Both adapters reading the same namespace (each twin's) give the same answers. */
async function readsAgree(t: Twins): Promise<void> {
  for (const s of [t.a, t.b]) {
    const ip = createKernel().inNetns(s.ns.path);
    const nl = createNetlinkKernel().inNetns(s.ns.path);
    const read = async (k: Kernel) => {
      const links = await k.listLinks();
      const names = links.map((l) => l.name);
      return {
        links,
        getLink: await Promise.all(names.map((n) => k.getLink(n))),
        inspect: [...(await k.inspect([...names, 'nope0'])).entries()],
        addrs: await k.listAddrs(),
        addrs4: await k.listAddrs({ family: 4 }),
        addrsByDev: await Promise.all(names.map((n) => k.listAddrs({ dev: n }))),
        addrs6ByDev: await Promise.all(names.map((n) => k.listAddrs({ dev: n, family: 6 }))),
        routes: await k.listRoutes(),
        routes6: await k.listRoutes({ family: 6 }),
        routesByDev: await Promise.all(names.map((n) => k.listRoutes({ dev: n }))),
        table100: await k.listRoutes({ family: 4, table: 100 }),
        blackholes: await k.listRoutes({ type: 'blackhole' }),
        unreachable: await k.listRoutes({ family: 4, type: 'unreachable' }),
        neighs: await Promise.all(names.map((n) => k.listNeighs(n))),
        fdb: await Promise.all(names.map((n) => k.listFdb(n))),
        get: names.includes('ul0') ? [await k.routeGet('10.0.0.7'), await k.routeGet('127.0.0.1')] : [],
        sysctl: await k.readSysctl('net/ipv4/ip_forward'),
      };
    };
    expect(await read(nl)).toEqual(await read(ip));
  }
}
