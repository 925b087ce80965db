// Routes as rtnetlink messages: struct rtmsg + RTA_* attributes, both ways.
//
// Writes are what iproute2 6.1 sends for `ip route add|replace|prepend|del <routeArgs>` (the iproute2
// adapter's argv, iproute2/batch.ts): the same header defaults (table main, protocol boot, scope link for
// a route without a gateway, scope nowhere and no type/protocol on a delete) and attribute order, so that
// both backends leave the same routes (test/integration/kernel/differential.test.ts) and the golden bytes
// in test/unit/shared/kernel/netlink/route.test.ts are strace's. Reads decode RTM_NEWROUTE into `Route`
// exactly as iproute2/parse.ts reads `ip -j route show`.
import { parseIP, toBytes, type Family } from '../../net/ip.js';
import type { Route, RouteSpec } from '../kernel.js';
import { AttrWriter, attrMap, cidrBytes, familyOfIP, getIP, getU16, getU32, ipBytes } from './attr.js';
import { AF_INET, AF_INET6, afOf, scopeName } from './addr.js';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM_DELROUTE, RTM_GETROUTE, RTM_NEWROUTE, type NlRequest } from './nlmsg.js';

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_PREFSRC = 7;
const RTA_METRICS = 8;
const RTA_TABLE = 15;
const RTA_VIA = 18;
const RTAX_MTU = 2;
const RTAX_ADVMSS = 8;

const RTNH_F_ONLINK = 4;
const RTM_F_CLONED = 0x200;
const RTM_F_LOOKUP_TABLE = 0x1000;

const RT_TABLE_UNSPEC = 0;
const RT_TABLE_DEFAULT = 253;
export const RT_TABLE_MAIN = 254;
const RT_TABLE_LOCAL = 255;

const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_HOST = 254;
const RT_SCOPE_NOWHERE = 255;

const RTN_UNSPEC = 0;
const RTN_UNICAST = 1;
const TYPES: Readonly<Record<NonNullable<RouteSpec['type']>, number>> = { blackhole: 6, unreachable: 7, prohibit: 8 };
const TYPE_NAMES: ReadonlyMap<number, NonNullable<RouteSpec['type']>> = new Map(Object.entries(TYPES).map(([k, v]) => [v, k as NonNullable<RouteSpec['type']>]));

const RTPROT_BOOT = 3;
/** iproute2's rtnl_rtprot_tab plus Debian's /etc/iproute2/rt_protos */
const PROTOS: ReadonlyMap<number, string> = new Map([
  [0, 'unspec'], [1, 'redirect'], [2, 'kernel'], [3, 'boot'], [4, 'static'], [8, 'gated'], [9, 'ra'], [10, 'mrt'],
  [11, 'zebra'], [12, 'bird'], [13, 'dnrouted'], [14, 'xorp'], [15, 'ntk'], [16, 'dhcp'], [18, 'keepalived'],
  [42, 'babel'], [99, 'openr'], [186, 'bgp'], [187, 'isis'], [188, 'ospf'], [189, 'rip'], [192, 'eigrp'],
]);
const PROTO_NUMBERS: ReadonlyMap<string, number> = new Map([...PROTOS].map(([n, s]) => [s, n]));

/** `proto X` as a number: a name iproute2 knows, or a number 0-255 */
export function protoNumber(proto: string): number {
  const n = PROTO_NUMBERS.get(proto) ?? (/^\d+$/.test(proto) ? Number(proto) : undefined);
  if (n === undefined || n > 255) throw new TypeError(`unknown route protocol ${JSON.stringify(proto)}`);
  return n;
}

const SCOPES: Readonly<Record<NonNullable<RouteSpec['scope']>, number>> = { global: RT_SCOPE_UNIVERSE, link: RT_SCOPE_LINK, host: RT_SCOPE_HOST };

/**
 * The family of a route: its dst's, else its gateway's or source's (`default` alone is IPv4). `dst`:
 * dstOf(r) when the caller has it already.
 */
export function routeFamily(r: RouteSpec, dst?: { bytes: number[] }): Family {
  if (r.dst !== 'default') return (dst ?? dstOf(r)).bytes.length === 16 ? 6 : 4;
  if (r.via !== undefined) return familyOfIP(r.via);
  if (r.src !== undefined) return familyOfIP(r.src);
  return 4;
}

