import { describe, expect, it } from 'vitest';
import { formatIP, formatNet, netContains, nextIP, parseCIDR, parseIP, parseNet } from '../../../../shared/net/ip.js';

describe('ip', () => {
  it.each([
    ['10.1.2.3', '10.1.2.3'],
    ['FD00:0:0::1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
  ])('formats %s like Go as %s', (input, want) => {
    expect(formatIP(parseIP(input))).toBe(want);
  });

  it.each(['', '10', '10.1.2', '010.1.2.3', '10.1.2.300', '1.2.3.4 ', 'fe80::1%eth0'])('rejects %j', (bad) => {
    expect(() => parseIP(bad)).toThrow(TypeError);
  });

  it('masks CIDRs like net.ParseCIDR', () => {
    const { ip, net } = parseCIDR('10.5.72.1/24');
    expect(formatIP(ip)).toBe('10.5.72.1');
    expect(formatNet(net)).toBe('10.5.72.0/24');
    expect(formatNet(parseNet('fd00:12:13::1/56'))).toBe('fd00:12:13::/56');
    expect(() => parseCIDR('10.0.0.0/33')).toThrow('invalid CIDR address: 10.0.0.0/33');
  });

  it('does containment and arithmetic', () => {
    const net = parseNet('10.244.0.0/16');
    expect(netContains(net, parseIP('10.244.255.255'))).toBe(true);
    expect(netContains(net, parseIP('10.245.0.0'))).toBe(false);
    expect(netContains(net, parseIP('fd00::1'))).toBe(false);
    expect(formatIP(nextIP(parseIP('10.0.0.255')))).toBe('10.0.1.0');
    expect(() => nextIP(parseIP('255.255.255.255'))).toThrow(RangeError);
  });
});

describe('parseCIDR: IPv4-mapped IPv6 as net.ParseCIDR reads it', () => {
  it('a length counted in IPv6 bits (≥ 96) is the IPv4 network', () => {
    expect(formatNet(parseCIDR('::ffff:10.0.0.0/104').net)).toBe('10.0.0.0/8');
    expect(formatNet(parseCIDR('::ffff:192.168.1.7/128').net)).toBe('192.168.1.7/32');
    expect(formatNet(parseCIDR('::ffff:10.1.2.3/96').net)).toBe('0.0.0.0/0');
    // below 96 the network leaves the mapped space (Go prints nonsense for it): refused
    expect(() => parseCIDR('::ffff:10.0.0.0/80')).toThrow('invalid CIDR address: ::ffff:10.0.0.0/80');
    expect(() => parseCIDR('::ffff:10.0.0.0/129')).toThrow('invalid CIDR address');
  });
});
