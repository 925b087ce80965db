// Netlink framing (netlink(7), include/uapi/linux/netlink.h and rtnetlink.h): the 16-byte message
// header, the protocol constants, packing many requests into one datagram, splitting a received
// datagram into messages, and reading an NLMSG_ERROR (the ack, with its extended-ack TLVs).
// Pure functions on bytes: what goes over the socket is in socket.ts, the rtnetlink payloads
// (ifinfomsg, rtattr, ...) in the codec built on top.
//
// Every multi-byte field is in host byte order, which is little-endian on every target we build for
// (x86-64, arm64); attributes that the kernel defines as big-endian are the codec's business.

/** struct nlmsghdr: len u32, type u16, flags u16, seq u32, pid u32 */
export const NLMSG_HDRLEN = 16;

/** Messages and attributes are padded to 4 bytes. */
export const nlmsgAlign = (n: number): number => (n + 3) & ~3;

// nlmsg_type values below NLMSG_MIN_TYPE (0x10) are control messages
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

// nlmsg_flags
export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
/** the dump was inconsistent: the object set changed while it was being dumped (retry it) */
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;
// modifiers of GET requests
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_ATOMIC = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// modifiers of NEW requests
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// modifiers of DELETE requests
export const NLM_F_NONREC = 0x100;
export const NLM_F_BULK = 0x200;
// flags of an NLMSG_ERROR (ack)
/** the request was not echoed back (NETLINK_CAP_ACK), only its header */
export const NLM_F_CAPPED = 0x100;
/** extended-ack TLVs follow */
export const NLM_F_ACK_TLVS = 0x200;

// rtnetlink message types (rtnetlink.h)
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;
export const RTM_NEWRULE = 32;
export const RTM_DELRULE = 33;
export const RTM_GETRULE = 34;
export const RTM_NEWNSID = 88;
export const RTM_DELNSID = 89;
export const RTM_GETNSID = 90;

// rtnetlink multicast groups (enum rtnetlink_groups): NETLINK_ADD_MEMBERSHIP takes these numbers
export const RTNLGRP_LINK = 1;
export const RTNLGRP_NOTIFY = 2;
/** neighbours, and the bridge FDB (AF_BRIDGE neighbours: vxlan FDB entries) */
export const RTNLGRP_NEIGH = 3;
export const RTNLGRP_TC = 4;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV4_MROUTE = 6;
export const RTNLGRP_IPV4_ROUTE = 7;
export const RTNLGRP_IPV4_RULE = 8;
export const RTNLGRP_IPV6_IFADDR = 9;
export const RTNLGRP_IPV6_MROUTE = 10;
export const RTNLGRP_IPV6_ROUTE = 11;

// socket level (netlink.h): setsockopt(fd, SOL_NETLINK, ...)
export const NETLINK_ROUTE = 0;
export const SOL_NETLINK = 270;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_DROP_MEMBERSHIP = 2;
export const NETLINK_NO_ENOBUFS = 5;
/** acks carry only the request's header, not the whole request */
export const NETLINK_CAP_ACK = 10;
/** errors carry the kernel's message ("Unknown device type", ...) as TLVs */
export const NETLINK_EXT_ACK = 11;
/** dump requests are checked strictly and may carry filters (iproute2 sets it) */
export const NETLINK_GET_STRICT_CHK = 12;

// extended ack attributes (enum nlmsgerr_attrs)
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;
export const NLMSGERR_ATTR_COOKIE = 3;
export const NLMSGERR_ATTR_MISS_TYPE = 5;

/** What a request puts in its header besides the fields the socket fills (len, seq, pid). */
export interface NlRequest {
  type: number;
  flags: number;
  payload: Uint8Array;
}

/** One received message; `payload` is the bytes after the header (a private copy, safe to keep). */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  payload: Buffer;
}

/** Writes one header at `off` of `buf`. */
export function writeHeader(buf: Buffer, off: number, len: number, type: number, flags: number, seq: number, pid = 0): void {
  buf.writeUInt32LE(len, off);
  buf.writeUInt16LE(type, off + 4);
  buf.writeUInt16LE(flags, off + 6);
  buf.writeUInt32LE(seq >>> 0, off + 8);
  buf.writeUInt32LE(pid >>> 0, off + 12);
}

/** One request as a standalone message (header + payload + padding). */
export function encodeMessage(req: NlRequest, seq: number, pid = 0): Buffer {
  const len = NLMSG_HDRLEN + req.payload.length;
  const buf = Buffer.alloc(nlmsgAlign(len));
  writeHeader(buf, 0, len, req.type, req.flags, seq, pid);
  buf.set(req.payload, NLMSG_HDRLEN);
  return buf;
}

