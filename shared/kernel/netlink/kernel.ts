// Kernel over rtnetlink, in-process: no exec on any path (sysctls are file writes).
//
// - A handle lives in one namespace. The process's own (createNetlinkKernel()) keeps one socket for the
//   life of the process; another (inNetns(path), a pod's) opens its sockets inside that namespace per
//   call and closes them at the end, so no fd outlives a CNI call and a path reused for a new namespace
//   is never served by an old socket. Sysctls in another namespace are sync /proc/sys writes between two
//   setns calls (netns.ts withNetns), which is why every call here is synchronous underneath.
// - A veth peer is created directly in the pod namespace (IFLA_NET_NS_FD), never moved.
// - batch(ops): ops run in order and the batch stops at the first failure, which is a KernelError
//   naming the op (`err.op`, `err.index`) and carrying the kernel's errno (`err.code`). Links,
//   addresses, vlans and sysctls take one exchange each: a later op may need what they made. A run of
//   consecutive entry writes (routes, neighbours, FDB entries: what flanneld sends per lease batch)
//   shares one sendmsg (ops.ts isEntryOp, needsLinkRoute), and when one of them fails, the error names the
//   first that failed; the later writes of that same run were independent of it and the kernel has
//   applied them (rtnetlink has no "stop on error" for a datagram). Callers that must not keep them
//   roll back (vxlan's failed add) or re-apply idempotently (applyResumable).
// - Errors name the op as the iproute2 adapter names a failed batch line, with the kernel's errno as the
//   code and its extended-ack message after strerror: `"route add 10.60.0.0/16 via 192.168.9.9 dev
//   eth0": Network is unreachable: Nexthop has invalid gateway` (ops.ts opWhat).
// - ENOBUFS from the kernel (a table full for a moment) is retried, 3 times with a short back-off.
// - Reads decode as the iproute2 adapter parses `ip -j`: test/integration/kernel/differential.test.ts
//   holds both to the same answers.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Family } from '../../net/ip.js';
import { codeFromErrno, errnoText, isNotFound, KernelError, type KernelErrorCode } from '../errors.js';
import type { Addr, Fdb, Kernel, KernelEvent, KernelOp, Link, LinkAddrs, Neigh, Route, RouteSpec } from '../kernel.js';
import { sysctlPath } from '../iproute2/batch.js';
import { addrIndexOf, decodeAddr, dumpAddrsPayload } from './addr.js';
import { NlGetter } from './get.js';
import { decodeLink, dumpLinksPayload, getLinkMsg, linkIndexOf, linkNameOf, resolveLinkNames, AF_BRIDGE, setLinkMsg, delLinkMsg } from './link.js';
import { openMonitor } from './monitor.js';
import { decodeFdb, decodeNeigh, dumpNeighPayload, neighFamilyOf, neighIndexOf } from './neigh.js';
import { closeFd, openNetnsFd, withNetns } from './netns.js';
import {
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_DELROUTE,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETNEIGH,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTNLGRP_IPV4_IFADDR,
  RTNLGRP_IPV4_ROUTE,
  RTNLGRP_IPV6_IFADDR,
  RTNLGRP_IPV6_ROUTE,
  RTNLGRP_LINK,
  RTNLGRP_NEIGH,
  type NlMessage,
  type NlRequest,
} from './nlmsg.js';
import { encodeOp, isEntryOp, makesLinkRoute, needsLinkRoute, opWhat, type OpContext } from './ops.js';
import { decodeRoute, dumpRoutesPayload, routeFamily, routeGetMsg, routeHead, routeTypeNumber, RT_TABLE_MAIN } from './route.js';
import { NetlinkSocket, type NlResult } from './socket.js';

const ENOBUFS = 105;
const ENOBUFS_RETRIES = 3;
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/** The netlink Kernel, in the process's namespace or (with `netns`) in the one at that path. */
export function createNetlinkKernel(o?: { netns?: string }): Kernel {
  return new NetlinkKernel(o?.netns);
}

/** The sockets of one handle: kept for the process's own namespace, per call for another. */
class Conn {
  private sock: NetlinkSocket | undefined;
  private getter: NlGetter | undefined;

  constructor(
    readonly netns: string | undefined,
    private readonly keep: boolean,
  ) {}

  socket(): NetlinkSocket {
    this.sock ??= NetlinkSocket.open({ strictCheck: true, ...(this.netns !== undefined ? { netns: this.netns } : {}) });
    return this.sock;
  }

