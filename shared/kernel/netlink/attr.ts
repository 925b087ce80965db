// Netlink attributes (struct nlattr): the type-length-value records every rtnetlink message carries
// after its fixed header, 4-byte aligned, nested by putting records inside a record.
//
// Encoding mirrors iproute2's addattr*/addattr_nest (no NLA_F_NESTED bit on nests, as iproute2 sends
// them; the kernel's rtnetlink parsers accept both), so golden byte strings taken from `strace ip …`
// compare equal. Integers are in host byte order, which this module takes as little-endian (x86, arm64,
// riscv: every platform flannel ships for); the few network-order fields (vxlan port) say so.
import type { Family } from '../../net/ip.js';
import { formatIP, parseCIDR, parseIP, toBytes } from '../../net/ip.js';

export const NLA_HDRLEN = 4;
/** type bits that are flags, not part of the type */
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

export const align4 = (n: number): number => (n + 3) & ~3;

/** A growable byte buffer that writes fixed headers and attributes, nests included. */
export class AttrWriter {
  private buf: Buffer;
  private len = 0;

  // every byte in [0, len) is written before bytes() shows it (fields, headers, zero padding), so the
  // pooled allocUnsafe is safe and spares a zero-fill per message
  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private room(n: number): number {
    const at = this.len;
    if (at + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, at + n));
      this.buf.copy(next, 0, 0, at);
      this.buf = next;
    }
    this.len = at + n;
    return at;
  }

  /** The bytes written so far (a copy-free view). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  get length(): number {
    return this.len;
  }

  // ---- fixed header fields (struct ifinfomsg, rtmsg, ...)

  u8(v: number): this {
    this.buf.writeUInt8(v & 0xff, this.room(1));
    return this;
  }

  u16(v: number): this {
    this.buf.writeUInt16LE(v & 0xffff, this.room(2));
    return this;
  }

  u32(v: number): this {
    this.buf.writeUInt32LE(v >>> 0, this.room(4));
    return this;
  }

  i32(v: number): this {
    this.buf.writeInt32LE(v | 0, this.room(4));
    return this;
  }

  raw(b: Uint8Array | readonly number[]): this {
    const at = this.room(b.length);
    for (let i = 0; i < b.length; i++) this.buf[at + i] = b[i]!;
    return this;
  }

  /** zero bytes up to the next 4-byte boundary */
  pad(): this {
    const n = align4(this.len) - this.len;
    if (n > 0) this.buf.fill(0, this.room(n), this.len);
    return this;
  }

  // ---- attributes

  /** An attribute with `body` bytes (or none: a flag attribute). */
  attr(type: number, body?: Uint8Array | readonly number[]): this {
    this.header(type, body?.length ?? 0);
    if (body !== undefined) this.raw(body);
    return this.pad();
  }

  private header(type: number, bodyLen: number): void {
    const at = this.room(NLA_HDRLEN);
    this.buf.writeUInt16LE(NLA_HDRLEN + bodyLen, at);
    this.buf.writeUInt16LE(type, at + 2);
  }

  attrU8(type: number, v: number): this {
    return this.attr(type, [v & 0xff]);
  }

  attrU16(type: number, v: number): this {
    this.header(type, 2);
    this.buf.writeUInt16LE(v & 0xffff, this.room(2));
    return this.pad();
  }

  /** a 16-bit value in network byte order (IFLA_VXLAN_PORT) */
  attrBe16(type: number, v: number): this {
    return this.attr(type, [(v >> 8) & 0xff, v & 0xff]);
  }

  attrU32(type: number, v: number): this {
    this.header(type, 4);
    this.buf.writeUInt32LE(v >>> 0, this.room(4));
    return this;
  }

  /** a NUL-terminated string (IFLA_IFNAME, IFLA_INFO_KIND) */
  attrStr(type: number, s: string): this {
    return this.attr(type, Buffer.from(`${s}\0`, 'utf8'));
  }

  /** an IPv4 or IPv6 address, 4 or 16 bytes */
  attrIP(type: number, ip: string): this {
    return this.attr(type, ipBytes(ip));
  }

  /** A nested attribute: `fill` writes its children; the length is patched afterwards. */
  nest(type: number, fill: (w: this) => void): this {
    const at = this.room(NLA_HDRLEN);
    this.buf.writeUInt16LE(type, at + 2);
    fill(this);
    this.buf.writeUInt16LE(this.len - at, at);
    return this;
  }
}

