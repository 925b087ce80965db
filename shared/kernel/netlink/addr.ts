// Addresses as rtnetlink messages: struct ifaddrmsg + IFA_* attributes, both ways, as iproute2 6.1
// sends `ip addr add|replace|del <cidr> [brd +] dev X` and prints `ip -j addr show`.
import type { Family } from '../../net/ip.js';
import type { Addr } from '../kernel.js';
import { AttrWriter, attrMap, cidrBytes, getIP, getU32 } from './attr.js';
import { NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, RTM_DELADDR, RTM_NEWADDR, type NlRequest } from './nlmsg.js';

export const AF_INET = 2;
export const AF_INET6 = 10;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_BROADCAST = 4;
const IFA_FLAGS = 8;
const IFA_F_DADFAILED = 0x08;
const IFA_F_TENTATIVE = 0x40;

export const afOf = (f: Family): number => (f === 6 ? AF_INET6 : AF_INET);

/** rtnl_rtscope_n2a: the scope names iproute2 prints */
export function scopeName(scope: number): string {
  switch (scope) {
    case 0:
      return 'global';
    case 200:
      return 'site';
    case 253:
      return 'link';
    case 254:
      return 'host';
    case 255:
      return 'nowhere';
    default:
      return String(scope);
  }
}

export type AddrVerb = 'add' | 'replace' | 'del';

/**
 * `ip addr <verb> <ip/len> [brd +] dev <index>`: IFA_LOCAL and IFA_ADDRESS both the address, and for
 * IPv4 shorter than /31 the computed broadcast (what the iproute2 adapter asks with `brd +`, and
 * vishvananda/netlink's AddrAdd does). 127/8 gets host scope, as iproute2 gives it.
 */
export function addrMsg(verb: AddrVerb, index: number, cidr: string): NlRequest {
  const { bytes, prefix } = cidrBytes(cidr);
  const v4 = bytes.length === 4;
  const scope = verb !== 'del' && v4 && bytes[0] === 127 ? 254 : 0;
  const w = new AttrWriter(64).u8(v4 ? AF_INET : AF_INET6).u8(prefix).u8(0).u8(scope).u32(index);
  w.attr(IFA_LOCAL, bytes).attr(IFA_ADDRESS, bytes);
  if (verb !== 'del' && v4 && prefix < 31) {
    // the host bits all ones (`brd +`)
    w.attr(IFA_BROADCAST, bytes.map((b, i) => b | (0xff >> Math.min(8, Math.max(0, prefix - 8 * i)) & 0xff)));
  }
  const flags = verb === 'add' ? NLM_F_CREATE | NLM_F_EXCL : verb === 'replace' ? NLM_F_CREATE | NLM_F_REPLACE : 0;
  return { type: verb === 'del' ? RTM_DELADDR : RTM_NEWADDR, flags, payload: w.bytes() };
}

/** the payload of an RTM_GETADDR dump (one family, or both) */
export function dumpAddrsPayload(family?: Family): Buffer {
  return new AttrWriter(8).u8(family !== undefined ? afOf(family) : 0).u8(0).u8(0).u8(0).u32(0).bytes();
}

/** The interface index an RTM_NEWADDR payload is on. */
export const addrIndexOf = (payload: Buffer): number => payload.readUInt32LE(4);

/** RTM_NEWADDR → Addr (undefined for a family we do not model), as iproute2/parse.ts's addrsOf reads it. */
export function decodeAddr(payload: Buffer, dev: string): Addr | undefined {
  const family = payload.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const a = attrMap(payload, 8);
  const local = getIP(a.get(IFA_LOCAL) ?? a.get(IFA_ADDRESS));
  if (local === undefined) return undefined;
  const flags = getU32(a.get(IFA_FLAGS)) ?? payload.readUInt8(2);
  const addr: Addr = { dev, family: family === AF_INET6 ? 6 : 4, cidr: `${local}/${payload.readUInt8(1)}`, scope: scopeName(payload.readUInt8(3)) };
  if (flags & IFA_F_TENTATIVE) addr.tentative = true;
  if (flags & IFA_F_DADFAILED) addr.dadfailed = true;
  return addr;
}