  gets(): NlGetter {
    this.getter ??= NlGetter.open(this.netns);
    return this.getter;
  }

  /** `f` with a session on this connection; a per-call connection is closed afterwards. */
  use<T>(f: (s: Session) => T): T {
    try {
      return f(new Session(this));
    } finally {
      if (!this.keep) {
        this.sock?.close();
        this.getter?.close();
        this.sock = undefined;
        this.getter = undefined;
      }
    }
  }
}

/** One call's view: the sockets, and what it learnt of link names and indexes. */
class Session implements OpContext {
  private readonly indexes = new Map<string, number>();
  private readonly names = new Map<number, string | undefined>();
  private readonly fds: number[] = [];

  constructor(readonly conn: Conn) {}

  get sock(): NetlinkSocket {
    return this.conn.socket();
  }

  /** The link called `name`, or undefined when there is none (ENODEV). */
  linkMsg(name: string): NlMessage | undefined {
    try {
      const m = this.conn.gets().get(getLinkMsg(name), `ip link show dev ${name}`);
      this.learn(m.payload);
      return m;
    } catch (err) {
      if (err instanceof KernelError && err.code === 'ENODEV') {
        this.indexes.delete(name);
        return undefined;
      }
      throw err;
    }
  }

  private learn(payload: Buffer): void {
    const i = linkIndexOf(payload);
    const n = linkNameOf(payload);
    if (n !== undefined) {
      this.indexes.set(n, i);
      this.names.set(i, n);
    }
  }

  index(name: string): number {
    const known = this.indexes.get(name);
    if (known !== undefined) return known;
    if (this.linkMsg(name) === undefined) throw new KernelError(`Cannot find device "${name}"`, { code: 'ENODEV' });
    return this.indexes.get(name)!;
  }

  nameOf = (index: number): string | undefined => {
    if (this.names.has(index)) return this.names.get(index);
    let name: string | undefined;
    try {
      name = linkNameOf(this.conn.gets().get(getLinkMsg(index), `ip link show index ${index}`).payload);
    } catch (err) {
      if (!(err instanceof KernelError && err.code === 'ENODEV')) throw err;
    }
    this.names.set(index, name);
    if (name !== undefined) this.indexes.set(name, index);
    return name;
  };

  /** Every link (and the names of all of them learnt). */
  links(): NlMessage[] {
    const msgs = this.sock.dump(RTM_GETLINK, dumpLinksPayload(), 'ip link show');
    for (const m of msgs) this.learn(m.payload);
    return msgs;
  }

  /** Link changes invalidate what was learnt (a deleted link's name may come back with a new index). */
  forget(): void {
    this.indexes.clear();
    this.names.clear();
  }

  netnsFd(path: string): number {
    const fd = openNetnsFd(path);
    this.fds.push(fd);
    return fd;
  }

  closeFds(): void {
    for (const fd of this.fds.splice(0)) closeFd(fd);
  }

  link(m: NlMessage): Link {
    return resolveLinkNames(decodeLink(m.payload), this.nameOf);
  }
}

/** A failed op's error: `<what>: <strerror>[: <kernel's message>]`, its errno as the code. */
function opError(what: string, r: NlResult, op?: KernelOp, index?: number): KernelError {
  return new KernelError(`${what}: ${errnoText(r.errno)}${r.extack ? `: ${r.extack}` : ''}`, {
    code: codeFromErrno(r.errno),
    ...(op !== undefined ? { op } : {}),
    ...(index !== undefined ? { index } : {}),
  });
}

/** The same KernelError, naming the batch op (for errors raised before any request: ENODEV of a name, ENOENT of a netns). */
function withOp(err: unknown, op: KernelOp, index: number): unknown {
  if (!(err instanceof KernelError)) return err;
  return new KernelError(`${opWhat(op)}: ${err.message}`, { code: err.code, op, index, cause: err });
}

/** Requests with ENOBUFS retried (alone, in order) with a 1, 2, 4 ms back-off. */
function send(sock: NetlinkSocket, reqs: readonly NlRequest[]): NlResult[] {
  const results = sock.requestAll(reqs);
  for (let i = 0; i < results.length; i++) {
    for (let attempt = 0; results[i]!.errno === ENOBUFS && attempt < ENOBUFS_RETRIES; attempt++) {
      Atomics.wait(SLEEPER, 0, 0, 1 << attempt);
      results[i] = sock.requestAll([reqs[i]!])[0]!;
    }
  }
  return results;
}

