// FakeKernel: the Kernel interface over in-memory state, for unit tests (shipped as product code, like
// undici's MockAgent). Tests assert on the state ("cni0 has 10.244.1.1/24"), never on argv.
//
// One FakeWorld holds every namespace by path; `new FakeKernel()` is the root namespace ("/"), and
// `inNetns(path)` a view of another one, which must exist (`world.addNetns(path)`) or every command
// fails as nsenter would (ENOENT). Errors are KernelErrors with the errno the kernel would answer in
// `code`, so isNotFound/isExists behave as with a real adapter. `failOn(name, code)` injects a failure
// into the next call of a verb or batch op. `world.calls` counts Kernel calls (a batch is one, seeding
// verbs none); `world.execs` what the iproute2 adapter would have exec'd (kept while tests move to calls).
import { parseCIDR, netContains } from '../../net/ip.js';
import type { Family } from '../../net/ip.js';
import { ERRNO_TEXT, isExists, KernelError, type KernelErrorCode } from '../errors.js';
import { famOf, FakeWorld, netOf, normCidr, normKey, peersOf, type FakeNs } from './fake-world.js';
import type { Addr, BridgeVlan, Fdb, Kernel, KernelOp, Link, LinkAddrs, Neigh, Route, RouteSpec, VxlanSpec } from '../kernel.js';

export { FakeWorld, type FakeNs } from './fake-world.js';

/** `<what>: <strerror(code)>`, the shape of the adapter's messages. */
const fail = (code: KernelErrorCode, what: string) => new KernelError(`${what}: ${ERRNO_TEXT[code]}`, { code });
const notFound = (what: string) => fail('ENODEV', what);
const exists = (what: string) => fail('EEXIST', what);
const noSuch = (what: string) => fail('ESRCH', what);

/**
 * Verbs that are not Kernel's (any more): tests seed state with them. They are not counted in
 * `world.calls`. Each is one batch op or a few (`ensureBridge` = addBridge + setLink up).
 */
const SEEDING = new Set(['ensureAddr', 'replaceRoute', 'addRoute', 'deleteRoute', 'ensureBridge', 'createVethPair', 'setMaster', 'setPromisc', 'setHairpin', 'setLinkAddress', 'listBridgeVlans', 'ensureVxlan']);

export class FakeKernel implements Kernel {
  readonly world: FakeWorld;
  readonly path: string;

  constructor(world?: FakeWorld, path = '/') {
    this.world = world ?? new FakeWorld();
    this.path = path;
  }

  /** This namespace's state (throws as nsenter would if it does not exist). */
  get ns(): FakeNs {
    const ns = this.world.namespaces.get(this.path);
    if (ns === undefined) {
      throw fail('ENOENT', `nsenter: cannot open ${this.path}`);
    }
    return ns;
  }

  inNetns(path: string): FakeKernel {
    return new FakeKernel(this.world, path);
  }

  private enter(name: string): FakeNs {
    // the iproute2 adapter writes sysctls of its own namespace as files: no exec
    if (!(this.path === '/' && (name === 'readSysctl' || name === 'writeSysctl'))) this.world.execs++;
    if (!SEEDING.has(name)) this.world.calls++;
    this.world.takeFailure(name);
    return this.ns;
  }

  private link(ns: FakeNs, name: string): Link {
    const l = ns.links.get(name);
    if (l === undefined) throw notFound(name);
    return l;
  }

  private newLink(ns: FakeNs, l: Omit<Link, 'index' | 'mac' | 'up' | 'mtu'> & { mtu?: number; mac?: string }): Link {
    if (ns.links.has(l.name)) throw exists(l.name);
    const link: Link = { ...l, index: this.world.nextIndex++, mtu: l.mtu || 1500, mac: l.mac ?? this.world.randomMac(), up: false };
    ns.links.set(l.name, link);
    return link;
  }

  async getLink(name: string): Promise<Link | undefined> {
    const l = this.enter('getLink').links.get(name);
    return l === undefined ? undefined : { ...l };
  }

