import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatNet } from '../../../../shared/net/ip.js';
import { missingKeys, parseSubnetEnv, readSubnetEnv } from '../../../../plugins/flannel/subnet-env.js';

const V4 = 'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n';
const V6 = 'FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n';
const DUAL = 'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n';

describe('parseSubnetEnv (loadFlannelSubnetEnv)', () => {
  it('reads the IPv4 file: networks, the subnet as a network, mtu, ipmasq', () => {
    const se = parseSubnetEnv(V4, 'f');
    expect(se.nws.map(formatNet)).toEqual(['10.1.0.0/16']);
    expect(formatNet(se.sn!)).toBe('10.1.17.0/24');
    expect(se.ip6Sn).toBeUndefined();
    expect(se.mtu).toBe(1472);
    expect(se.ipmasq).toBe(true);
  });

  it('reads the IPv6 file', () => {
    const se = parseSubnetEnv(V6, 'f');
    expect(se.nws).toEqual([]);
    expect(se.ip6Nws.map(formatNet)).toEqual(['fc00::/48']);
    expect(formatNet(se.ip6Sn!)).toBe('fc00::/64');
    expect(se.sn).toBeUndefined();
  });

  it('reads the dual-stack file', () => {
    const se = parseSubnetEnv(DUAL, 'f');
    expect(formatNet(se.sn!)).toBe('10.1.17.0/24');
    expect(formatNet(se.ip6Sn!)).toBe('fc00::/64');
  });

  it('splits FLANNEL_NETWORK on commas and drops duplicates', () => {
    const se = parseSubnetEnv(V4.replace('10.1.0.0/16', '10.1.0.0/16,192.168.0.0/16,10.1.0.5/16'), 'f');
    expect(se.nws.map(formatNet)).toEqual(['10.1.0.0/16', '192.168.0.0/16']);
  });

  it('IPMASQ is true only for exactly "true"; last duplicate wins; unknown keys and comments are ignored', () => {
    expect(parseSubnetEnv(V4.replace('IPMASQ=true', 'IPMASQ=TRUE'), 'f').ipmasq).toBe(false);
    expect(parseSubnetEnv(`${V4}FLANNEL_MTU=1400\n# c\n\nFOO=bar\n`, 'f').mtu).toBe(1400);
  });

  it('drops one trailing \\r per line (bufio.ScanLines) but never trims spaces', () => {
    expect(parseSubnetEnv(V4.replaceAll('\n', '\r\n'), 'f').mtu).toBe(1472);
    expect(() => parseSubnetEnv(V4.replace('1472', '1472 '), 'f')).toThrow('strconv.ParseUint: parsing "1472 ": invalid syntax');
    expect(() => parseSubnetEnv(V4.replace('10.1.17.1/24', '10.1.17.1/24 '), 'f')).toThrow('invalid CIDR address: 10.1.17.1/24 ');
  });

  it('reports Go texts for bad values', () => {
    expect(() => parseSubnetEnv(V4.replace('1472', '99999999999'), 'f')).toThrow('strconv.ParseUint: parsing "99999999999": value out of range');
    expect(() => parseSubnetEnv(V4.replace('1472', '-1'), 'f')).toThrow('strconv.ParseUint: parsing "-1": invalid syntax');
    expect(() => parseSubnetEnv(V4.replace('10.1.0.0/16', 'garbage'), 'f')).toThrow('invalid CIDR address: garbage');
    expect(() => parseSubnetEnv(V4.replace('10.1.0.0/16', ''), 'f')).toThrow('invalid CIDR address: ');
  });

  it('a recognised key without "=" fails with the Go runtime text', () => {
    expect(() => parseSubnetEnv('FLANNEL_MTU\n', 'f')).toThrow('index out of range [1] with length 1');
  });

  it('lists every missing key in the reference order (flannel_linux_test "foo=bar")', () => {
    expect(() => parseSubnetEnv('foo=bar\n', '/x/subnet.env')).toThrow(
      '/x/subnet.env is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ',
    );
    expect(() => parseSubnetEnv('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_MTU=1450\n', '/tmp/cnires/partial.env')).toThrow(
      '/tmp/cnires/partial.env is missing FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_IPMASQ',
    );
    expect(missingKeys(parseSubnetEnv(V6, 'f'))).toBe('');
  });

  it('readSubnetEnv words fs errors like os.Open / the scanner', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flannel-se-'));
    try {
      expect(() => readSubnetEnv(join(dir, 'nope'))).toThrow(`open ${join(dir, 'nope')}: no such file or directory`);
      mkdirSync(join(dir, 'd'));
      expect(() => readSubnetEnv(join(dir, 'd'))).toThrow(`read ${join(dir, 'd')}: is a directory`);
      writeFileSync(join(dir, 'ok'), V4);
      expect(readSubnetEnv(join(dir, 'ok')).mtu).toBe(1472);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