function fsErrorCode(err: unknown): KernelErrorCode {
  const c = (err as NodeJS.ErrnoException | undefined)?.code;
  const n = (err as NodeJS.ErrnoException | undefined)?.errno;
  if (typeof n === 'number') {
    const code = codeFromErrno(n);
    if (code !== 'UNKNOWN') return code;
  }
  return c === 'ENOTDIR' ? 'ENOENT' : 'UNKNOWN';
}

class NetlinkKernel implements Kernel {
  private readonly conn: Conn;

  constructor(private readonly netns: string | undefined) {
    this.conn = new Conn(netns, netns === undefined);
  }

  inNetns(path: string): Kernel {
    return new NetlinkKernel(path);
  }

  private run<T>(f: (s: Session) => T): Promise<T> {
    try {
      return Promise.resolve(this.conn.use(f));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // ---- links

  getLink(name: string): Promise<Link | undefined> {
    return this.run((s) => {
      const m = s.linkMsg(name);
      return m === undefined ? undefined : s.link(m);
    });
  }

  listLinks(): Promise<Link[]> {
    return this.run((s) => s.links().map((m) => s.link(m)));
  }

  setLinkUp(name: string): Promise<void> {
    return this.request(setLinkMsg(name, { up: true }), `ip link set dev ${name} up`);
  }

  setLinkDown(name: string, o?: { missingOk?: boolean }): Promise<void> {
    return this.request(setLinkMsg(name, { up: false }), `ip link set dev ${name} down`, o?.missingOk);
  }

  setLinkMtu(name: string, mtu: number): Promise<void> {
    return this.request(setLinkMsg(name, { mtu }), `ip link set dev ${name} mtu ${mtu}`);
  }

  deleteLink(name: string, o?: { missingOk?: boolean }): Promise<void> {
    return this.request(delLinkMsg(name), `ip link del dev ${name}`, o?.missingOk);
  }

  private request(req: NlRequest, what: string, missingOk?: boolean): Promise<void> {
    return this.run((s) => {
      const [r] = send(s.sock, [req]);
      if (r!.errno === 0) return;
      const err = opError(what, r!);
      if (missingOk && isNotFound(err)) return;
      throw err;
    });
  }

  inspect(names: readonly string[], ops: readonly KernelOp[] = []): Promise<Map<string, LinkAddrs>> {
    return this.run((s) => {
      if (ops.length > 0) this.batchIn(s, ops);
      const out = new Map<string, LinkAddrs>();
      for (const name of names) {
        const m = s.linkMsg(name);
        if (m === undefined) {
          // with ops, the reads are part of the batch (as iproute2's one `-batch`): a missing link fails it
          if (ops.length > 0) throw new KernelError(`"addr show dev ${name}": Cannot find device "${name}"`, { code: 'ENODEV' });
          continue;
        }
        const link = s.link(m);
        out.set(link.name, { ...link, addrs: this.addrsOf(s, link.index, link.name) });
      }
      return out;
    });
  }

  // ---- addresses

  private addrsOf(s: Session, index: number, dev: string, family?: Family): Addr[] {
    const p = dumpAddrsPayload(family);
    p.writeUInt32LE(index, 4); // strict dump: the kernel filters by ifa_index
    const out: Addr[] = [];
    for (const m of s.sock.dump(RTM_GETADDR, p, `ip addr show dev ${dev}`)) {
      if (m.type !== RTM_NEWADDR || addrIndexOf(m.payload) !== index) continue;
      const a = decodeAddr(m.payload, dev);
      if (a !== undefined) out.push(a);
    }
    return out;
  }

  listAddrs(o?: { dev?: string; family?: Family }): Promise<Addr[]> {
    return this.run((s) => {
      if (o?.dev !== undefined) return this.addrsOf(s, s.index(o.dev), o.dev, o.family);
      // as `ip addr show`: link by link (ifindex order), each link's IPv4 then IPv6 addresses
      const byIndex = new Map<number, Addr[]>();
      for (const m of s.sock.dump(RTM_GETADDR, dumpAddrsPayload(o?.family), 'ip addr show')) {
        if (m.type !== RTM_NEWADDR) continue;
        const i = addrIndexOf(m.payload);
        const a = decodeAddr(m.payload, s.nameOf(i) ?? `if${i}`);
        if (a === undefined) continue;
        const list = byIndex.get(i) ?? [];
        list.push(a);
        byIndex.set(i, list);
      }
      return [...byIndex.entries()].sort(([a], [b]) => a - b).flatMap(([, l]) => l);
    });
  }

  deleteAddr(dev: string, cidr: string, o?: { missingOk?: boolean }): Promise<void> {
    return this.run((s) => {
      try {
        this.batchIn(s, [{ op: 'deleteAddr', dev, cidr }]);
      } catch (err) {
        if (o?.missingOk && isNotFound(err)) return;
        throw err instanceof KernelError ? new KernelError(err.message, { code: err.code, cause: err.cause }) : err;
      }
    });
  }

  // ---- routes

  listRoutes(o?: { family?: Family; dev?: string; table?: number; type?: RouteSpec['type'] }): Promise<Route[]> {
    return this.run((s) => {
      const families: Family[] = o?.family ? [o.family] : [4, 6];
      const oif = o?.dev !== undefined ? s.index(o.dev) : undefined;
      const table = o?.table ?? RT_TABLE_MAIN;
      const type = o?.type !== undefined ? routeTypeNumber(o.type) : undefined;
      const out: Route[] = [];
      for (const f of families) {
        for (const m of s.sock.dump(RTM_GETROUTE, dumpRoutesPayload(f), `ip -${f} route show`)) {
          if (m.type !== RTM_NEWROUTE) continue;
          const h = routeHead(m.payload);
          if (h.family !== f || h.cloned || h.table !== table) continue;
          if (oif !== undefined && h.oif !== oif) continue;
          if (type !== undefined && h.type !== type) continue;
          const r = decodeRoute(m.payload, f, s.nameOf, { showTable: o?.table === undefined });
          if (o?.dev !== undefined) r.dev = o.dev;
          if (o?.type !== undefined) r.type = o.type;
          out.push(r);
        }
      }
      return out;
    });
  }

  routeGet(dst: string): Promise<Route & { prefsrc?: string }> {
    return this.run((s) => {
      const m = s.conn.gets().get(routeGetMsg(dst), `ip route get ${dst}`);
      const r: Route & { prefsrc?: string } = decodeRoute(m.payload, routeFamily({ dst }), s.nameOf, { showTable: true });
      if (r.src !== undefined) r.prefsrc = r.src;
      return r;
    });
  }

  // ---- neighbours, fdb

  listNeighs(dev: string): Promise<Neigh[]> {
    return this.run((s) => {
      const index = s.index(dev);
      const out: Neigh[] = [];
      for (const m of s.sock.dump(RTM_GETNEIGH, dumpNeighPayload(0), `ip neigh show dev ${dev}`)) {
        if (m.type !== RTM_NEWNEIGH || neighIndexOf(m.payload) !== index) continue;
        const n = decodeNeigh(m.payload, dev);
        if (n !== undefined) out.push(n);
      }
      return out;
    });
  }

  listFdb(dev: string): Promise<Fdb[]> {
    return this.run((s) => {
      const index = s.index(dev);
      const p = dumpNeighPayload(AF_BRIDGE);
      p.writeInt32LE(index, 4); // strict dump: the kernel filters by bridge port (ndm_ifindex)
      const out: Fdb[] = [];
      for (const m of s.sock.dump(RTM_GETNEIGH, p, `bridge fdb show dev ${dev}`)) {
        if (m.type !== RTM_NEWNEIGH || neighFamilyOf(m.payload) !== AF_BRIDGE || neighIndexOf(m.payload) !== index) continue;
        const f = decodeFdb(m.payload, dev);
        if (f !== undefined) out.push(f);
      }
      return out;
    });
  }

  // ---- batch

  batch(ops: readonly KernelOp[]): Promise<void> {
    return this.run((s) => this.batchIn(s, ops));
  }

  private batchIn(s: Session, ops: readonly KernelOp[]): void {
    for (let i = 0; i < ops.length; ) {
      const op = ops[i]!;
      if (op.op === 'sysctl') {
        try {
          this.writeSysctlSync(op.key, op.value);
        } catch (err) {
          if (!op.optional) throw withOp(err, op, i);
        }
        i++;
        continue;
      }
      // a run: this op, and the entry writes after it that may share its sendmsg
      const run: KernelOp[] = [op];
      if (isEntryOp(op)) {
        let linkRoute = makesLinkRoute(op);
        for (let next = ops[i + 1]; next !== undefined && isEntryOp(next) && !(linkRoute && needsLinkRoute(next)); next = ops[i + run.length]) {
          run.push(next);
          linkRoute ||= makesLinkRoute(next);
        }
      }
      const reqs: NlRequest[] = [];
      let encodeError: unknown;
      try {
        for (const o of run) reqs.push(encodeOp(o as Exclude<KernelOp, { op: 'sysctl' }>, s));
      } catch (err) {
        encodeError = withOp(err, run[reqs.length]!, i + reqs.length); // the ops before it still go
      }
      try {
        const results = reqs.length > 0 ? send(s.sock, reqs) : [];
        const bad = results.findIndex((r) => r.errno !== 0);
        if (bad >= 0) throw opError(opWhat(run[bad]!), results[bad]!, run[bad]!, i + bad);
      } finally {
        s.closeFds();
      }
      if (encodeError !== undefined) throw encodeError;
      if (run.some((o) => o.op === 'deleteLink')) s.forget();
      i += run.length;
    }
  }

  // ---- sysctl

  private inNs<T>(f: () => T): T {
    return this.netns === undefined ? f() : withNetns(this.netns, f);
  }

  private writeSysctlSync(key: string, value: string): void {
    const path = sysctlPath(key);
    try {
      this.inNs(() => writeFileSync(path, value));
    } catch (err) {
      if (err instanceof KernelError) throw err; // the namespace itself
      throw new KernelError(`write ${path} ${value}: ${(err as Error).message}`, { code: fsErrorCode(err), cause: err });
    }
  }

  readSysctl(key: string): Promise<string> {
    const path = sysctlPath(key);
    try {
      return Promise.resolve(this.inNs(() => readFileSync(path, 'utf8')).trim());
    } catch (err) {
      if (err instanceof KernelError) return Promise.reject(err);
      return Promise.reject(new KernelError(`read ${path}: ${(err as Error).message}`, { code: fsErrorCode(err), cause: err }));
    }
  }

  writeSysctl(key: string, value: string): Promise<void> {
    try {
      this.writeSysctlSync(key, value);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // ---- watch

  watch(onEvent: (ev: KernelEvent) => void): { close(): void } {
    // names of links by index, to say which device an address/route/neighbour event is about
    const names = new Map<number, string>();
    const groups = [RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE];
    const mon = openMonitor(
      { groups, ...(this.netns !== undefined ? { netns: this.netns } : {}) },
      (msgs) => {
        for (const m of msgs) {
          const ev = eventOf(m, names);
          if (ev !== undefined) onEvent(ev);
        }
      },
      () => onEvent({ kind: 'resync' }),
    );
    try {
      // after subscribing: a link made in between is both in the dump and an event
      new Conn(this.netns, false).use((s) => {
        for (const m of s.links()) {
          const n = linkNameOf(m.payload);
          if (n !== undefined) names.set(linkIndexOf(m.payload), n);
        }
      });
    } catch (err) {
      mon.close();
      throw err;
    }
    return mon;
  }
}

/** A multicast message as a KernelEvent (undefined for kinds we do not report). */
function eventOf(m: NlMessage, names: Map<number, string>): KernelEvent | undefined {
  const dev = (i: number | undefined) => (i !== undefined ? names.get(i) : undefined);
  const ev = (kind: 'link' | 'addr' | 'route' | 'neigh' | 'fdb', deleted: boolean, d: string | undefined): KernelEvent =>
    d !== undefined ? { kind, deleted, dev: d } : { kind, deleted };
  switch (m.type) {
    case RTM_NEWLINK:
    case RTM_DELLINK: {
      if (m.payload.length < 16) return undefined;
      const i = linkIndexOf(m.payload);
      const n = linkNameOf(m.payload) ?? names.get(i);
      if (m.type === RTM_DELLINK) names.delete(i);
      else if (n !== undefined) names.set(i, n);
      return ev('link', m.type === RTM_DELLINK, n);
    }
    case RTM_NEWADDR:
    case RTM_DELADDR:
      return m.payload.length < 8 ? undefined : ev('addr', m.type === RTM_DELADDR, dev(addrIndexOf(m.payload)));
    case RTM_NEWROUTE:
    case RTM_DELROUTE: {
      if (m.payload.length < 12) return undefined;
      const h = routeHead(m.payload);
      if (h.cloned) return undefined;
      return ev('route', m.type === RTM_DELROUTE, dev(h.oif));
    }
    case RTM_NEWNEIGH:
    case RTM_DELNEIGH:
      if (m.payload.length < 12) return undefined;
      return ev(neighFamilyOf(m.payload) === AF_BRIDGE ? 'fdb' : 'neigh', m.type === RTM_DELNEIGH, dev(neighIndexOf(m.payload)));
    default:
      return undefined;
  }
}
