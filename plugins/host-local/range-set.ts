// A range set (backend/allocator/range_set.go): the pools one address is drawn from, all of one family.
// A config has one range set per address the container gets.
import { type IP, formatIP } from '../../shared/net/ip.js';
import { type Range, type RangeSpec, canonicalizeRange, formatRange, rangeContains, rangesOverlap } from './range.js';

export type RangeSet = readonly Range[];

/** RangeSet.Canonicalize: canonicalizes every range, then rejects mixed families and overlaps. */
export function canonicalizeRangeSet(specs: readonly RangeSpec[]): RangeSet {
  if (specs.length === 0) throw new Error('empty range set');
  const out: Range[] = [];
  for (const spec of specs) {
    const r = canonicalizeRange(spec);
    if (out.length > 0 && out[0]!.subnet.family !== r.subnet.family) throw new Error('mixed address families');
    out.push(r);
  }
  for (let i = 0; i < out.length - 1; i++) {
    for (let j = i + 1; j < out.length; j++) {
      if (rangesOverlap(out[i]!, out[j]!)) throw new Error(`subnets ${formatRange(out[i]!)} and ${formatRange(out[j]!)} overlap`);
    }
  }
  return out;
}

/** RangeSet.RangeFor: the range holding `ip`, or an error naming the set. */
export function rangeFor(set: RangeSet, ip: IP): Range {
  const r = set.find((x) => rangeContains(x, ip));
  if (r === undefined) throw new Error(`${formatIP(ip)} not in range set ${formatRangeSet(set)}`);
  return r;
}

export function rangeSetContains(set: RangeSet, ip: IP): boolean {
  return set.some((x) => rangeContains(x, ip));
}

/** RangeSet.Overlaps: any range of one overlaps any of the other. */
export function rangeSetsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((x) => b.some((y) => rangesOverlap(x, y)));
}

/** RangeSet.String: ranges joined with `,`. */
export function formatRangeSet(set: RangeSet): string {
  return set.map(formatRange).join(',');
}