/** One attribute as read: its type (flag bits masked off) and body. */
export interface Attr {
  type: number;
  data: Buffer;
}

/** The attributes in `buf[start, end)`; a truncated trailing record ends the walk (the kernel never sends one). */
export function readAttrs(buf: Buffer, start = 0, end = buf.length): Attr[] {
  const out: Attr[] = [];
  let at = start;
  while (at + NLA_HDRLEN <= end) {
    const len = buf.readUInt16LE(at);
    if (len < NLA_HDRLEN || at + len > end) break;
    out.push({ type: buf.readUInt16LE(at + 2) & NLA_TYPE_MASK, data: buf.subarray(at + NLA_HDRLEN, at + len) });
    at += align4(len);
  }
  return out;
}

/** The attributes by type (the last one wins, as the kernel's nla_parse does). */
export function attrMap(buf: Buffer, start = 0, end = buf.length): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (const a of readAttrs(buf, start, end)) m.set(a.type, a.data);
  return m;
}

export const getU8 = (b: Buffer | undefined): number | undefined => (b !== undefined && b.length >= 1 ? b.readUInt8(0) : undefined);
export const getU16 = (b: Buffer | undefined): number | undefined => (b !== undefined && b.length >= 2 ? b.readUInt16LE(0) : undefined);
export const getBe16 = (b: Buffer | undefined): number | undefined => (b !== undefined && b.length >= 2 ? b.readUInt16BE(0) : undefined);
export const getU32 = (b: Buffer | undefined): number | undefined => (b !== undefined && b.length >= 4 ? b.readUInt32LE(0) : undefined);

/** A NUL-terminated string attribute (the NUL and anything after it dropped). */
export function getStr(b: Buffer | undefined): string | undefined {
  if (b === undefined) return undefined;
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
}

/** An address attribute as text (4 bytes: IPv4, 16: IPv6), as iproute2 prints it. */
export function getIP(b: Buffer | undefined): string | undefined {
  if (b === undefined) return undefined;
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.length === 16) {
    let value = 0n;
    for (const x of b) value = (value << 8n) | BigInt(x);
    return formatIP({ family: 6, value });
  }
  return undefined;
}

/** a dotted quad as Go accepts it (no leading zeros): the common case, parsed without ipaddr.js/BigInt */
const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** The 4 or 16 bytes of an address (IPv4-mapped IPv6 is sent as IPv4, as our parser reads it); TypeError if invalid. */
export function ipBytes(ip: string): number[] {
  const m = V4.exec(ip);
  if (m !== null) return [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  return toBytes(parseIP(ip));
}

export function familyOfIP(ip: string): Family {
  return ipBytes(ip).length === 16 ? 6 : 4;
}

/** `addr/len` as the address bytes as written and the prefix length; TypeError if invalid. */
export function cidrBytes(cidr: string): { bytes: number[]; prefix: number } {
  const slash = cidr.lastIndexOf('/');
  const m = slash > 0 ? V4.exec(cidr.slice(0, slash)) : null;
  const len = cidr.slice(slash + 1);
  if (m !== null && /^\d{1,2}$/.test(len) && Number(len) <= 32) return { bytes: [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])], prefix: Number(len) };
  const { ip, net } = parseCIDR(cidr);
  return { bytes: toBytes(ip), prefix: net.prefix };
}

/** A MAC (or any link-layer address) `aa:bb:…` as bytes; throws a TypeError on anything else. */
export function macBytes(mac: string): number[] {
  const parts = mac.split(':');
  if (parts.length < 1 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new TypeError(`invalid link-layer address ${JSON.stringify(mac)}`);
  return parts.map((p) => parseInt(p, 16));
}

/** Link-layer bytes as lower-case `aa:bb:…` (iproute2's ll_addr_n2a for Ethernet-like devices). */
export function formatMac(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += (i === 0 ? '' : ':') + b[i]!.toString(16).padStart(2, '0');
  return s;
}
