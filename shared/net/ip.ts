// IP addresses and networks as (family, bigint) pairs: parsing and validation by ipaddr.js, arithmetic
// on bigint, and text rendered exactly as Go's net.IP.String() / net.IPNet.String() do (lower-case,
// RFC 5952 compressed IPv6, IPv4-mapped IPv6 shown as a dotted quad), because every key, lease, file
// and CNI result we write must be byte-identical to the Go reference.
import ipaddr from 'ipaddr.js';

export type Family = 4 | 6;

export interface IP {
  readonly family: Family;
  readonly value: bigint;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function bitsOf(family: Family): number {
  return BITS[family];
}

/** Parses an address; IPv4-mapped IPv6 (`::ffff:1.2.3.4`) counts as IPv4, as Go's To4() does. */
export function parseIP(text: string): IP {
  const s = text.trim();
  if (s !== text || s === '' || !ipaddr.isValid(s) || s.includes('%')) {
    throw new TypeError(`invalid IP address ${JSON.stringify(text)}`);
  }
  // ipaddr.js accepts non-canonical IPv4 forms ("10", "0x0a.1", "010.0.0.1"); Go does not.
  if (!s.includes(':') && !/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    throw new TypeError(`invalid IP address ${JSON.stringify(text)}`);
  }
  if (!s.includes(':') && s.split('.').some((o) => o.length > 1 && o.startsWith('0'))) {
    throw new TypeError(`invalid IP address ${JSON.stringify(text)}`);
  }
  const addr = ipaddr.parse(s);
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return fromBytes(4, v6.toIPv4Address().toByteArray());
    return fromBytes(6, v6.toByteArray());
  }
  return fromBytes(4, addr.toByteArray());
}

export function tryParseIP(text: string): IP | undefined {
  try {
    return parseIP(text);
  } catch {
    return undefined;
  }
}

function fromBytes(family: Family, bytes: number[]): IP {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return { family, value };
}

export function toBytes(ip: IP): number[] {
  const n = BITS[ip.family] / 8;
  const out = new Array<number>(n);
  let v = ip.value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Go's net.IP.String(). */
export function formatIP(ip: IP): string {
  if (ip.family === 4) return toBytes(ip).join('.');
  return (ipaddr.fromByteArray(toBytes(ip)) as ipaddr.IPv6).toRFC5952String();
}

export function ipEqual(a: IP, b: IP): boolean {
  return a.family === b.family && a.value === b.value;
}

export function addToIP(ip: IP, delta: bigint): IP {
  const max = (1n << BigInt(BITS[ip.family])) - 1n;
  const value = ip.value + delta;
  if (value < 0n || value > max) throw new RangeError(`${formatIP(ip)} + ${delta} leaves the address space`);
  return { family: ip.family, value };
}

export const nextIP = (ip: IP): IP => addToIP(ip, 1n);
export const prevIP = (ip: IP): IP => addToIP(ip, -1n);

/** A network: base address with host bits cleared, and a prefix length. */
export interface IPNet {
  readonly family: Family;
  readonly base: bigint;
  readonly prefix: number;
}

export function maskOf(family: Family, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  return ((1n << BigInt(prefix)) - 1n) << (bits - BigInt(prefix));
}

export function makeNet(ip: IP, prefix: number): IPNet {
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > BITS[ip.family]) {
    throw new RangeError(`invalid prefix length ${prefix} for IPv${ip.family}`);
  }
  return { family: ip.family, base: ip.value & maskOf(ip.family, prefix), prefix };
}

/** Parses `addr/len` like Go's net.ParseCIDR: returns the address as written and the masked network. */
export function parseCIDR(text: string): { ip: IP; net: IPNet } {
  const slash = text.lastIndexOf('/');
  if (slash < 0) throw new TypeError(`invalid CIDR address: ${text}`);
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) throw new TypeError(`invalid CIDR address: ${text}`);
  let ip: IP;
  try {
    ip = parseIP(text.slice(0, slash));
  } catch {
    throw new TypeError(`invalid CIDR address: ${text}`);
  }
  let prefix = Number(lenText);
  // Go counts the length in IPv6 bits when the address is written as IPv6, also for an IPv4-mapped one
  // (`::ffff:10.0.0.0/104`): that is the IPv4 network 10.0.0.0/8 (what Go prints for it). Go also takes
  // a length below 96 there, but the network then covers non-mapped IPv6 space and Go's consumers print
  // nonsense for it (host-local renders `::ffff:10.0.0.0/80` as the route `10.0.0.0/0`): refused here.
  if (ip.family === 4 && text.slice(0, slash).includes(':')) {
    if (prefix < 96 || prefix > 128) throw new TypeError(`invalid CIDR address: ${text}`);
    prefix -= 96;
  }
  if (prefix > BITS[ip.family]) throw new TypeError(`invalid CIDR address: ${text}`);
  return { ip, net: makeNet(ip, prefix) };
}

export function tryParseCIDR(text: string): { ip: IP; net: IPNet } | undefined {
  try {
    return parseCIDR(text);
  } catch {
    return undefined;
  }
}

export function parseNet(text: string): IPNet {
  return parseCIDR(text).net;
}

export function netIP(net: IPNet): IP {
  return { family: net.family, value: net.base };
}

/** Go's net.IPNet.String(): `base/prefix`. */
export function formatNet(net: IPNet): string {
  return `${formatIP(netIP(net))}/${net.prefix}`;
}

/** `ip/prefix` with the host bits kept, as a CNI result's `address`. */
export function formatCIDR(ip: IP, prefix: number): string {
  return `${formatIP(ip)}/${prefix}`;
}

export function netContains(net: IPNet, ip: IP): boolean {
  return ip.family === net.family && (ip.value & maskOf(net.family, net.prefix)) === net.base;
}

export function netOverlaps(a: IPNet, b: IPNet): boolean {
  if (a.family !== b.family) return false;
  const p = Math.min(a.prefix, b.prefix);
  const m = maskOf(a.family, p);
  return (a.base & m) === (b.base & m);
}

export function netEqual(a: IPNet, b: IPNet): boolean {
  return a.family === b.family && a.base === b.base && a.prefix === b.prefix;
}

/** Number of addresses in the network. */
export function netSize(net: IPNet): bigint {
  return 1n << BigInt(BITS[net.family] - net.prefix);
}

/** Last address of the network (broadcast for IPv4). */
export function netLast(net: IPNet): IP {
  return { family: net.family, value: net.base + netSize(net) - 1n };
}
