// IPv6 on the real kernel: two dual-stack hosts on one underlay (v4 and v6 addresses on eth0), each
// with flannel.100 and flannel-v6.100; a peer's IPv6 subnet is programmed on flannel-v6.100
// (neighbour, FDB entry to its PublicIPv6, onlink route) and pods talk over VXLAN on an IPv6 underlay.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns, cleanupNetns, type Netns } from '../../helpers/netns.js';
import { createHost, createPod, createUnderlay, peerLease, ping, startFlannel, txPackets, type Flannel } from './hosts.js';
import { until } from '../../helpers/until.js';

interface Host {
  ns: Netns;
  pod: Netns;
  flannel: Flannel;
  i: number;
}

describe.skipIf(!canUseNetns)('vxlan backend, IPv6 (flannel-v6.<VNI>)', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'vxlan-v6-'));
  const hosts: Host[] = [];
  const SUBNETS = { 1: ['10.10.16.0/20', 'fd00:10:16::/64'], 2: ['10.10.32.0/20', 'fd00:10:32::/64'] } as const;

  const options = (i: 1 | 2) => ({
    subnet: SUBNETS[i][0],
    ipv6Subnet: SUBNETS[i][1],
    enableIPv6: true,
    network: '10.10.0.0/16',
    stateDir: join(stateDir, `h${i}`),
  });
  const lease = (h: Host) =>
    peerLease({
      subnet: SUBNETS[h.i as 1 | 2][0],
      ipv6Subnet: SUBNETS[h.i as 1 | 2][1],
      publicIP: `192.168.77.${h.i}`,
      publicIPv6: `fd00:77::${h.i}`,
      mac: h.flannel.mac!,
      mac6: h.flannel.mac6!,
    });

  beforeAll(async () => {
    const ul = createUnderlay();
    for (const i of [1, 2] as const) {
      const ns = createHost(ul, { cidr: `192.168.77.${i}/24`, cidr6: `fd00:77::${i}/64` });
      const [subnet, ipv6Subnet] = SUBNETS[i];
      const flannel = await startFlannel(ns, options(i));
      const pod = createPod(ns, {
        gateway: subnet.replace('.0/', '.1/'),
        cidr: subnet.replace('.0/', '.2/'),
        gateway6: ipv6Subnet.replace('::/', '::1/'),
        cidr6: ipv6Subnet.replace('::/', '::2/'),
      });
      hosts.push({ ns, pod, flannel, i });
    }
    const [h1, h2] = hosts as [Host, Host];
    h1.flannel.manager.push([{ type: 'added', lease: lease(h2) }]);
    h2.flannel.manager.push([{ type: 'added', lease: lease(h1) }]);
  });

  afterAll(async () => {
    await Promise.allSettled(hosts.map((h) => h.flannel.stop()));
    cleanupNetns();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('creates flannel-v6.100 with MTU underlay − 70, the v6 local address and the /128', () => {
    const [h1] = hosts as [Host];
    const d = h1.ns.exec(['ip', '-d', 'link', 'show', 'flannel-v6.100']).stdout;
    expect(d).toMatch(/mtu 1430 /);
    expect(d).toMatch(/vxlan id 100 local fd00:77::1 dev eth0 .*dstport 8472 nolearning/);
    expect(d).toContain(`link/ether ${h1.flannel.mac6}`);
    expect(h1.flannel.mac6).not.toBe(h1.flannel.mac);
    expect(h1.ns.exec(['ip', '-6', 'addr', 'show', 'dev', 'flannel-v6.100', 'scope', 'global']).stdout).toMatch(/inet6 fd00:10:16::\/128/);
    // v4 is unchanged next to it
    expect(h1.ns.exec(['ip', 'link', 'show', 'flannel.100']).stdout).toMatch(/mtu 1450 /);
  });

  it('programs the peer v6 subnet on flannel-v6.100: neighbour, FDB to its PublicIPv6, onlink route', async () => {
    const [h1, h2] = hosts as [Host, Host];
    await until(() => h1.ns.exec(['ip', '-6', 'route', 'show', 'dev', 'flannel-v6.100']).stdout.includes('fd00:10:32::/64'), 'h1: route fd00:10:32::/64 on flannel-v6.100 present');
    expect(h1.ns.exec(['ip', '-6', 'route', 'show', 'dev', 'flannel-v6.100']).stdout).toMatch(/fd00:10:32::\/64 via fd00:10:32:: .*onlink/);
    expect(h1.ns.exec(['ip', '-6', 'neigh', 'show', 'dev', 'flannel-v6.100']).stdout).toMatch(new RegExp(`fd00:10:32:: lladdr ${h2.flannel.mac6} PERMANENT`));
    expect(h1.ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel-v6.100']).stdout).toMatch(new RegExp(`${h2.flannel.mac6} dst fd00:77::2 self permanent`));
    // and the v4 half on flannel.100 only
    expect(h1.ns.exec(['ip', 'route', 'show', 'dev', 'flannel.100']).stdout).toMatch(/10\.10\.32\.0\/20 via 10\.10\.32\.0 onlink/);
    expect(h1.ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout).toMatch(new RegExp(`${h2.flannel.mac} dst 192\\.168\\.77\\.2 self permanent`));
    expect(h1.ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout).not.toContain('fd00:77::2');
  });

  it('carries IPv6 pod-to-pod and host-to-host traffic over flannel-v6.100', async () => {
    const [h1, h2] = hosts as [Host, Host];
    const tx = txPackets(h1.ns, 'flannel-v6.100');
    await until(() => ping(h1.pod, 'fd00:10:32::2'), "ping(h1.pod, 'fd00:10:32::2')");
    expect(ping(h2.pod, 'fd00:10:16::2')).toBe(true);
    expect(txPackets(h1.ns, 'flannel-v6.100')).toBeGreaterThan(tx);
    // the /128s are usable once DAD is done
    await until(() => ping(h1.ns, 'fd00:10:32::', 'fd00:10:16::'), "ping(h1.ns, 'fd00:10:32::', 'fd00:10:16::')");
  });

  it('still carries IPv4 over flannel.100', async () => {
    const [h1, h2] = hosts as [Host, Host];
    await until(() => ping(h1.pod, '10.10.32.2'), "ping(h1.pod, '10.10.32.2')");
    expect(ping(h2.pod, '10.10.16.2')).toBe(true);
  });

  it('removes the v6 entries of a removed peer with the v4 ones', async () => {
    const [h1] = hosts as [Host];
    const gone = peerLease({ subnet: '10.10.48.0/20', ipv6Subnet: 'fd00:10:48::/64', publicIP: '192.168.77.9', publicIPv6: 'fd00:77::9', mac: '0a:00:00:00:00:09', mac6: '0a:00:00:00:06:09' });
    h1.flannel.manager.push([{ type: 'added', lease: gone }]);
    await until(() => h1.ns.exec(['ip', '-6', 'route', 'show', 'dev', 'flannel-v6.100']).stdout.includes('fd00:10:48::/64'), 'h1: route fd00:10:48::/64 on flannel-v6.100 present');
    h1.flannel.manager.push([{ type: 'removed', lease: gone }]);
    await until(() => !h1.ns.exec(['ip', '-6', 'route', 'show', 'dev', 'flannel-v6.100']).stdout.includes('fd00:10:48::/64'), 'h1: route fd00:10:48::/64 on flannel-v6.100 gone');
    expect(h1.ns.exec(['ip', '-6', 'neigh', 'show', 'dev', 'flannel-v6.100']).stdout).not.toContain('fd00:10:48::');
    expect(h1.ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel-v6.100']).stdout).not.toContain('0a:00:00:00:06:09');
    expect(h1.ns.exec(['ip', 'route', 'show', 'dev', 'flannel.100']).stdout).not.toContain('10.10.48.0/20');
    expect(ping(h1.pod, 'fd00:10:32::2')).toBe(true);
  });

  it('a restart removes the v4 and v6 entries of a lease deleted while it was down', async () => {
    const [h1, h2] = hosts as [Host, Host];
    const gone = peerLease({ subnet: '10.10.64.0/20', ipv6Subnet: 'fd00:10:64::/64', publicIP: '192.168.77.11', publicIPv6: 'fd00:77::11', mac: '0a:00:00:00:00:11', mac6: '0a:00:00:00:06:11' });
    h1.flannel.manager.push([{ type: 'added', lease: gone }]);
    await until(() => h1.ns.exec(['ip', '-6', 'route', 'show', 'dev', 'flannel-v6.100']).stdout.includes('fd00:10:64::/64'), 'h1: route fd00:10:64::/64 on flannel-v6.100 present');
    await h1.flannel.stop();
    h1.flannel = await startFlannel(h1.ns, options(1));
    h1.flannel.manager.push([{ type: 'added', lease: lease(h2) }]);
    await until(() => h1.flannel.logs.some((l) => /^removed \d+ stale entries/.test(l)), 'a "removed N stale entries" line in h1.flannel.logs');
    expect(h1.flannel.logs.join('\n')).toMatch(/removed 6 stale entries/);
    expect(h1.flannel.logs.join('\n')).not.toMatch(/one by one/);
    const v6 = [
      h1.ns.exec(['ip', '-6', 'route', 'show', 'dev', 'flannel-v6.100']).stdout,
      h1.ns.exec(['ip', '-6', 'neigh', 'show', 'dev', 'flannel-v6.100']).stdout,
      h1.ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel-v6.100']).stdout,
    ].join('');
    expect(v6).not.toMatch(/fd00:10:64::|0a:00:00:00:06:11/);
    expect(v6).toMatch(/fd00:10:32::\/64 via fd00:10:32::/);
    expect(v6).toContain(`${h2.flannel.mac6} dst fd00:77::2 self permanent`);
    // kernel-made entries on flannel-v6.100 (link-local and prefix routes) are not flannel's
    expect(h1.ns.exec(['ip', '-6', 'route', 'show', 'dev', 'flannel-v6.100']).stdout).toMatch(/fe80::\/64/);
    expect(h1.ns.exec(['ip', 'route', 'show', 'dev', 'flannel.100']).stdout).not.toContain('10.10.64.0/20');
    expect(ping(h1.pod, 'fd00:10:32::2')).toBe(true);
    expect(ping(h1.pod, '10.10.32.2')).toBe(true);
  });
});
