import { describe, expect, it } from 'vitest';
import { formatNet, parseNet } from '../../../../shared/net/ip.js';
import { makeSubnetKey, parseSubnetKey } from '../../../../daemon/subnet/subnet-key.js';

describe('subnet keys (flannel subnet_test.go)', () => {
  it('10.12.13.0-24 ↔ 10.12.13.0/24, no v6, round trip', () => {
    const k = parseSubnetKey('10.12.13.0-24')!;
    expect(formatNet(k.sn)).toBe('10.12.13.0/24');
    expect(k.sn6).toBeUndefined();
    expect(makeSubnetKey(k.sn, k.sn6)).toBe('10.12.13.0-24');
  });

  it('dual stack 10.12.13.0-24&fd00:12:13::-56, round trip', () => {
    const k = parseSubnetKey('10.12.13.0-24&fd00:12:13::-56')!;
    expect(formatNet(k.sn)).toBe('10.12.13.0/24');
    expect(formatNet(k.sn6!)).toBe('fd00:12:13::/56');
    expect(makeSubnetKey(k.sn, k.sn6)).toBe('10.12.13.0-24&fd00:12:13::-56');
  });

  it('full etcd keys parse (the start is not anchored)', () => {
    expect(formatNet(parseSubnetKey('/coreos.com/network/subnets/10.5.52.0-24')!.sn)).toBe('10.5.52.0/24');
  });

  it.each([
    '10',
    '10.12.13.0',
    '10.12.13-24',
    '10.12.13.300-24',
    '10.12.13.0-24hi',
    '&2001::-56',
    '10.12.13.0-24&:12:13:-56',
    '10.12.13.0-24&20011::-56',
    '10.12.13.0-24&2001-56',
    '10.12.13.0-24&2001::',
    '10.12.13.0-24&2001::-56hi',
    '255.255.255.255-32', // FuzzParseSubnetKey seed: bitSize 5 rejects 32
    '10.12.13.0-24&2001::-128',
    '10.12.13.0-24&2001:DB8::-56', // lower-case hex only
  ])('invalid key %s', (k) => {
    expect(parseSubnetKey(k)).toBeUndefined();
  });

  it('makes Go net.IP.String() forms', () => {
    expect(makeSubnetKey(parseNet('10.5.1.0/24'), parseNet('2001:db8:0:0:1::/80'))).toBe('10.5.1.0-24&2001:db8:0:0:1::-80');
    expect(makeSubnetKey(parseNet('10.10.16.0/20'))).toBe('10.10.16.0-20');
  });
});