/** The outcome of packing: how many requests of `reqs` (from `start`) went into `buf[0, bytes)`. */
export interface Packed {
  count: number;
  bytes: number;
  /** where the last message packed starts */
  last: number;
}

/**
 * Packs requests reqs[start..] into `buf`, message i carrying `extraFlags` and sequence number
 * `seq0 + i - start`, until the next one would not fit or `maxCount` are in. A single request bigger
 * than `buf` is an error (the caller sizes `buf` for the largest message it sends).
 */
export function packRequests(reqs: readonly NlRequest[], start: number, buf: Buffer, seq0: number, extraFlags: number, maxCount: number): Packed {
  let off = 0;
  let last = 0;
  let i = start;
  while (i < reqs.length && i - start < maxCount) {
    const req = reqs[i]!;
    const len = NLMSG_HDRLEN + req.payload.length;
    const aligned = nlmsgAlign(len);
    if (off + aligned > buf.length) {
      if (i === start) throw new RangeError(`netlink message of ${len} bytes does not fit the ${buf.length}-byte send buffer`);
      break;
    }
    writeHeader(buf, off, len, req.type, req.flags | extraFlags, seq0 + (i - start));
    buf.set(req.payload, off + NLMSG_HDRLEN);
    buf.fill(0, off + len, off + aligned);
    last = off;
    off += aligned;
    i++;
  }
  return { count: i - start, bytes: off, last };
}

/**
 * Splits a received datagram (`data`, which the caller no longer reuses) into messages. A header whose
 * length runs past the end is a framing error the kernel never makes: thrown, not skipped.
 */
export function parseMessages(data: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= data.length) {
    const len = data.readUInt32LE(off);
    if (len < NLMSG_HDRLEN || off + len > data.length) throw new Error(`netlink: malformed message at byte ${off} (length ${len} of ${data.length - off} left)`);
    out.push({
      type: data.readUInt16LE(off + 4),
      flags: data.readUInt16LE(off + 6),
      seq: data.readUInt32LE(off + 8),
      payload: data.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += nlmsgAlign(len);
  }
  return out;
}

/** A decoded NLMSG_ERROR (or the status of an NLMSG_DONE). */
export interface NlError {
  /** 0 for an ack, else the positive errno */
  errno: number;
  /** the kernel's extended-ack message (NETLINK_EXT_ACK) */
  extack?: string;
  /** offset in the request of the attribute the kernel blamed (NLMSGERR_ATTR_OFFS) */
  offset?: number;
  /** the sequence number of the request it answers */
  seq?: number;
}

/**
 * struct nlmsgerr: error (i32, -errno or 0), then the request's header (with its payload unless the
 * ack is NLM_F_CAPPED), then with NLM_F_ACK_TLVS the extended-ack attributes.
 */
export function parseError(msg: NlMessage): NlError {
  const p = msg.payload;
  if (p.length < 4) throw new Error(`netlink: NLMSG_ERROR of ${p.length} bytes`);
  const err: NlError = { errno: -p.readInt32LE(0) | 0 }; // | 0: an ack is 0, not -0
  let tlvs = p.length;
  if (p.length >= 4 + NLMSG_HDRLEN) {
    err.seq = p.readUInt32LE(4 + 8);
    const echoed = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : p.readUInt32LE(4);
    tlvs = 4 + nlmsgAlign(echoed);
  }
  if (msg.flags & NLM_F_ACK_TLVS) Object.assign(err, parseExtack(p.subarray(tlvs)));
  return err;
}

/** The status of an NLMSG_DONE that ends a dump: 0, or an errno (with extack TLVs after it). */
export function parseDone(msg: NlMessage): NlError {
  const p = msg.payload;
  if (p.length < 4) return { errno: 0 };
  const err: NlError = { errno: -p.readInt32LE(0) | 0 }; // | 0: an ack is 0, not -0
  if (msg.flags & NLM_F_ACK_TLVS) Object.assign(err, parseExtack(p.subarray(4)));
  return err;
}

function parseExtack(b: Buffer): Pick<NlError, 'extack' | 'offset'> {
  const out: Pick<NlError, 'extack' | 'offset'> = {};
  let off = 0;
  while (off + 4 <= b.length) {
    const len = b.readUInt16LE(off);
    const type = b.readUInt16LE(off + 2) & 0x3fff; // without NLA_F_NESTED / NLA_F_NET_BYTEORDER
    if (len < 4 || off + len > b.length) break;
    const v = b.subarray(off + 4, off + len);
    if (type === NLMSGERR_ATTR_MSG) {
      const nul = v.indexOf(0);
      out.extack = v.toString('utf8', 0, nul < 0 ? v.length : nul);
    } else if (type === NLMSGERR_ATTR_OFFS && v.length >= 4) {
      out.offset = v.readUInt32LE(0);
    }
    off += nlmsgAlign(len);
  }
  return out;
}