  async listLinks(): Promise<Link[]> {
    return [...this.enter('listLinks').links.values()].map((l) => ({ ...l }));
  }

  async setLinkUp(name: string): Promise<void> {
    this.applyOp(this.enter('setLinkUp'), { op: 'setLinkUp', dev: name });
  }

  async setLinkDown(name: string, o?: { missingOk?: boolean }): Promise<void> {
    const ns = this.enter('setLinkDown');
    const l = ns.links.get(name);
    if (l === undefined) {
      if (o?.missingOk) return;
      throw notFound(name);
    }
    l.up = false;
    l.operstate = 'DOWN';
  }

  async setLinkMtu(name: string, mtu: number): Promise<void> {
    this.link(this.enter('setLinkMtu'), name).mtu = mtu;
  }

  async deleteLink(name: string, o?: { missingOk?: boolean }): Promise<void> {
    const ns = this.enter('deleteLink');
    if (!ns.links.has(name)) {
      if (o?.missingOk) return;
      throw notFound(name);
    }
    this.applyOp(ns, { op: 'deleteLink', dev: name });
  }

  async setMaster(dev: string, bridge: string): Promise<void> {
    this.applyOp(this.enter('setMaster'), { op: 'setLink', dev, master: bridge });
  }

  async setPromisc(dev: string, on: boolean): Promise<void> {
    this.applyOp(this.enter('setPromisc'), { op: 'setLink', dev, promisc: on });
  }

  async setHairpin(dev: string, on: boolean): Promise<void> {
    this.applyOp(this.enter('setHairpin'), { op: 'setBridgePort', dev, hairpin: on });
  }

  async setLinkAddress(dev: string, mac: string): Promise<void> {
    this.applyOp(this.enter('setLinkAddress'), { op: 'setLink', dev, mac });
  }

  async ensureBridge(name: string, o?: { mtu?: number; vlanFiltering?: boolean; promisc?: boolean }): Promise<Link> {
    const ns = this.enter('ensureBridge');
    let l = ns.links.get(name);
    if (l === undefined) l = this.newLink(ns, { name, kind: 'bridge', mtu: o?.mtu ?? 1500, bridge: { vlanFiltering: o?.vlanFiltering === true } });
    if (o?.promisc) l.promisc = true;
    if (l.kind === 'bridge') {
      l.up = true;
      l.operstate = 'UNKNOWN';
    }
    return { ...l };
  }

  async createVethPair(host: string, peer: string, o: { peerNetns: string; mtu?: number; mac?: string; peerMac?: string }): Promise<void> {
    this.applyOp(this.enter('createVethPair'), { op: 'addVeth', name: host, peer, ...o });
  }

  async inspect(names: readonly string[], ops: readonly KernelOp[] = []): Promise<Map<string, LinkAddrs>> {
    const ns = this.enter('inspect');
    this.applyOps(ns, ops);
    const out = new Map<string, LinkAddrs>();
    for (const name of names) {
      const l = ns.links.get(name);
      if (l === undefined) {
        if (ops.length > 0) throw notFound(name);
        continue;
      }
      out.set(name, { ...l, addrs: ns.addrs.filter((a) => a.dev === name).map((a) => ({ ...a })) });
    }
    return out;
  }

  async listBridgeVlans(dev: string): Promise<BridgeVlan[]> {
    const ns = this.enter('listBridgeVlans');
    this.link(ns, dev);
    return (ns.vlans.get(dev) ?? []).map((v) => ({ ...v }));
  }

  async listAddrs(o?: { dev?: string; family?: Family }): Promise<Addr[]> {
    const ns = this.enter('listAddrs');
    if (o?.dev !== undefined) this.link(ns, o.dev);
    return ns.addrs.filter((a) => (o?.dev === undefined || a.dev === o.dev) && (o?.family === undefined || a.family === o.family)).map((a) => ({ ...a }));
  }

  async ensureAddr(dev: string, cidr: string): Promise<void> {
    const ns = this.enter('ensureAddr');
    try {
      this.applyOp(ns, { op: 'addAddr', dev, cidr });
    } catch (err) {
      if (!isExists(err)) throw err;
    }
  }

