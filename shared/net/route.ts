// Route destinations as iproute2 prints them, and the longest-prefix match the kernel would do over a
// table we read. One home for what host-gw, vxlan (DirectRouting), the blackhole routes and the bridge
// plugin each parsed on their own.
import { formatNet, makeNet, netContains, tryParseCIDR, tryParseIP, type Family, type IP, type IPNet } from './ip.js';

/**
 * A route's `dst` as a network: `10.0.0.0/8`, or a bare host address (`ip` prints a /32 or /128 without
 * its prefix). Undefined for `default` and anything unparseable, or when it is not of `family`.
 */
export function parseRouteDst(text: string, family?: Family): IPNet | undefined {
  let net: IPNet | undefined;
  if (text.includes('/')) net = tryParseCIDR(text)?.net;
  else {
    const ip = tryParseIP(text);
    net = ip ? makeNet(ip, ip.family === 4 ? 32 : 128) : undefined;
  }
  return net && (family === undefined || net.family === family) ? net : undefined;
}

/** A route dst in Go's net.IPNet.String() form (`10.1.2.0/24`, host bits cleared); other text as is. */
export function formatRouteDst(text: string): string {
  const net = parseRouteDst(text);
  return net ? formatNet(net) : text;
}

/** What longestPrefixMatch needs of a route (shared/kernel's Route has it). */
export interface RouteLike {
  dst: string;
  table?: number;
  /** when known: `default` has no family of its own in the text */
  family?: Family;
}

const MAIN_TABLE = 254;

/**
 * The route of the main table the kernel would pick for `ip` by destination alone: the longest prefix
 * containing it, `default` counting as /0, the first listed among equals. Routes in other tables (and
 * unparseable ones) are ignored; so is the family: a v4 address never matches a v6 route.
 */
export function longestPrefixMatch<R extends RouteLike>(routes: readonly R[], ip: IP): R | undefined {
  let best: R | undefined;
  let bestLen = -1;
  for (const r of routes) {
    if ((r.table ?? MAIN_TABLE) !== MAIN_TABLE) continue;
    let len: number;
    if (r.family !== undefined && r.family !== ip.family) continue;
    if (r.dst === 'default') {
      len = 0;
    } else {
      const net = parseRouteDst(r.dst, ip.family);
      if (!net || !netContains(net, ip)) continue;
      len = net.prefix;
    }
    if (len > bestLen) {
      best = r;
      bestLen = len;
    }
  }
  return best;
}
