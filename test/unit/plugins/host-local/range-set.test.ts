import { describe, expect, it } from 'vitest';
import { formatIP, parseIP } from '../../../../shared/net/ip.js';
import { canonicalizeRange, formatRange, rangeContains, rangesOverlap } from '../../../../plugins/host-local/range.js';
import { canonicalizeRangeSet, formatRangeSet, rangeFor, rangeSetContains, rangeSetsOverlap } from '../../../../plugins/host-local/range-set.js';
import { rangeSet, spec } from './helpers.js';

describe('canonicalizeRange (range_test.go)', () => {
  it.each([
    ['192.0.2.0/24', '192.0.2.1', '192.0.2.254', '192.0.2.1'],
    ['192.0.2.0/25', '192.0.2.1', '192.0.2.126', '192.0.2.1'],
    ['192.0.2.128/25', '192.0.2.129', '192.0.2.254', '192.0.2.129'],
    ['2001:db8:1::/64', '2001:db8:1::1', '2001:db8:1:0:ffff:ffff:ffff:ffff', '2001:db8:1::1'],
    ['10.0.0.0/30', '10.0.0.1', '10.0.0.2', '10.0.0.1'],
  ])('%s defaults to %s-%s gw %s', (subnet, start, end, gw) => {
    const r = canonicalizeRange(spec(subnet));
    expect([formatIP(r.rangeStart), formatIP(r.rangeEnd), formatIP(r.gateway)]).toEqual([start, end, gw]);
  });

  it('keeps explicit start, end and gateway', () => {
    const r = canonicalizeRange(spec('10.1.0.0/16', { rangeStart: '10.1.2.5', rangeEnd: '10.1.2.9', gateway: '10.1.0.254' }));
    expect(formatRange(r)).toBe('10.1.2.5-10.1.2.9');
    expect(formatIP(r.gateway)).toBe('10.1.0.254');
  });

  it.each<[ReturnType<typeof spec>, string]>([
    [spec('10.0.0.1/31'), 'Network 10.0.0.1/31 too small to allocate from'],
    [spec('10.0.0.0/32'), 'Network 10.0.0.0/32 too small to allocate from'],
    [spec('2001:db8::/127'), 'Network 2001:db8::/127 too small to allocate from'],
    [spec('192.0.2.5/24'), 'Network has host bits set. For a subnet mask of length 24 the network address is 192.0.2.0'],
    [spec('192.0.2.0/24', { rangeStart: '192.0.3.0' }), 'RangeStart 192.0.3.0 not in network 192.0.2.0/24'],
    [spec('192.0.2.0/24', { rangeEnd: '192.0.4.0' }), 'RangeEnd 192.0.4.0 not in network 192.0.2.0/24'],
    [spec('192.0.2.0/24', { rangeStart: '192.0.2.9', rangeEnd: '192.0.2.3' }), 'RangeStart 192.0.2.9 not in network 192.0.2.0/24'],
    [spec('192.0.2.0/24', { rangeStart: '2001:db8::1' }), 'RangeStart 2001:db8::1 not in network 192.0.2.0/24'],
    [{}, 'IP <nil> not v4 nor v6'],
  ])('rejects case %#', (s, msg) => {
    expect(() => canonicalizeRange(s)).toThrow(new Error(msg));
  });

  it('contains only [start, end] of the subnet', () => {
    const r = canonicalizeRange(spec('10.0.0.0/24', { rangeStart: '10.0.0.10', rangeEnd: '10.0.0.20' }));
    expect(['10.0.0.9', '10.0.0.10', '10.0.0.20', '10.0.0.21', '10.0.1.10'].map((s) => rangeContains(r, parseIP(s)))).toEqual([
      false,
      true,
      true,
      false,
      false,
    ]);
  });
});

describe('range sets (range_set_test.go)', () => {
  it('rejects an empty set, mixed families and overlaps', () => {
    expect(() => canonicalizeRangeSet([])).toThrow('empty range set');
    expect(() => canonicalizeRangeSet([spec('10.0.0.0/24'), spec('fd00::/64')])).toThrow('mixed address families');
    expect(() => canonicalizeRangeSet([spec('10.1.0.0/22'), spec('10.1.2.0/24')])).toThrow(
      'subnets 10.1.0.1-10.1.3.254 and 10.1.2.1-10.1.2.254 overlap',
    );
  });

  it('allows disjoint ranges inside one subnet', () => {
    const set = canonicalizeRangeSet([
      spec('10.0.0.0/24', { rangeStart: '10.0.0.10', rangeEnd: '10.0.0.20' }),
      spec('10.0.0.0/24', { rangeStart: '10.0.0.30', rangeEnd: '10.0.0.40' }),
    ]);
    expect(formatRangeSet(set)).toBe('10.0.0.10-10.0.0.20,10.0.0.30-10.0.0.40');
  });

  it('finds the range of an IP or names the set', () => {
    const set = rangeSet('192.168.0.0/24', '172.16.1.0/24');
    expect(formatRange(rangeFor(set, parseIP('172.16.1.9')))).toBe('172.16.1.1-172.16.1.254');
    expect(() => rangeFor(set, parseIP('10.0.0.1'))).toThrow('10.0.0.1 not in range set 192.168.0.1-192.168.0.254,172.16.1.1-172.16.1.254');
    expect(rangeSetContains(set, parseIP('192.168.0.255'))).toBe(false);
  });

  it('detects overlap between sets, never across families', () => {
    expect(rangeSetsOverlap(rangeSet('10.0.0.0/24'), rangeSet('10.0.0.0/25'))).toBe(true);
    expect(rangeSetsOverlap(rangeSet('10.0.0.0/24'), rangeSet('10.0.1.0/24'))).toBe(false);
    expect(rangesOverlap(rangeSet('10.0.0.0/24')[0]!, rangeSet('::/64')[0]!)).toBe(false);
  });
});
