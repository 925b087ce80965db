// Lease keys under <prefix>/subnets/, byte-identical to Go's subnet.MakeSubnetKey / ParseSubnetKey:
// `10.5.52.0-24`, or `10.12.13.0-24&fd00:12:13::-56` in dual stack (Go net.IP.String() forms).
import { type IPNet, formatIP, makeNet, netIP, tryParseIP } from '../../shared/net/ip.js';

export function makeSubnetKey(sn: IPNet, sn6?: IPNet): string {
  let key = `${formatIP(netIP(sn))}-${sn.prefix}`;
  if (sn6 && !(sn6.base === 0n && sn6.prefix === 0)) key += `&${formatIP(netIP(sn6))}-${sn6.prefix}`;
  return key;
}

// Go's regex, unanchored at the start and with the same two unescaped dots.
const SUBNET_KEY_RE = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/;

/** strconv.ParseUint(s, 10, bitSize) */
function parseUintBits(s: string, bits: number): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n < 2 ** bits ? n : undefined;
}

/**
 * Parses a key (or any string ending in one, e.g. the full etcd key); undefined when Go's parser
 * returns nil. A v4 prefix above 31 is rejected as Go does (bitSize 5). Host bits are masked.
 */
export function parseSubnetKey(s: string): { sn: IPNet; sn6?: IPNet } | undefined {
  const m = SUBNET_KEY_RE.exec(s);
  if (!m) return undefined;
  const ip = tryParseIP(m[1]!);
  if (!ip || ip.family !== 4) return undefined;
  const len = parseUintBits(m[2]!, 5);
  if (len === undefined || len > 32) return undefined;
  const sn = makeNet(ip, len);
  if (m[3] === undefined) return { sn };
  const ip6 = tryParseIP(m[3]);
  if (!ip6 || ip6.family !== 6) return undefined;
  const len6 = parseUintBits(m[4]!, 7);
  if (len6 === undefined) return undefined;
  return { sn, sn6: makeNet(ip6, len6) };
}
