import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { formatNet, parseNet } from '../../../../shared/net/ip.js';
import { formatSubnetFile, parseCIDRList, readPreviousSubnets, writeSubnetFile } from '../../../../daemon/subnet/subnet-file.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'subnet-file-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('subnet.env', () => {
  it('has the exact lines of Go, in order (dual stack)', () => {
    expect(
      formatSubnetFile({
        network: parseNet('10.42.0.0/16'),
        subnet: parseNet('10.42.0.0/24'),
        ipv6Network: parseNet('2001:cafe:42::/56'),
        ipv6Subnet: parseNet('2001:cafe:42::/64'),
        mtu: 1450,
        ipMasq: true,
      }),
    ).toBe(
      'FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
    );
  });

  it('v4 only, ipmasq false', () => {
    expect(formatSubnetFile({ network: parseNet('10.0.0.0/8'), subnet: parseNet('10.10.16.0/20'), mtu: 1500, ipMasq: false })).toBe(
      'FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.10.16.1/20\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n',
    );
  });

  it('is written atomically with mode 0644 whatever the umask, creating the directory', async () => {
    const d = tmp();
    const p = join(d, 'run', 'flannel', 'subnet.env');
    const old = process.umask(0o077);
    try {
      await writeSubnetFile(p, { network: parseNet('10.0.0.0/8'), subnet: parseNet('10.10.16.0/20'), mtu: 1450, ipMasq: false });
      await writeSubnetFile(p, { network: parseNet('10.0.0.0/8'), subnet: parseNet('10.10.32.0/20'), mtu: 1450, ipMasq: false });
    } finally {
      process.umask(old);
    }
    expect(statSync(p).mode & 0o777).toBe(0o644);
    expect(readFileSync(p, 'utf8')).toContain('FLANNEL_SUBNET=10.10.32.1/20');
    expect(readdirSync(join(d, 'run', 'flannel'))).toEqual(['subnet.env']); // no temp files left
  });

  it('reads the previous subnet back, masked', async () => {
    const d = tmp();
    const p = join(d, 'subnet.env');
    writeFileSync(p, 'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.72.1/24\nFLANNEL_IPV6_SUBNET="fd00:5:72::1/64"\nFLANNEL_MTU=1450\n');
    const prev = await readPreviousSubnets(p);
    expect(formatNet(prev.subnet!)).toBe('10.5.72.0/24');
    expect(formatNet(prev.network!)).toBe('10.5.0.0/16');
    expect(formatNet(prev.ipv6Subnet!)).toBe('fd00:5:72::/64');
    expect(await readPreviousSubnets(join(d, 'missing'))).toEqual({});
  });

  it('main_test: comma lists keep valid CIDRs; more than one valid entry counts as none', async () => {
    expect(parseCIDRList('10.244.1.0/24,not-a-cidr,10.244.2.0/24').map(formatNet)).toEqual(['10.244.1.0/24', '10.244.2.0/24']);
    expect(parseCIDRList('not-a-cidr')).toEqual([]);
    const d = tmp();
    const p = join(d, 'subnet.env');
    writeFileSync(p, 'FLANNEL_SUBNET=10.244.1.0/24,not-a-cidr,10.244.2.0/24\nFLANNEL_IPV6_SUBNET=bad\n');
    expect(await readPreviousSubnets(p)).toEqual({});
  });
});