  async deleteAddr(dev: string, cidr: string, o?: { missingOk?: boolean }): Promise<void> {
    const ns = this.enter('deleteAddr');
    try {
      this.applyOp(ns, { op: 'deleteAddr', dev, cidr });
    } catch (err) {
      if (!o?.missingOk) throw err;
    }
  }

  async listRoutes(o?: { family?: Family; dev?: string; table?: number; type?: RouteSpec['type'] }): Promise<Route[]> {
    const ns = this.enter('listRoutes');
    return ns.routes
      .filter((r) => (o?.family === undefined || r.family === o.family) && (o?.dev === undefined || r.dev === o.dev) && (r.table ?? 254) === (o?.table ?? 254))
      .filter((r) => o?.type === undefined || r.type === o.type)
      .map((r) => ({ ...r }));
  }

  async routeGet(dst: string): Promise<Route & { prefsrc?: string }> {
    const ns = this.enter('routeGet');
    const f = famOf(dst);
    const ip = parseCIDR(`${dst}/${f === 4 ? 32 : 128}`).ip;
    let best: Route | undefined;
    let bestLen = -1;
    for (const r of ns.routes) {
      if (r.family !== f || (r.table ?? 254) !== 254) continue;
      const len = r.dst === 'default' ? 0 : parseCIDR(r.dst).net.prefix;
      const hit = r.dst === 'default' || netContains(parseCIDR(r.dst).net, ip);
      if (hit && len > bestLen) {
        best = r;
        bestLen = len;
      }
    }
    if (best === undefined) {
      throw fail('ENETUNREACH', `route get ${dst}`);
    }
    const out: Route & { prefsrc?: string } = { family: f, dst };
    if (best.via !== undefined) out.via = best.via;
    if (best.dev !== undefined) out.dev = best.dev;
    const src = best.src ?? ns.addrs.find((a) => a.dev === best!.dev && a.family === f)?.cidr.split('/')[0];
    if (src !== undefined) out.prefsrc = src;
    return out;
  }

  async replaceRoute(r: RouteSpec): Promise<void> {
    this.applyOp(this.enter('replaceRoute'), { op: 'replaceRoute', route: r });
  }

  async addRoute(r: RouteSpec): Promise<void> {
    this.applyOp(this.enter('addRoute'), { op: 'addRoute', route: r });
  }

  async deleteRoute(r: RouteSpec, o?: { missingOk?: boolean }): Promise<void> {
    const ns = this.enter('deleteRoute');
    try {
      this.applyOp(ns, { op: 'deleteRoute', route: r });
    } catch (err) {
      if (!o?.missingOk) throw err;
    }
  }

  /** Seeding: a VXLAN device `name` as asked (any link of that name is replaced). */
  async ensureVxlan(name: string, spec: VxlanSpec): Promise<Link> {
    const ns = this.enter('ensureVxlan');
    if (ns.links.has(name)) this.applyOp(ns, { op: 'deleteLink', dev: name });
    this.applyOp(ns, { op: 'addVxlan', name, ...spec });
    return { ...this.link(ns, name) };
  }

  async listNeighs(dev: string): Promise<Neigh[]> {
    const ns = this.enter('listNeighs');
    this.link(ns, dev);
    return ns.neighs.filter((n) => n.dev === dev).map((n) => ({ ...n }));
  }

  async listFdb(dev: string): Promise<Fdb[]> {
    const ns = this.enter('listFdb');
    this.link(ns, dev);
    return ns.fdb.filter((n) => n.dev === dev).map((n) => ({ ...n }));
  }

  async batch(ops: readonly KernelOp[]): Promise<void> {
    if (ops.length === 0) return;
    this.world.execs++;
    this.world.calls++;
    this.applyOps(this.ns, ops);
  }

  /** The batch contract: in order, stopping at the first failure, which names its op and index. */
  private applyOps(ns: FakeNs, ops: readonly KernelOp[]): void {
    for (const [i, op] of ops.entries()) {
      try {
        this.world.takeFailure(op.op);
        this.applyOp(ns, op);
      } catch (err) {
        if (op.op === 'sysctl' && op.optional) continue;
        throw err instanceof KernelError ? err.withOp(op, undefined, i) : err;
      }
    }
  }