/** dst as (prefix length, address bytes as written); `default` and any /0 are length 0 and no RTA_DST */
function dstOf(r: RouteSpec): { len: number; bytes: number[] } {
  if (r.dst === 'default') return { len: 0, bytes: [] };
  const { bytes, prefix } = r.dst.includes('/') ? cidrBytes(r.dst) : { bytes: ipBytes(r.dst), prefix: -1 };
  const len = prefix < 0 ? bytes.length * 8 : prefix;
  return { len, bytes };
}

export type RouteVerb = 'add' | 'replace' | 'prepend' | 'del';

const VERB_FLAGS: Readonly<Record<RouteVerb, number>> = {
  add: NLM_F_CREATE | NLM_F_EXCL,
  replace: NLM_F_CREATE | NLM_F_REPLACE,
  prepend: NLM_F_CREATE,
  del: 0,
};

/** `ip route <verb> <route>`; `oif` is the index of `route.dev` (resolved by the caller). */
export function routeMsg(verb: RouteVerb, r: RouteSpec, oif?: number): NlRequest {
  const dst = dstOf(r);
  const family = routeFamily(r, dst);
  const del = verb === 'del';
  const type = r.type !== undefined ? TYPES[r.type] : del ? RTN_UNSPEC : RTN_UNICAST;
  const table = r.table ?? RT_TABLE_MAIN;
  let scope: number;
  if (r.scope !== undefined) scope = SCOPES[r.scope];
  else if (family === 6) scope = RT_SCOPE_UNIVERSE;
  else if (type === RTN_UNICAST || type === RTN_UNSPEC) scope = del ? RT_SCOPE_NOWHERE : r.via === undefined ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  else scope = del ? RT_SCOPE_NOWHERE : RT_SCOPE_UNIVERSE;
  const proto = r.proto !== undefined ? protoNumber(r.proto) : del ? 0 : RTPROT_BOOT;

  const w = new AttrWriter(96)
    .u8(afOf(family))
    .u8(dst.len)
    .u8(0) // src_len
    .u8(0) // tos
    .u8(table < 256 ? table : RT_TABLE_UNSPEC)
    .u8(proto)
    .u8(scope)
    .u8(type)
    .u32(r.onlink ? RTNH_F_ONLINK : 0);
  if (dst.len > 0) w.attr(RTA_DST, dst.bytes);
  if (r.via !== undefined) w.attr(RTA_GATEWAY, ipBytes(r.via));
  if (r.src !== undefined) w.attr(RTA_PREFSRC, ipBytes(r.src));
  if (table >= 256) w.attrU32(RTA_TABLE, table);
  if (r.metric !== undefined) w.attrU32(RTA_PRIORITY, r.metric);
  if (oif !== undefined) w.attrU32(RTA_OIF, oif);
  if (r.mtu !== undefined || r.advmss !== undefined) {
    w.nest(RTA_METRICS, (m) => {
      if (r.mtu !== undefined) m.attrU32(RTAX_MTU, r.mtu);
      if (r.advmss !== undefined) m.attrU32(RTAX_ADVMSS, r.advmss);
    });
  }
  return { type: del ? RTM_DELROUTE : RTM_NEWROUTE, flags: VERB_FLAGS[verb], payload: w.bytes() };
}

/** `ip route get <dst>`: RTM_GETROUTE answered with one RTM_NEWROUTE (the route the kernel would take) */
export function routeGetMsg(dst: string): NlRequest {
  const ip = parseIP(dst);
  const w = new AttrWriter(48)
    .u8(afOf(ip.family))
    .u8(ip.family === 6 ? 128 : 32)
    .u8(0)
    .u8(0)
    .u8(RT_TABLE_UNSPEC)
    .u8(0)
    .u8(RT_SCOPE_UNIVERSE)
    .u8(RTN_UNSPEC)
    .u32(RTM_F_LOOKUP_TABLE);
  w.attr(RTA_DST, toBytes(ip));
  return { type: RTM_GETROUTE, flags: 0, payload: w.bytes() };
}

