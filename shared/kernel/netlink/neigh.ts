// Neighbours and FDB entries as rtnetlink messages: struct ndmsg + NDA_* attributes, both ways.
//
// A vxlan FDB entry is a neighbour of family AF_BRIDGE on the vxlan device (NTF_SELF: the device's own
// table, not a bridge's). Writes are what iproute2 6.1 sends for `ip neigh replace|del` and
// `bridge fdb replace|append|del … self [permanent]` (state PERMANENT for neighbours, PERMANENT|NOARP
// for FDB entries, as those tools set it); reads decode as iproute2/kernel.ts's listNeighs/listFdb read
// `ip -j neigh show` / `bridge -j fdb show`.
import type { Fdb, Neigh } from '../kernel.js';
import { AttrWriter, attrMap, formatMac, getIP, ipBytes, macBytes } from './attr.js';
import { AF_INET, AF_INET6 } from './addr.js';
import { AF_BRIDGE } from './link.js';
import { NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE, RTM_DELNEIGH, RTM_NEWNEIGH, type NlRequest } from './nlmsg.js';

const NDA_DST = 1;
const NDA_LLADDR = 2;
const NUD_NOARP = 0x40;
const NUD_PERMANENT = 0x80;
const NTF_SELF = 0x02;
const NTF_PROXY = 0x08;

/** struct ndmsg (12 bytes) */
function ndmsg(w: AttrWriter, family: number, index: number, state: number, flags: number): AttrWriter {
  return w.u8(family).u8(0).u16(0).i32(index).u16(state).u8(flags).u8(0);
}

/** `ip neigh replace <ip> lladdr <mac> dev <index> nud permanent` */
export function replaceNeighMsg(index: number, ip: string, mac: string): NlRequest {
  const addr = ipBytes(ip);
  const w = ndmsg(new AttrWriter(48), addr.length === 16 ? AF_INET6 : AF_INET, index, NUD_PERMANENT, 0);
  w.attr(NDA_DST, addr).attr(NDA_LLADDR, macBytes(mac));
  return { type: RTM_NEWNEIGH, flags: NLM_F_CREATE | NLM_F_REPLACE, payload: w.bytes() };
}

/** `ip neigh del <ip> dev <index>` */
export function delNeighMsg(index: number, ip: string): NlRequest {
  const addr = ipBytes(ip);
  const w = ndmsg(new AttrWriter(32), addr.length === 16 ? AF_INET6 : AF_INET, index, NUD_PERMANENT, 0);
  w.attr(NDA_DST, addr);
  return { type: RTM_DELNEIGH, flags: 0, payload: w.bytes() };
}

export type FdbVerb = 'replace' | 'append' | 'del';

/** `bridge fdb <verb> <mac> dev <index> [dst <ip>] self [permanent]` */
export function fdbMsg(verb: FdbVerb, index: number, mac: string, dst?: string): NlRequest {
  const w = ndmsg(new AttrWriter(48), AF_BRIDGE, index, NUD_PERMANENT | NUD_NOARP, NTF_SELF);
  w.attr(NDA_LLADDR, macBytes(mac));
  if (dst !== undefined) w.attr(NDA_DST, ipBytes(dst));
  const flags = verb === 'replace' ? NLM_F_CREATE | NLM_F_REPLACE : verb === 'append' ? NLM_F_CREATE | NLM_F_APPEND : 0;
  return { type: verb === 'del' ? RTM_DELNEIGH : RTM_NEWNEIGH, flags, payload: w.bytes() };
}

/** the payload of an RTM_GETNEIGH dump: AF_UNSPEC (IPv4 and IPv6 neighbours) or AF_BRIDGE (FDB) */
export function dumpNeighPayload(family: number): Buffer {
  return ndmsg(new AttrWriter(12), family, 0, 0, 0).bytes();
}

export const neighFamilyOf = (payload: Buffer): number => payload.readUInt8(0);
export const neighIndexOf = (payload: Buffer): number => payload.readInt32LE(4);

/**
 * RTM_NEWNEIGH → Neigh, or undefined for what `ip neigh show` leaves out (NOARP-only and proxy entries)
 * or what listNeighs skips (no IP or no lladdr).
 */
export function decodeNeigh(payload: Buffer, dev: string): Neigh | undefined {
  const family = payload.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const state = payload.readUInt16LE(8);
  const flags = payload.readUInt8(10);
  if (flags & NTF_PROXY || (state & 0xff & ~NUD_NOARP) === 0) return undefined;
  const a = attrMap(payload, 12);
  const ip = getIP(a.get(NDA_DST));
  const ll = a.get(NDA_LLADDR);
  if (ip === undefined || ll === undefined) return undefined;
  return { dev, ip, mac: formatMac(ll), permanent: (state & NUD_PERMANENT) !== 0 };
}

/** RTM_NEWNEIGH of AF_BRIDGE → Fdb, as `bridge -j fdb show` prints it (undefined without a MAC). */
export function decodeFdb(payload: Buffer, dev: string): Fdb | undefined {
  if (payload.readUInt8(0) !== AF_BRIDGE) return undefined;
  const a = attrMap(payload, 12);
  const ll = a.get(NDA_LLADDR);
  if (ll === undefined) return undefined;
  const f: Fdb = { dev, mac: formatMac(ll), self: (payload.readUInt8(10) & NTF_SELF) !== 0, permanent: (payload.readUInt16LE(8) & NUD_PERMANENT) !== 0 };
  const dst = getIP(a.get(NDA_DST));
  if (dst !== undefined) f.dst = dst;
  return f;
}