  async readSysctl(key: string): Promise<string> {
    const ns = this.enter('readSysctl');
    const v = ns.sysctls.get(normKey(key));
    if (v === undefined) throw fail('ENOENT', `cat ${key}`);
    return v;
  }

  async writeSysctl(key: string, value: string): Promise<void> {
    this.applyOp(this.enter('writeSysctl'), { op: 'sysctl', key, value });
  }

  /** Applies one write to `ns` with iproute2's error semantics. */
  private applyOp(ns: FakeNs, op: KernelOp): void {
    switch (op.op) {
      case 'setLinkUp': {
        const l = this.link(ns, op.dev);
        l.up = true;
        l.operstate = this.operstate(ns, l);
        this.refreshPeers(l);
        return;
      }
      case 'addBridge':
        this.newLink(ns, { name: op.name, kind: 'bridge', ...(op.mtu ? { mtu: op.mtu } : {}), bridge: { vlanFiltering: op.vlanFiltering === true } });
        return;
      case 'addVeth': {
        const peerNs = op.peerNetns === undefined ? ns : this.world.namespaces.get(op.peerNetns);
        if (peerNs === undefined) throw fail('EINVAL', `netns ${op.peerNetns}`);
        if (ns.links.has(op.name) || peerNs.links.has(op.peer)) throw exists(op.name);
        const a = this.newLink(ns, { name: op.name, kind: 'veth', ...(op.mtu ? { mtu: op.mtu } : {}), ...(op.mac ? { mac: op.mac } : {}) });
        const b = this.newLink(peerNs, { name: op.peer, kind: 'veth', ...(op.mtu ? { mtu: op.mtu } : {}), ...(op.peerMac ? { mac: op.peerMac } : {}) });
        a.peerIndex = b.index;
        b.peerIndex = a.index;
        a.operstate = 'DOWN';
        b.operstate = 'DOWN';
        this.peers.set(a, b);
        this.peers.set(b, a);
        return;
      }
      case 'setLink': {
        const l = this.link(ns, op.dev);
        if (op.mtu !== undefined) l.mtu = op.mtu;
        if (op.mac !== undefined) l.mac = op.mac.toLowerCase();
        if (op.promisc !== undefined) l.promisc = op.promisc;
        if (op.master !== undefined) {
          const br = this.link(ns, op.master);
          if (br.kind !== 'bridge') throw fail('EOPNOTSUPP', `link set dev ${op.dev} master ${op.master}`);
          l.master = op.master;
          l.port = { hairpin: false, isolated: false };
          if (!ns.vlans.has(op.dev)) ns.vlans.set(op.dev, [{ vid: 1, pvid: true, untagged: true }]);
        }
        if (op.up !== undefined) {
          l.up = op.up;
          l.operstate = op.up ? this.operstate(ns, l) : 'DOWN';
          this.refreshPeers(l);
        }
        return;
      }
      case 'setBridgePort': {
        const l = this.link(ns, op.dev);
        if (l.port === undefined) throw fail('EOPNOTSUPP', `link set dev ${op.dev} type bridge_slave`);
        if (op.hairpin !== undefined) l.port.hairpin = op.hairpin;
        if (op.isolated !== undefined) l.port.isolated = op.isolated;
        return;
      }
      case 'deleteLink': {
        const l = this.link(ns, op.dev);
        this.dropLink(ns, l);
        const peer = this.peers.get(l);
        if (peer !== undefined) {
          for (const other of this.world.namespaces.values()) if (other.links.get(peer.name) === peer) this.dropLink(other, peer);
        }
        return;
      }
      case 'addAddr':
      case 'replaceAddr': {
        this.link(ns, op.dev);
        const cidr = normCidr(op.cidr);
        if (ns.addrs.some((a) => a.dev === op.dev && a.cidr === cidr)) {
          if (op.op === 'addAddr') throw exists(op.cidr);
          return;
        }
        const f = famOf(cidr);
        ns.addrs.push({ dev: op.dev, family: f, cidr, scope: 'global' });
        // the kernel adds the prefix route
        const prefix = Number(cidr.split('/')[1]);
        if (prefix < (f === 4 ? 32 : 128)) ns.routes.push({ family: f, dst: netOf(cidr), dev: op.dev, proto: 'kernel', scope: 'link', src: cidr.split('/')[0]! });
        return;
      }
      case 'deleteAddr': {
        const cidr = normCidr(op.cidr);
        const i = ns.addrs.findIndex((a) => a.dev === op.dev && a.cidr === cidr);
        if (i < 0) throw fail('EADDRNOTAVAIL', `addr del ${op.cidr} dev ${op.dev}`);
        ns.addrs.splice(i, 1);
        ns.routes = ns.routes.filter((r) => !(r.proto === 'kernel' && r.dev === op.dev && r.dst === netOf(cidr)));
        return;
      }
      case 'addRoute':
      case 'replaceRoute': {
        const r = op.route;
        if (r.dev !== undefined) this.link(ns, r.dev);
        const f = famOf(r.dst === 'default' ? r.via ?? '' : r.dst);
        const dst = r.dst === '::/0' || r.dst === '0.0.0.0/0' ? 'default' : r.dst;
        const i = ns.routes.findIndex((x) => x.family === f && x.dst === dst && (x.table ?? 254) === (r.table ?? 254) && (x.metric ?? 0) === (r.metric ?? 0));
        if (i >= 0 && op.op === 'addRoute') throw exists(r.dst);
        const route: Route = { ...r, family: f, dst };
        if (i >= 0) ns.routes[i] = route;
        else ns.routes.push(route);
        return;
      }
      case 'prependRoute': {
        // NLM_F_CREATE alone: only an identical route is in the way; it goes before the others
        const r = op.route;
        if (r.dev !== undefined) this.link(ns, r.dev);
        const f = famOf(r.dst === 'default' ? r.via ?? '' : r.dst);
        const dst = r.dst === '::/0' || r.dst === '0.0.0.0/0' ? 'default' : r.dst;
        const same = (x: Route) =>
          x.family === f && x.dst === dst && (x.table ?? 254) === (r.table ?? 254) && (x.metric ?? 0) === (r.metric ?? 0) && x.via === r.via && x.dev === r.dev && x.type === r.type;
        if (ns.routes.some(same)) throw exists(r.dst);
        const at = ns.routes.findIndex((x) => x.family === f && x.dst === dst);
        ns.routes.splice(at < 0 ? ns.routes.length : at, 0, { ...r, family: f, dst });
        return;
      }
      case 'addVxlan': {
        const { op: _, name, mtu, mac, ...spec } = op;
        const vxlan: NonNullable<Link['vxlan']> = { vni: spec.vni, port: spec.port, learning: spec.learning, gbp: spec.gbp === true };
        if (spec.local) vxlan.local = spec.local;
        if (spec.dev !== undefined) vxlan.dev = spec.dev;
        this.newLink(ns, { name, kind: 'vxlan', vxlan, ...(mtu ? { mtu } : {}), ...(mac ? { mac: mac.toLowerCase() } : {}) });
        return;
      }
      case 'deleteRoute': {
        const r = op.route;
        const dst = r.dst === '::/0' || r.dst === '0.0.0.0/0' ? 'default' : r.dst;
        const i = ns.routes.findIndex((x) => x.dst === dst && (r.dev === undefined || x.dev === r.dev) && (x.table ?? 254) === (r.table ?? 254));
        if (i < 0) throw noSuch(r.dst);
        ns.routes.splice(i, 1);
        return;
      }
      case 'replaceNeigh': {
        this.link(ns, op.dev);
        ns.neighs = ns.neighs.filter((n) => !(n.dev === op.dev && n.ip === op.ip));
        ns.neighs.push({ dev: op.dev, ip: op.ip, mac: op.mac.toLowerCase(), permanent: true });
        return;
      }
      case 'deleteNeigh': {
        const i = ns.neighs.findIndex((n) => n.dev === op.dev && n.ip === op.ip);
        if (i < 0) throw fail('ENOENT', `neigh del ${op.ip} dev ${op.dev}`);
        ns.neighs.splice(i, 1);
        return;
      }
      case 'replaceFdb':
      case 'appendFdb': {
        this.link(ns, op.dev);
        const mac = op.mac.toLowerCase();
        if (op.op === 'replaceFdb') ns.fdb = ns.fdb.filter((f) => !(f.dev === op.dev && f.mac === mac));
        if (!ns.fdb.some((f) => f.dev === op.dev && f.mac === mac && f.dst === op.dst)) {
          ns.fdb.push({ dev: op.dev, mac, dst: op.dst, self: true, permanent: true });
        }
        return;
      }
      case 'deleteFdb': {
        const mac = op.mac.toLowerCase();
        const i = ns.fdb.findIndex((f) => f.dev === op.dev && f.mac === mac && (op.dst === undefined || f.dst === op.dst));
        if (i < 0) throw fail('ENOENT', `fdb del ${op.mac} dev ${op.dev}`);
        ns.fdb.splice(i, 1);
        return;
      }
      case 'sysctl': {
        const key = normKey(op.key);
        const m = /^net\/ipv[46]\/conf\/([^/]+)\//.exec(key);
        if (m && !['all', 'default'].includes(m[1]!) && !ns.links.has(m[1]!)) {
          throw fail('ENOENT', `sysctl ${key}`);
        }
        ns.sysctls.set(key, op.value);
        return;
      }
      case 'addVlan':
      case 'deleteVlan': {
        this.link(ns, op.dev);
        let list = ns.vlans.get(op.dev) ?? [];
        const end = op.vidEnd ?? op.vid;
        for (let vid = op.vid; vid <= end; vid++) {
          list = list.filter((v) => v.vid !== vid);
          if (op.op === 'addVlan') {
            if (op.pvid) list = list.map((v) => ({ ...v, pvid: false }));
            list.push({ vid, pvid: op.pvid === true, untagged: op.untagged === true });
          }
        }
        ns.vlans.set(op.dev, list.sort((a, b) => a.vid - b.vid));
        return;
      }
    }
  }

