// Shared topology for the vxlan integration tests: "hosts" are network namespaces whose eth0 hangs on
// an underlay bridge (or, through a router namespace, on a second L2 segment); each runs the vxlan
// backend with a FakeSubnetManager (leases handed over by the test, as etcd would), and may hold a
// "pod" namespace behind a cni0 bridge. Every namespace comes from test/helpers/netns.ts, so
// cleanupNetns() in afterAll removes all of them; nothing is created in the root namespace.
import { createKernel } from '../../../shared/kernel/iproute2/kernel.js';
import type { Kernel } from '../../../shared/kernel/kernel.js';
import { parseIP, parseNet } from '../../../shared/net/ip.js';
import { createVxlanBackend } from '../../../daemon/backend/vxlan/vxlan.js';
import type { VxlanNetwork } from '../../../daemon/backend/vxlan/network.js';
import type { Lease, LeaseEvent } from '../../../daemon/lease.js';
import { createNetns, type Netns } from '../../helpers/netns.js';
import { FakeSubnetManager, linesLogger } from '../../helpers/fake-subnet-manager.js';
import { until } from '../../helpers/until.js';

export const VNI = 100;

/** The underlay "switch": namespace `ul` with bridge br0. */
export function createUnderlay(): Netns {
  const ul = createNetns('ul');
  ul.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge']);
  ul.exec(['ip', 'link', 'set', 'br0', 'up']);
  return ul;
}

export interface HostNet {
  /** `192.168.77.1/24` */
  cidr: string;
  cidr6?: string;
  gateway?: string;
}

let portSeq = 0;

