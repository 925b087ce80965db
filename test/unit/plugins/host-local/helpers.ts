// Builders shared by the host-local unit tests.
import { parseCIDR, parseIP } from '../../../../shared/net/ip.js';
import type { RangeSpec } from '../../../../plugins/host-local/range.js';
import { type RangeSet, canonicalizeRangeSet } from '../../../../plugins/host-local/range-set.js';

/** A RangeSpec from strings: `spec('10.0.0.0/24', {rangeStart: '10.0.0.5'})`. */
export function spec(subnet: string, o: { rangeStart?: string; rangeEnd?: string; gateway?: string } = {}): RangeSpec {
  const c = parseCIDR(subnet);
  const s: RangeSpec = { subnet: { ip: c.ip, prefix: c.net.prefix } };
  if (o.rangeStart) s.rangeStart = parseIP(o.rangeStart);
  if (o.rangeEnd) s.rangeEnd = parseIP(o.rangeEnd);
  if (o.gateway) s.gateway = parseIP(o.gateway);
  return s;
}

/** A canonical range set of plain subnets. */
export function rangeSet(...subnets: string[]): RangeSet {
  return canonicalizeRangeSet(subnets.map((s) => spec(s)));
}
