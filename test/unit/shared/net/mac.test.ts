import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isUnicastMac, normalizeMac, parseMac, randomMac } from '../../../../shared/net/mac.js';

describe('mac', () => {
  it('randomMac is locally administered unicast, from the given bytes', () => {
    expect(randomMac(() => Uint8Array.from([0xff, 1, 2, 3, 4, 0xab]))).toBe('fe:01:02:03:04:ab');
    expect(randomMac((n) => new Uint8Array(n))).toBe('02:00:00:00:00:00');
    expect(randomMac(() => Buffer.from([4, 4, 4, 4, 4, 4]))).toBe('06:04:04:04:04:04');
    for (let i = 0; i < 50; i++) expect(randomMac(randomBytes)).toMatch(/^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/);
  });

  it('normalizeMac takes the 6-byte forms of Go ParseMAC, in lower-case colon form', () => {
    expect(normalizeMac('AA-BB-CC-DD-EE-0F')).toBe('aa:bb:cc:dd:ee:0f');
    expect(normalizeMac('aa:bb:cc:dd:ee:0F')).toBe('aa:bb:cc:dd:ee:0f');
    expect(normalizeMac('AABB.ccdd.EE0f')).toBe('aa:bb:cc:dd:ee:0f');
    expect(normalizeMac('aa:bb:cc:dd:ee')).toBeUndefined();
    expect(normalizeMac('aa:bb-cc:dd:ee:ff')).toBeUndefined();
    expect(normalizeMac('aa:bb:cc:dd:ee:ff:00:11')).toBeUndefined();
    expect(normalizeMac(42)).toBeUndefined();
  });

  it("parseMac throws Go's error", () => {
    expect(parseMac('0A-0b-0c-0d-0e-0f')).toBe('0a:0b:0c:0d:0e:0f');
    expect(() => parseMac('zz')).toThrow('address zz: invalid MAC address');
  });

  it('isUnicastMac refuses all-zero, multicast and broadcast', () => {
    expect(isUnicastMac('02:00:00:00:00:01')).toBe(true);
    expect(isUnicastMac('00:00:00:00:00:00')).toBe(false);
    expect(isUnicastMac('01:00:5e:00:00:01')).toBe(false);
    expect(isUnicastMac('ff:ff:ff:ff:ff:ff')).toBe(false);
    expect(isUnicastMac('nonsense')).toBe(false);
  });
});