/** the payload of an RTM_GETROUTE dump of one family */
export function dumpRoutesPayload(family: Family): Buffer {
  return new AttrWriter(12).u8(afOf(family)).u8(0).u8(0).u8(0).u8(0).u8(0).u8(0).u8(0).u32(0).bytes();
}

/** A route message's header fields and raw attributes, for filtering before decoding. */
export interface RouteHead {
  family: Family | undefined;
  table: number;
  type: number;
  cloned: boolean;
  oif: number | undefined;
}

export function routeHead(payload: Buffer): RouteHead {
  const af = payload.readUInt8(0);
  const a = attrMap(payload, 12);
  return {
    family: af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined,
    table: getU32(a.get(RTA_TABLE)) ?? payload.readUInt8(4),
    type: payload.readUInt8(7),
    cloned: (payload.readUInt32LE(8) & RTM_F_CLONED) !== 0,
    oif: getU32(a.get(RTA_OIF)),
  };
}

export const routeTypeNumber = (t: NonNullable<RouteSpec['type']>): number => TYPES[t];

/**
 * RTM_NEWROUTE → Route, as iproute2/parse.ts reads `ip -j route show`: dst without /len for a host
 * route and `default` for /0, protocol only when not `boot`, scope only when not global, table only
 * when not main and the listing was not filtered by table (`showTable`), metrics mtu/advmss.
 */
export function decodeRoute(payload: Buffer, family: Family, nameOf: (index: number) => string | undefined, o: { showTable?: boolean } = {}): Route {
  const a = attrMap(payload, 12);
  const dstLen = payload.readUInt8(1);
  const dstIP = getIP(a.get(RTA_DST));
  const host = family === 6 ? 128 : 32;
  const r: Route = { family, dst: dstIP !== undefined ? (dstLen !== host ? `${dstIP}/${dstLen}` : dstIP) : dstLen !== 0 ? `0/${dstLen}` : 'default' };
  const type = TYPE_NAMES.get(payload.readUInt8(7));
  if (type !== undefined) r.type = type;
  const via = getIP(a.get(RTA_GATEWAY)) ?? viaOf(a.get(RTA_VIA));
  if (via !== undefined) r.via = via;
  const oif = getU32(a.get(RTA_OIF));
  if (oif !== undefined) r.dev = nameOf(oif) ?? `if${oif}`;
  if (payload.readUInt32LE(8) & RTNH_F_ONLINK) r.onlink = true;
  const src = getIP(a.get(RTA_PREFSRC));
  if (src !== undefined) r.src = src;
  const table = getU32(a.get(RTA_TABLE)) ?? payload.readUInt8(4);
  if (o.showTable && table !== RT_TABLE_MAIN && table !== RT_TABLE_LOCAL && table !== RT_TABLE_DEFAULT && table !== RT_TABLE_UNSPEC) r.table = table;
  // iproute2 prints protocol and scope only for routes of the table, not for a cloned one (`route get`)
  const cloned = (payload.readUInt32LE(8) & RTM_F_CLONED) !== 0;
  const scope = scopeName(payload.readUInt8(6));
  if (!cloned && (scope === 'link' || scope === 'host')) r.scope = scope;
  const metric = getU32(a.get(RTA_PRIORITY));
  if (metric !== undefined) r.metric = metric;
  const proto = payload.readUInt8(5);
  if (!cloned && proto !== RTPROT_BOOT) r.proto = PROTOS.get(proto) ?? String(proto);
  const metrics = a.get(RTA_METRICS);
  if (metrics !== undefined) {
    const m = attrMap(metrics);
    const mtu = getU32(m.get(RTAX_MTU));
    if (mtu !== undefined) r.mtu = mtu;
    const advmss = getU32(m.get(RTAX_ADVMSS));
    if (advmss !== undefined) r.advmss = advmss;
  }
  return r;
}

/** struct rtvia: family (u16) then the address */
function viaOf(b: Buffer | undefined): string | undefined {
  if (b === undefined || b.length < 2) return undefined;
  const af = getU16(b);
  return af === AF_INET || af === AF_INET6 ? getIP(b.subarray(2)) : undefined;
}