  private get peers(): Map<Link, Link> {
    return peersOf(this.world);
  }

  private dropLink(ns: FakeNs, l: Link): void {
    ns.links.delete(l.name);
    ns.addrs = ns.addrs.filter((a) => a.dev !== l.name);
    ns.routes = ns.routes.filter((r) => r.dev !== l.name);
    ns.neighs = ns.neighs.filter((n) => n.dev !== l.name);
    ns.fdb = ns.fdb.filter((n) => n.dev !== l.name);
    ns.vlans.delete(l.name);
    for (const k of [...ns.sysctls.keys()]) if (k.includes(`/conf/${l.name}/`)) ns.sysctls.delete(k);
  }

  private operstate(_ns: FakeNs, l: Link): string {
    if (!l.up) return 'DOWN';
    if (l.kind === 'veth') {
      const peer = this.peers.get(l);
      return peer?.up ? 'UP' : 'LOWERLAYERDOWN';
    }
    return l.kind === 'bridge' ? 'UNKNOWN' : 'UP';
  }

  private refreshPeers(l: Link): void {
    const peer = this.peers.get(l);
    if (peer === undefined) return;
    l.operstate = this.operstate(this.ns, l);
    peer.operstate = this.operstate(this.ns, peer);
  }
}

/** `kernel` whose reads report every veth in `operstate` (a bridge port that never comes up). */
export function withVethOperstate(kernel: FakeKernel, operstate: string): FakeKernel {
  return Object.assign(Object.create(kernel) as FakeKernel, {
    inspect: async (names: readonly string[], ops?: readonly KernelOp[]) => {
      const m = await kernel.inspect(names, ops);
      for (const [k, v] of m) if (k.startsWith('veth')) m.set(k, { ...v, operstate });
      return m;
    },
  });
}
