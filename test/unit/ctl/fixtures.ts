// Leases and a healthy node snapshot for the flannelctl unit tests: h1 (this node, 10.10.0.0/20,
// 192.168.100.1) and h2 (10.10.16.0/20, 192.168.100.2) on vxlan VNI 100, everything programmed.
import { parseIP, parseNet } from '../../../shared/net/ip.js';
import type { Lease } from '../../../daemon/lease.js';
import { parseAndCheckConfig } from '../../../daemon/subnet/config.js';
import type { LeaseRow } from '../../../ctl/datastore.js';
import type { Facts } from '../../../ctl/doctor/facts.js';
import { parseSubnetEnv } from '../../../ctl/node.js';

export const NOW = Date.parse('2026-12-04T12:00:00Z');
export const MAC1 = '02:00:00:00:00:01';
export const MAC2 = '02:00:00:00:00:02';

export function vxlanLease(subnet: string, ip: string, mac: string, expiresInSec = 86_000): Lease {
  return {
    enableIPv4: true,
    enableIPv6: false,
    subnet: parseNet(subnet),
    attrs: { publicIP: parseIP(ip), backendType: 'vxlan', backendData: { VNI: 100, VtepMAC: mac } },
    expiration: NOW + expiresInSec * 1000,
  };
}

export const SUBNET_ENV = 'FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.10.0.1/20\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n';

/** A healthy h1: every check finds nothing. Tests break one thing in a copy. */
export function healthyFacts(): Facts {
  const me: LeaseRow = { lease: vxlanLease('10.10.0.0/20', '192.168.100.1', MAC1) };
  const peer: LeaseRow = { lease: vxlanLease('10.10.16.0/20', '192.168.100.2', MAC2) };
  return {
    now: NOW,
    subnetEnv: parseSubnetEnv('/t/subnet.env', SUBNET_ENV),
    config: parseAndCheckConfig('{"Network":"10.0.0.0/8","SubnetLen":20,"Backend":{"Type":"vxlan","VNI":100}}'),
    leases: [me, peer],
    me,
    meHow: '/t/subnet.env',
    links: [
      { name: 'eth0', index: 2, kind: 'veth', mtu: 1500, mac: '5e:00:00:00:00:01', up: true },
      { name: 'flannel.100', index: 3, kind: 'vxlan', mtu: 1450, mac: MAC1, up: true },
      { name: 'cni0', index: 4, kind: 'bridge', mtu: 1450, mac: '5e:00:00:00:00:04', up: true },
      { name: 'veth1', index: 5, kind: 'veth', mtu: 1450, mac: '5e:00:00:00:00:05', up: true, master: 'cni0' },
    ],
    addrs: [
      { dev: 'eth0', family: 4, cidr: '192.168.100.1/24', scope: 'global' },
      { dev: 'flannel.100', family: 4, cidr: '10.10.0.0/32', scope: 'global' },
      { dev: 'cni0', family: 4, cidr: '10.10.0.1/20', scope: 'global' },
    ],
    routes: [{ family: 4, dst: '10.10.16.0/20', via: '10.10.16.0', dev: 'flannel.100', onlink: true }],
    vxlan: {
      dev: 'flannel.100',
      port: 8472,
      routes: [{ family: 4, dst: '10.10.16.0/20', via: '10.10.16.0', onlink: true }],
      neighs: [{ dev: 'flannel.100', ip: '10.10.16.0', mac: MAC2, permanent: true }],
      fdb: [{ dev: 'flannel.100', mac: MAC2, dst: '192.168.100.2', self: true, permanent: true }],
    },
    sysctl: { ipForward: '1', brNfCallIptables: '1' },
    forward: { policy: 'ACCEPT', ourRules: true },
    probes: [{ subnet: '10.10.16.0/20', publicIP: '192.168.100.2', target: '10.10.16.0', ok: true }],
    offload: { kernelRelease: '6.1.0', ethtool: false },
    cni: {
      confDir: '/t/net.d',
      files: [{ name: '10-flannel.conflist', text: '{"name":"cbr0","cniVersion":"1.0.0","plugins":[{"type":"flannel","delegate":{"isDefaultGateway":true}},{"type":"portmap"}]}' }],
      binDirs: ['/t/bin'],
      executables: new Set(['flannel', 'bridge', 'host-local', 'portmap', 'loopback']),
    },
  };
}