/** A host namespace whose eth0 is a port of br0 in `ul`, with the given underlay addresses. */
export function createHost(ul: Netns, net: HostNet): Netns {
  const ns = createNetns('h');
  const port = `ulp${++portSeq}`;
  ul.exec(['ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name]);
  ul.exec(['ip', 'link', 'set', port, 'master', 'br0', 'up']);
  configureEth0(ns, net);
  return ns;
}

export function configureEth0(ns: Netns, net: HostNet): void {
  ns.exec(['ip', 'addr', 'add', net.cidr, 'dev', 'eth0']);
  // nodad: the underlay v6 address must be usable at once (it is the VXLAN source)
  if (net.cidr6) ns.exec(['ip', 'addr', 'add', net.cidr6, 'dev', 'eth0', 'nodad']);
  ns.exec(['ip', 'link', 'set', 'eth0', 'up']);
  if (net.gateway) ns.exec(['ip', 'route', 'add', 'default', 'via', net.gateway]);
  ns.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  if (net.cidr6) ns.exec(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
}

export interface FlannelOptions {
  subnet: string;
  ipv6Subnet?: string;
  enableIPv4?: boolean;
  enableIPv6?: boolean;
  /** the flannel Network, as main.ts passes it (BackendNetworkConfig.network) */
  network?: string;
  backend?: Record<string, unknown>;
  stateDir: string;
}

/** One running vxlan backend in a host namespace ("flanneld"). */
export interface Flannel {
  kernel: Kernel;
  manager: FakeSubnetManager;
  nw: VxlanNetwork;
  logs: string[];
  /** VtepMAC of flannel.<VNI> / flannel-v6.<VNI> */
  mac?: string;
  mac6?: string;
  /** stops it as SIGTERM would: the event loop ends, kernel state stays */
  stop(): Promise<void>;
}

export async function startFlannel(ns: Netns, o: FlannelOptions): Promise<Flannel> {
  const kernel = createKernel().inNetns(ns.path);
  const manager = new FakeSubnetManager(o.subnet, o.ipv6Subnet);
  const eth0 = (await kernel.getLink('eth0'))!;
  const addrs = await kernel.listAddrs({ dev: 'eth0' });
  const v4 = addrs.find((a) => a.family === 4)?.cidr.split('/')[0];
  const v6 = addrs.find((a) => a.family === 6 && a.scope === 'global')?.cidr.split('/')[0];
  const enableIPv4 = o.enableIPv4 ?? true;
  const enableIPv6 = o.enableIPv6 ?? false;
  const logs: string[] = [];
  const backend = createVxlanBackend({
    subnetManager: manager,
    kernel,
    stateDir: o.stateDir,
    logger: linesLogger(logs),
    extIface: {
      iface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu },
      ...(v4 ? { ifaceAddr: parseIP(v4), extAddr: parseIP(v4) } : {}),
      ...(enableIPv6 && v6 ? { ifaceV6Addr: parseIP(v6), extV6Addr: parseIP(v6) } : {}),
    },
  });
  const ac = new AbortController();
  const nw = (await backend.registerNetwork(ac.signal, {
    enableIPv4,
    enableIPv6,
    backend: o.backend ?? { Type: 'vxlan', VNI },
    ...(o.network ? { network: parseNet(o.network) } : {}),
  })) as VxlanNetwork;
  nw.timing.pollInterval = 200;
  const run = nw.run(ac.signal);
  const attrs = manager.acquired[0]!;
  const f: Flannel = {
    kernel,
    manager,
    nw,
    logs,
    async stop() {
      ac.abort();
      await run;
    },
  };
  const mac = (attrs.backendData as { VtepMAC?: string } | undefined)?.VtepMAC;
  const mac6 = (attrs.backendV6Data as { VtepMAC?: string } | undefined)?.VtepMAC;
  if (mac) f.mac = mac;
  if (mac6) f.mac6 = mac6;
  return f;
}

/** Hands a host's fake subnet manager a batch and waits until its backend has applied it. */
export async function pushLeases(f: { manager: FakeSubnetManager; nw: { idle(): Promise<void> } }, batch: LeaseEvent[]): Promise<void> {
  f.manager.push(batch);
  await until(() => f.manager.queued === 0, 'manager.queued === 0', { ms: 5000 });
  await new Promise((r) => setTimeout(r, 0));
  await f.nw.idle();
}

/** The lease another host's flanneld holds, as it would be stored in etcd. */
export function peerLease(o: { subnet?: string; ipv6Subnet?: string; publicIP?: string; publicIPv6?: string; mac?: string; mac6?: string }): Lease {
  const lease: Lease = {
    enableIPv4: o.subnet !== undefined,
    enableIPv6: o.ipv6Subnet !== undefined,
    subnet: parseNet(o.subnet ?? '0.0.0.0/32'),
    attrs: { publicIP: parseIP(o.publicIP ?? '0.0.0.0'), backendType: 'vxlan' },
    expiration: Date.now() + 86_400_000,
  };
  if (o.mac) lease.attrs.backendData = { VNI, VtepMAC: o.mac };
  if (o.ipv6Subnet) lease.ipv6Subnet = parseNet(o.ipv6Subnet);
  if (o.publicIPv6) lease.attrs.publicIPv6 = parseIP(o.publicIPv6);
  if (o.mac6) lease.attrs.backendV6Data = { VNI, VtepMAC: o.mac6 };
  return lease;
}

export interface PodNet {
  /** cni0's address, e.g. `10.10.16.1/20` */
  gateway: string;
  /** the pod's address, e.g. `10.10.16.2/20` */
  cidr: string;
  gateway6?: string;
  cidr6?: string;
}

/** A pod namespace behind bridge cni0 in `host`, as the bridge plugin would set it up. */
export function createPod(host: Netns, net: PodNet): Netns {
  const pod = createNetns('pod');
  const ifname = `vp${++portSeq}`;
  if (host.exec(['ip', 'link', 'show', 'cni0'], { allowFail: true }).status !== 0) {
    host.exec(['ip', 'link', 'add', 'cni0', 'type', 'bridge']);
    host.exec(['ip', 'addr', 'add', net.gateway, 'dev', 'cni0']);
    if (net.gateway6) host.exec(['ip', 'addr', 'add', net.gateway6, 'dev', 'cni0', 'nodad']);
    host.exec(['ip', 'link', 'set', 'cni0', 'up']);
  }
  host.exec(['ip', 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name]);
  host.exec(['ip', 'link', 'set', ifname, 'master', 'cni0', 'up']);
  pod.exec(['ip', 'addr', 'add', net.cidr, 'dev', 'eth0']);
  if (net.cidr6) pod.exec(['ip', 'addr', 'add', net.cidr6, 'dev', 'eth0', 'nodad']);
  pod.exec(['ip', 'link', 'set', 'eth0', 'up']);
  pod.exec(['ip', 'route', 'add', 'default', 'via', net.gateway.split('/')[0]!]);
  if (net.gateway6) pod.exec(['ip', '-6', 'route', 'add', 'default', 'via', net.gateway6.split('/')[0]!]);
  return pod;
}

/** One echo request/reply (1 s timeout); `src` picks the source address (`-I`). */
export function ping(from: Netns, dst: string, src?: string): boolean {
  const argv = ['ping', ...(dst.includes(':') ? ['-6'] : []), '-c', '1', '-W', '1', ...(src ? ['-I', src] : []), dst];
  return from.exec(argv, { allowFail: true }).status === 0;
}

/** Packets a device has sent (`ip -s -j link`), to tell which path traffic took. */
export function txPackets(ns: Netns, dev: string): number {
  const [j] = JSON.parse(ns.exec(['ip', '-s', '-j', 'link', 'show', 'dev', dev]).stdout) as Array<{ stats64?: { tx?: { packets?: number } } }>;
  return j?.stats64?.tx?.packets ?? 0;
}

