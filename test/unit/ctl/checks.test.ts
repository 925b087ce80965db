// The doctor's checks against a healthy snapshot broken one way at a time: each gives its line.
import { describe, expect, it } from 'vitest';
import { CHECKS, kernelBefore, neededPlugins, runChecks, vxlanSettings } from '../../../ctl/doctor/checks.js';
import { formatProblem, type Facts } from '../../../ctl/doctor/facts.js';
import { parseAndCheckConfig } from '../../../daemon/subnet/config.js';
import { parseSubnetEnv } from '../../../ctl/node.js';
import { healthyFacts, MAC2, NOW, SUBNET_ENV, vxlanLease } from './fixtures.js';

const lines = (f: Facts, skip: string[] = []) => runChecks(f, new Set(skip)).map(formatProblem);
const only = (f: Facts, check: string) => runChecks(f, new Set(CHECKS.map(([n]) => n).filter((n) => n !== check))).map(formatProblem);

describe('doctor checks', () => {
  it('a healthy node has no problem', () => {
    expect(lines(healthyFacts())).toEqual([]);
  });

  it('subnet-env: missing file, a subnet that is not the lease, a network that is not the config, no own lease', () => {
    const f = healthyFacts();
    f.subnetEnv = { path: '/t/subnet.env', error: 'no such file' };
    expect(only(f, 'subnet-env')).toEqual([
      'subnet-env: /t/subnet.env cannot be read (no such file): the flannel CNI plugin fails every pod ADD; fix: start flanneld (it writes the file once it holds a lease) and check its log; pass --subnet-file if flanneld writes it elsewhere',
    ]);
    const g = healthyFacts();
    g.subnetEnv = parseSubnetEnv('/t/subnet.env', SUBNET_ENV.replace('10.10.0.1/20', '10.20.0.1/20').replace('10.0.0.0/8', '10.0.0.0/9'));
    expect(only(g, 'subnet-env')).toEqual([
      "subnet-env: FLANNEL_SUBNET 10.20.0.0/20 in /t/subnet.env is not this node's lease 10.10.0.0/20; fix: restart flanneld so it rewrites subnet.env, then recreate the pods of the old subnet",
      "subnet-env: FLANNEL_NETWORK 10.0.0.0/9 in /t/subnet.env differs from the network config's 10.0.0.0/8; fix: restart flanneld so it rewrites subnet.env",
    ]);
    const h = healthyFacts();
    delete h.me;
    h.meHow = 'none matches';
    expect(only(h, 'subnet-env')[0]).toMatch(/^subnet-env: no lease in the datastore belongs to this node \(none matches\); fix: /);
  });

  it('lease: an unreadable datastore, an expired own lease; a reservation never expires', () => {
    const f = healthyFacts();
    f.datastoreError = 'connect ECONNREFUSED';
    expect(only(f, 'lease')).toEqual([
      "lease: the datastore cannot be read: connect ECONNREFUSED; fix: check the --etcd-*/--kube* flags (the daemon's) and that the datastore is reachable from this node",
    ]);
    const g = healthyFacts();
    g.me!.lease.expiration = NOW - 1000;
    expect(only(g, 'lease')).toEqual([`lease: this node's lease 10.10.0.0/20 expired at ${new Date(NOW - 1000).toISOString()}; fix: restart flanneld: it renews its lease while it runs`]);
    g.me!.lease.reservation = true;
    expect(only(g, 'lease')).toEqual([]);
  });

  it('device: missing, down, another MAC than the lease, no address', () => {
    const f = healthyFacts();
    f.links = f.links.filter((l) => l.name !== 'flannel.100');
    expect(only(f, 'device')).toEqual(['device: flannel.100 does not exist: no traffic to other hosts; fix: restart flanneld (it creates the device)']);
    const g = healthyFacts();
    const dev = g.links.find((l) => l.name === 'flannel.100')!;
    dev.up = false;
    dev.mac = '02:00:00:00:00:99';
    g.addrs = g.addrs.filter((a) => a.dev !== 'flannel.100');
    expect(only(g, 'device')).toEqual([
      'device: flannel.100 is down; fix: ip link set flannel.100 up',
      "device: flannel.100 has MAC 02:00:00:00:00:99 but this node's lease advertises VtepMAC 02:00:00:00:00:01: peers send to a MAC nobody has; fix: restart flanneld: it updates the lease with the device's MAC",
      'device: flannel.100 lacks its address 10.10.0.0/32; fix: ip addr add 10.10.0.0/32 dev flannel.100',
    ]);
  });

  it('drift (vxlan): a missing route, neighbour and FDB entry, a wrong neighbour MAC, stale entries', () => {
    const f = healthyFacts();
    f.vxlan!.routes = [{ family: 4, dst: '10.10.48.0/20', via: '10.10.48.0', onlink: true }];
    f.vxlan!.neighs = [{ dev: 'flannel.100', ip: '10.10.16.0', mac: '02:00:00:00:00:77', permanent: true }];
    f.vxlan!.fdb = [{ dev: 'flannel.100', mac: MAC2, dst: '192.168.100.9', self: true, permanent: true }];
    const restart = 'restart flanneld (it re-programs every peer at start)';
    expect(only(f, 'drift')).toEqual([
      `drift: no route to peer 10.10.16.0/20 (192.168.100.2) on flannel.100; fix: ${restart}, or: ip route replace 10.10.16.0/20 via 10.10.16.0 dev flannel.100 onlink`,
      'drift: the neighbour entry 10.10.16.0 on flannel.100 says 02:00:00:00:00:77, the lease of peer 10.10.16.0/20 (192.168.100.2) says 02:00:00:00:00:02; fix: ip neigh replace 10.10.16.0 lladdr 02:00:00:00:00:02 dev flannel.100 nud permanent',
      `drift: no FDB entry for peer 10.10.16.0/20 (192.168.100.2): 02:00:00:00:00:02 dst 192.168.100.2 on flannel.100; fix: ${restart}, or: bridge fdb replace 02:00:00:00:00:02 dev flannel.100 dst 192.168.100.2 self permanent`,
      `drift: stale route 10.10.48.0/20 dev flannel.100: no lease in the datastore accounts for it; fix: ${restart}, or delete it by hand`,
      `drift: stale fdb 02:00:00:00:00:02 dst 192.168.100.9 dev flannel.100: no lease in the datastore accounts for it; fix: ${restart}, or delete it by hand`,
    ]);
  });

  it('drift (host-gw): a missing route and one through the wrong gateway', () => {
    const f = healthyFacts();
    f.config = parseAndCheckConfig('{"Network":"10.0.0.0/8","SubnetLen":20,"Backend":{"Type":"host-gw"}}');
    const hg = (subnet: string, ip: string) => ({ lease: { ...vxlanLease(subnet, ip, MAC2), attrs: { publicIP: vxlanLease(subnet, ip, MAC2).attrs.publicIP, backendType: 'host-gw' } } });
    f.leases = [f.me!, hg('10.10.16.0/20', '192.168.100.2'), hg('10.10.32.0/20', '192.168.100.3')];
    f.routes = [{ family: 4, dst: '10.10.32.0/20', via: '192.168.100.9', dev: 'eth0' }];
    expect(only(f, 'drift')).toEqual([
      'drift: no route to peer 10.10.16.0/20 (192.168.100.2); fix: restart flanneld (it re-programs every peer at start), or: ip route replace 10.10.16.0/20 via 192.168.100.2',
      'drift: the route to peer 10.10.32.0/20 (192.168.100.3) goes via 192.168.100.9, not 192.168.100.3; fix: ip route replace 10.10.32.0/20 via 192.168.100.3',
    ]);
  });

  it('mtu: the device above the underlay minus VXLAN, subnet.env disagreeing, cni0 and a pod veth above the overlay', () => {
    const f = healthyFacts();
    f.links.find((l) => l.name === 'eth0')!.mtu = 1400;
    f.links.find((l) => l.name === 'cni0')!.mtu = 1500;
    f.links.find((l) => l.name === 'veth1')!.mtu = 9000;
    expect(only(f, 'mtu')).toEqual([
      'mtu: flannel.100 has MTU 1450 but the underlay eth0 (MTU 1400) leaves 1350 after the 50-byte VXLAN encapsulation: large packets are dropped; fix: ip link set flannel.100 mtu 1350',
      "mtu: cni0 has MTU 1500, more than the overlay's 1450; fix: ip link set cni0 mtu 1450, then recreate the pods",
      "mtu: pod interface veth1 on cni0 has MTU 9000, more than the overlay's 1450; fix: recreate that pod (its MTU comes from subnet.env at ADD), or ip link set veth1 mtu 1450 and the pod's eth0 likewise",
    ]);
    const g = healthyFacts();
    g.subnetEnv.mtu = 1500;
    expect(only(g, 'mtu')).toEqual(['mtu: FLANNEL_MTU=1500 in /t/subnet.env but flannel.100 has MTU 1450; fix: restart flanneld (it rewrites subnet.env), then recreate the pods so their interfaces get the right MTU']);
  });

  it('duplicates: one PublicIP or one VtepMAC in two leases', () => {
    const f = healthyFacts();
    f.leases.push({ lease: vxlanLease('10.10.32.0/20', '192.168.100.2', MAC2) });
    expect(only(f, 'duplicates')).toEqual([
      'duplicates: leases 10.10.16.0/20, 10.10.32.0/20 share PublicIP 192.168.100.2: their traffic goes to one host; fix: give each node its own address (--iface, --iface-can-reach or --public-ip) and delete the stale lease',
      'duplicates: leases 10.10.16.0/20, 10.10.32.0/20 share VtepMAC 02:00:00:00:00:02: peers keep one FDB entry per MAC; fix: delete the stale lease, or remove <data-dir>/flannel.<VNI>.mac on the cloned node and restart its flanneld',
    ]);
  });

  it('sysctl: ip_forward off, br_netfilter not loaded or off', () => {
    const f = healthyFacts();
    f.sysctl = { ipForward: '0' };
    expect(only(f, 'sysctl')).toEqual([
      'sysctl: net.ipv4.ip_forward is 0: this host does not route pod traffic; fix: sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d/)',
      'sysctl: br_netfilter is not loaded (/proc/sys/net/bridge/bridge-nf-call-iptables is missing): Service traffic between pods on one bridge skips kube-proxy; fix: modprobe br_netfilter (and list it in /etc/modules-load.d/)',
    ]);
    f.sysctl = { ipForward: '1', brNfCallIptables: '0' };
    expect(only(f, 'sysctl')).toEqual(['sysctl: net.bridge.bridge-nf-call-iptables is 0; fix: sysctl -w net.bridge.bridge-nf-call-iptables=1']);
  });

  it('forward: DROP without our rules is a problem, ACCEPT without them or DROP with them is not; missing masquerade', () => {
    const f = healthyFacts();
    f.forward = { policy: 'DROP', ourRules: true };
    expect(only(f, 'forward')).toEqual([]);
    f.forward = { policy: 'ACCEPT', ourRules: false };
    expect(only(f, 'forward')).toEqual([]);
    f.forward = { policy: 'DROP', ourRules: false };
    f.masq = { present: false };
    expect(only(f, 'forward')).toEqual([
      "forward: the FORWARD policy is DROP and flanneld's accept rules (FLANNEL-FWD for 10.0.0.0/8) are missing: pod traffic between hosts is dropped; fix: restart flanneld with --iptables-forward-rules=true (the default), or: iptables -A FORWARD -s 10.0.0.0/8 -j ACCEPT; iptables -A FORWARD -d 10.0.0.0/8 -j ACCEPT",
      'forward: FLANNEL_IPMASQ=true but flanneld\'s masquerade rules are missing: pods cannot reach outside 10.0.0.0/8; fix: restart flanneld (it re-creates them; they are resynced every --iptables-resync seconds while it runs)',
    ]);
  });

  it('probe: a failed peer is one line with what the UDP check found', () => {
    const f = healthyFacts();
    f.probes = [{ subnet: '10.10.16.0/20', publicIP: '192.168.100.2', target: '10.10.16.0', ok: false, detail: 'refused' }];
    expect(only(f, 'probe')).toEqual([
      'probe: peer 10.10.16.0/20 (192.168.100.2) does not answer through VXLAN UDP 8472: refused; fix: allow UDP 8472 between 192.168.100.1 and 192.168.100.2 (firewall, security group, hypervisor) and check flanneld on that peer',
    ]);
  });

  it('offload: the hint behind NAT or on kernels before 5.7, when the offload is on or unknown', () => {
    expect([kernelBefore('5.4.0-150-generic', [5, 7]), kernelBefore('5.7.0', [5, 7]), kernelBefore('4.19.1', [5, 7]), kernelBefore('6.18.44', [5, 7]), kernelBefore('x', [5, 7])]).toEqual([true, false, true, false, undefined]);
    const f = healthyFacts();
    f.offload = { kernelRelease: '5.4.0-150-generic', ethtool: true, txChecksumIpGeneric: true };
    expect(only(f, 'offload')).toEqual([
      "offload: kernel 5.4.0-150-generic is older than 5.7, and tx-checksum-ip-generic on flannel.100 is on: VXLAN packets may leave with a bad UDP checksum and be dropped by peers (pods cannot talk, 63 s delays); fix: ethtool -K flannel.100 tx-checksum-ip-generic off (and a udev rule to keep it, see flannel's troubleshooting guide, section NAT)",
    ]);
    f.offload = { kernelRelease: '6.8.0', ethtool: false };
    f.addrs = f.addrs.filter((a) => a.dev !== 'eth0'); // the lease's PublicIP 192.168.100.1 is a NAT address
    expect(only(f, 'offload')[0]).toMatch(/^offload: this node's PublicIP 192\.168\.100\.1 is on no interface here \(behind NAT\), and tx-checksum-ip-generic on flannel\.100 could not be read \(ethtool is not installed\): /);
    f.offload = { kernelRelease: '5.4.0', ethtool: true, txChecksumIpGeneric: false };
    expect(only(f, 'offload')).toEqual([]);
    const g = healthyFacts();
    g.offload = { kernelRelease: '6.1.0', ethtool: true, txChecksumIpGeneric: true };
    expect(only(g, 'offload')).toEqual([]);
  });

  it('cni: no config, invalid JSON, another network first, a missing plugin (flannel needs bridge and host-local)', () => {
    expect(neededPlugins({ plugins: [{ type: 'flannel', delegate: { type: 'ipvlan' } }, { type: 'portmap' }] })).toEqual(['flannel', 'ipvlan', 'host-local', 'portmap']);
    const f = healthyFacts();
    f.cni.files = [];
    expect(only(f, 'cni')).toEqual([
      "cni: no CNI network config in /t/net.d: the runtime cannot start pods; fix: install flannel's conflist (e.g. 10-flannel.conflist) into /t/net.d (kube-flannel's install-cni does this), or pass --cni-conf-dir",
    ]);
    f.cni.files = [{ name: '05-x.conf', text: '{' }];
    expect(only(f, 'cni')[0]).toMatch(/^cni: \/t\/net\.d\/05-x\.conf \(the config the runtime uses, first by name\) is not valid JSON: /);
    f.cni.files = [{ name: '05-x.conf', text: '{"type":"bridge"}' }];
    expect(only(f, 'cni')).toEqual([
      'cni: the runtime uses /t/net.d/05-x.conf (first by name), which does not call flannel; fix: rename flannel\'s conflist to sort first (10-flannel.conflist) or remove 05-x.conf',
    ]);
    const g = healthyFacts();
    g.cni.executables.delete('host-local');
    expect(only(g, 'cni')).toEqual(['cni: CNI plugin host-local (needed by 10-flannel.conflist) is not in /t/bin; fix: install the host-local plugin into /t/bin, or pass --cni-bin-dir']);
  });

  it('every check runs whatever the others found; --skip leaves one out', () => {
    const f = healthyFacts();
    f.sysctl.ipForward = '0';
    f.cni.files = [];
    f.vxlan!.fdb = [];
    expect(lines(f).map((l) => l.split(':')[0])).toEqual(['drift', 'sysctl', 'cni']);
    expect(lines(f, ['sysctl', 'drift']).map((l) => l.split(':')[0])).toEqual(['cni']);
  });

  it('vxlan settings: VNI 1 and the kernel port 8472 by default', () => {
    expect(vxlanSettings({ Type: 'vxlan' })).toEqual({ vni: 1, port: 8472, dev: 'flannel.1' });
    expect(vxlanSettings({ Type: 'vxlan', vni: 4096, Port: 4789 })).toEqual({ vni: 4096, port: 4789, dev: 'flannel.4096' });
  });
});
