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
import { isExists, KernelError } from '../errors.js';
import { eventOf, fail, famOf, FakeWorld, normKey, type FakeNs } from './fake-world.js';
import { FakeOps, notFound } from './fake-ops.js';
import type { Addr, BridgeVlan, Fdb, Kernel, KernelEvent, KernelOp, Link, LinkAddrs, Neigh, Route, RouteSpec, VxlanSpec } from '../kernel.js';

export { FakeWorld, type FakeNs } from './fake-world.js';

/**
 * Verbs that are not Kernel's (any more): tests seed state with them. They are not counted in
 * `world.calls`. Each is one batch op or a few (`ensureBridge` = addBridge + setLink up).
 */
const SEEDING = new Set(['ensureAddr', 'replaceRoute', 'addRoute', 'deleteRoute', 'ensureBridge', 'createVethPair', 'setMaster', 'setPromisc', 'setHairpin', 'setLinkAddress', 'listBridgeVlans', 'ensureVxlan']);

export class FakeKernel implements Kernel {
  readonly world: FakeWorld;
  readonly path: string;

  private readonly ops: FakeOps;

  constructor(world?: FakeWorld, path = '/') {
    this.world = world ?? new FakeWorld();
    this.path = path;
    this.ops = new FakeOps(this.world);
  }

  /** This namespace's state (throws ENOENT as nsenter would when it is gone). */
  get ns(): FakeNs {
    const ns = this.world.namespaces.get(this.path);
    if (ns === undefined) {
      throw fail('ENOENT', `nsenter: cannot open ${this.path}`);
    }
    return ns;
  }

  /** One write to `ns`, announced to this namespace's watchers (Kernel.watch). */
  private apply(ns: FakeNs, op: KernelOp): void {
    this.ops.applyOp(ns, op);
    const ev = eventOf(op);
    if (ev !== undefined) this.world.emit(this.path, ev);
  }

  /**
   * Kernel.watch over the fake, once a test turns it on (`world.watchable = true`, before the code under
   * test looks): every write through a FakeKernel of this namespace is then announced. Off, the fake is
   * an adapter that cannot watch (as iproute2), which the older tests that count calls rely on.
   */
  get watch(): Kernel['watch'] {
    if (!this.world.watchable) return undefined;
    return (onEvent: (ev: KernelEvent) => void) => this.world.watch(this.path, onEvent);
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

  async getLink(name: string): Promise<Link | undefined> {
    const l = this.enter('getLink').links.get(name);
    return l === undefined ? undefined : { ...l };
  }

  async listLinks(): Promise<Link[]> {
    return [...this.enter('listLinks').links.values()].map((l) => ({ ...l }));
  }

  async setLinkUp(name: string): Promise<void> {
    this.apply(this.enter('setLinkUp'), { op: 'setLinkUp', dev: name });
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
    this.world.emit(this.path, { kind: 'link', deleted: false, dev: name });
  }

  async setLinkMtu(name: string, mtu: number): Promise<void> {
    this.apply(this.enter('setLinkMtu'), { op: 'setLink', dev: name, mtu });
  }

  async deleteLink(name: string, o?: { missingOk?: boolean }): Promise<void> {
    const ns = this.enter('deleteLink');
    if (!ns.links.has(name)) {
      if (o?.missingOk) return;
      throw notFound(name);
    }
    this.apply(ns, { op: 'deleteLink', dev: name });
  }

  async setMaster(dev: string, bridge: string): Promise<void> {
    this.apply(this.enter('setMaster'), { op: 'setLink', dev, master: bridge });
  }

  async setPromisc(dev: string, on: boolean): Promise<void> {
    this.apply(this.enter('setPromisc'), { op: 'setLink', dev, promisc: on });
  }

  async setHairpin(dev: string, on: boolean): Promise<void> {
    this.apply(this.enter('setHairpin'), { op: 'setBridgePort', dev, hairpin: on });
  }

  async setLinkAddress(dev: string, mac: string): Promise<void> {
    this.apply(this.enter('setLinkAddress'), { op: 'setLink', dev, mac });
  }

  async ensureBridge(name: string, o?: { mtu?: number; vlanFiltering?: boolean; promisc?: boolean }): Promise<Link> {
    const ns = this.enter('ensureBridge');
    let l = ns.links.get(name);
    if (l === undefined) l = this.ops.newLink(ns, { name, kind: 'bridge', mtu: o?.mtu ?? 1500, bridge: { vlanFiltering: o?.vlanFiltering === true } });
    if (o?.promisc) l.promisc = true;
    if (l.kind === 'bridge') {
      l.up = true;
      l.operstate = 'UNKNOWN';
    }
    return { ...l };
  }

  async createVethPair(host: string, peer: string, o: { peerNetns: string; mtu?: number; mac?: string; peerMac?: string }): Promise<void> {
    this.apply(this.enter('createVethPair'), { op: 'addVeth', name: host, peer, ...o });
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
    this.ops.link(ns, dev);
    return (ns.vlans.get(dev) ?? []).map((v) => ({ ...v }));
  }

  async listAddrs(o?: { dev?: string; family?: Family }): Promise<Addr[]> {
    const ns = this.enter('listAddrs');
    if (o?.dev !== undefined) this.ops.link(ns, o.dev);
    return ns.addrs.filter((a) => (o?.dev === undefined || a.dev === o.dev) && (o?.family === undefined || a.family === o.family)).map((a) => ({ ...a }));
  }

  async ensureAddr(dev: string, cidr: string): Promise<void> {
    const ns = this.enter('ensureAddr');
    try {
      this.apply(ns, { op: 'addAddr', dev, cidr });
    } catch (err) {
      if (!isExists(err)) throw err;
    }
  }

  async deleteAddr(dev: string, cidr: string, o?: { missingOk?: boolean }): Promise<void> {
    const ns = this.enter('deleteAddr');
    try {
      this.apply(ns, { op: 'deleteAddr', dev, cidr });
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
    this.apply(this.enter('replaceRoute'), { op: 'replaceRoute', route: r });
  }

  async addRoute(r: RouteSpec): Promise<void> {
    this.apply(this.enter('addRoute'), { op: 'addRoute', route: r });
  }

  async deleteRoute(r: RouteSpec, o?: { missingOk?: boolean }): Promise<void> {
    const ns = this.enter('deleteRoute');
    try {
      this.apply(ns, { op: 'deleteRoute', route: r });
    } catch (err) {
      if (!o?.missingOk) throw err;
    }
  }

  /** Seeding: a VXLAN device `name` as asked (any link of that name is replaced). */
  async ensureVxlan(name: string, spec: VxlanSpec): Promise<Link> {
    const ns = this.enter('ensureVxlan');
    if (ns.links.has(name)) this.apply(ns, { op: 'deleteLink', dev: name });
    this.apply(ns, { op: 'addVxlan', name, ...spec });
    return { ...this.ops.link(ns, name) };
  }

  async listNeighs(dev: string): Promise<Neigh[]> {
    const ns = this.enter('listNeighs');
    this.ops.link(ns, dev);
    return ns.neighs.filter((n) => n.dev === dev).map((n) => ({ ...n }));
  }

  async listFdb(dev: string): Promise<Fdb[]> {
    const ns = this.enter('listFdb');
    this.ops.link(ns, dev);
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
        this.apply(ns, op);
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
    this.apply(this.enter('writeSysctl'), { op: 'sysctl', key, value });
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
