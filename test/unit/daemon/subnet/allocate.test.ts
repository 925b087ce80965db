import { describe, expect, it } from 'vitest';
import { formatNet, netContains, parseIP, parseNet } from '../../../../shared/net/ip.js';
import type { Lease } from '../../../../daemon/lease.js';
import { MAX_CANDIDATES, pickSubnet } from '../../../../daemon/subnet/allocate.js';
import { parseAndCheckConfig } from '../../../../daemon/subnet/config.js';

const lease = (cidr: string, cidr6?: string): Lease => ({
  enableIPv4: true,
  enableIPv6: !!cidr6,
  subnet: parseNet(cidr),
  ...(cidr6 ? { ipv6Subnet: parseNet(cidr6) } : {}),
  attrs: { publicIP: parseIP('1.1.1.1') },
  expiration: 0,
});

describe('pickSubnet', () => {
  const cfg = parseAndCheckConfig('{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0" }');

  it('skips taken subnets and picks inside Min..Max', () => {
    const taken = ['10.3.1.0/24', '10.3.2.0/24', '10.3.4.0/24', '10.3.5.0/24', '10.3.31.0/24'].map((c) => lease(c));
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = pickSubnet(cfg, taken);
      const s = formatNet(p.sn);
      expect(['10.3.1.0/24', '10.3.2.0/24', '10.3.4.0/24', '10.3.5.0/24']).not.toContain(s);
      expect(p.sn.prefix).toBe(24);
      expect(p.sn.base >= parseIP('10.3.1.0').value && p.sn.base <= parseIP('10.3.25.0').value).toBe(true);
      seen.add(s);
    }
    expect(seen.size).toBeGreaterThan(5); // random among the candidates
  });

  it('random 0 → first free, random→1 → last of the first 100', () => {
    const big = parseAndCheckConfig('{"Network":"10.0.0.0/8","SubnetLen":24}');
    expect(formatNet(pickSubnet(big, [lease('10.0.1.0/24')], () => 0).sn)).toBe('10.0.2.0/24');
    expect(formatNet(pickSubnet(big, [], () => 0.9999).sn)).toBe(`10.0.${MAX_CANDIDATES}.0/24`);
  });

  it('an odd-sized lease blocks every block it overlaps', () => {
    const p = pickSubnet(cfg, [lease('10.3.0.0/20')], () => 0);
    expect(formatNet(p.sn)).toBe('10.3.16.0/24');
  });

  it('out of subnets', () => {
    const small = parseAndCheckConfig('{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.0","SubnetMax":"10.3.2.0"}');
    expect(() => pickSubnet(small, [lease('10.3.1.0/24'), lease('10.3.2.0/24')])).toThrow('out of subnets');
    expect(() => pickSubnet(parseAndCheckConfig('{"Network":"10.3.0.0/16","SubnetMin":"10.3.9.0","SubnetMax":"10.3.2.0"}'), [])).toThrow(
      'out of subnets',
    );
  });

  it('dual stack picks v6 independently', () => {
    const c = parseAndCheckConfig('{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56"}');
    const p = pickSubnet(c, [lease('10.3.1.0/24', 'fd00:0:0:1::/64')], () => 0);
    expect(formatNet(p.sn)).toBe('10.3.2.0/24');
    expect(formatNet(p.sn6!)).toBe('fd00:0:0:2::/64');
  });

  it('the seed config: /20 inside 10.10.0.0–10.99.0.0, fast with 5000 leases', () => {
    const seed = parseAndCheckConfig('{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.0.0","SubnetMax":"10.99.0.0","Backend":{"Type":"vxlan","VNI":100,"Port":8472}}');
    const taken: Lease[] = [];
    for (let i = 0; i < 1400; i++) taken.push(lease(formatNet({ family: 4, base: parseIP('10.10.0.0').value + BigInt(i) * 4096n, prefix: 20 })));
    const p = pickSubnet(seed, taken);
    expect(p.sn.prefix).toBe(20);
    expect(netContains(parseNet('10.0.0.0/8'), { family: 4, value: p.sn.base })).toBe(true);
    expect(p.sn.base >= parseIP('10.10.0.0').value + 1400n * 4096n && p.sn.base <= parseIP('10.99.0.0').value).toBe(true);
  });
});
