import { describe, expect, it } from 'vitest';
import { parseIP } from '../../../../shared/net/ip.js';
import { formatRouteDst, longestPrefixMatch, parseRouteDst } from '../../../../shared/net/route.js';

describe('route dst', () => {
  it('parses prefixes and bare host addresses, not default', () => {
    expect(parseRouteDst('10.1.2.0/24')).toMatchObject({ family: 4, prefix: 24 });
    expect(parseRouteDst('10.1.2.3')).toMatchObject({ family: 4, prefix: 32 });
    expect(parseRouteDst('fd00::1')).toMatchObject({ family: 6, prefix: 128 });
    expect(parseRouteDst('default')).toBeUndefined();
    expect(parseRouteDst('10.1.2.3', 6)).toBeUndefined();
    expect(parseRouteDst('nonsense')).toBeUndefined();
  });

  it('formats as net.IPNet.String(), leaving other text alone', () => {
    expect(formatRouteDst('10.1.2.7/24')).toBe('10.1.2.0/24');
    expect(formatRouteDst('10.1.2.3')).toBe('10.1.2.3/32');
    expect(formatRouteDst('fd00:0::/64')).toBe('fd00::/64');
    expect(formatRouteDst('default')).toBe('default');
  });
});

describe('longestPrefixMatch', () => {
  const routes = [
    { dst: 'default', via: '192.168.1.1', family: 4 as const },
    { dst: '192.168.0.0/16', via: '192.168.1.1' },
    { dst: '192.168.1.0/24' },
    { dst: '192.168.1.9', table: 100 },
    { dst: 'default', family: 6 as const },
  ];

  it('picks the longest prefix of the main table', () => {
    expect(longestPrefixMatch(routes, parseIP('192.168.1.9'))?.dst).toBe('192.168.1.0/24');
    expect(longestPrefixMatch(routes, parseIP('192.168.7.1'))?.dst).toBe('192.168.0.0/16');
    expect(longestPrefixMatch(routes, parseIP('8.8.8.8'))?.dst).toBe('default');
    expect(longestPrefixMatch(routes, parseIP('8.8.8.8'))?.via).toBe('192.168.1.1');
  });

  it('never matches across families', () => {
    expect(longestPrefixMatch(routes, parseIP('2001:db8::1'))).toEqual({ dst: 'default', family: 6 });
    expect(longestPrefixMatch(routes.slice(1, 3), parseIP('2001:db8::1'))).toBeUndefined();
  });
});
