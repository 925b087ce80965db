// The doctor's checks: each a small function from the node's snapshot (facts.ts) to the problems it
// finds, each problem one line with its first fix. They are independent: every check runs, whatever
// another found, so one run lists everything that is wrong.
import { field } from '../../shared/go/json.js';
import { formatIP, formatNet, netContains, netEqual, netIP, tryParseCIDR } from '../../shared/net/ip.js';
import { normalizeMac } from '../../shared/net/mac.js';
import { describeOp, leaseNeighbor, staleOps } from '../../daemon/backend/vxlan/ops.js';
import type { Neighbor } from '../../daemon/backend/vxlan/device.js';
import { KERNEL_DEFAULT_VXLAN_PORT } from '../../daemon/backend/vxlan/device.js';
import type { Link, Route } from '../../shared/kernel/kernel.js';
import type { LeaseRow } from '../datastore.js';
import { backendKey } from '../leases.js';
import type { Facts, Problem } from './facts.js';

/** The vxlan header and outer headers flanneld takes off the underlay MTU (Go's encapOverhead). */
export const VXLAN_OVERHEAD = 50;

export type Check = (f: Facts) => Problem[];

/** The vxlan settings of the network config: VNI (default 1), UDP port (default the kernel's 8472). */
export function vxlanSettings(backend: Record<string, unknown>): { vni: number; port: number; dev: string } {
  const vni = Number(field(backend, 'VNI') ?? 1) || 1;
  const port = Number(field(backend, 'Port') ?? 0) || KERNEL_DEFAULT_VXLAN_PORT;
  return { vni, port, dev: `flannel.${vni}` };
}

const isVxlan = (f: Facts) => f.config?.backendType === 'vxlan';
const leaseName = (r: LeaseRow) => `${r.lease.subnet ? formatNet(r.lease.subnet) : '?'} (${formatIP(r.lease.attrs.publicIP)}${r.node ? `, node ${r.node}` : ''})`;
const peers = (f: Facts) => f.leases.filter((r) => r !== f.me);

/** A route in `routes` for exactly `dst`. */
function routeTo(routes: readonly Route[], dst: string): Route | undefined {
  return routes.find((r) => {
    if (r.type !== undefined || (r.table ?? 254) !== 254) return false;
    const d = r.dst.includes('/') ? tryParseCIDR(r.dst)?.net : tryParseCIDR(`${r.dst}/${r.family === 6 ? 128 : 32}`)?.net;
    return d !== undefined && formatNet(d) === dst;
  });
}

/** The underlay link: the one holding the own lease's public IP. */
function underlay(f: Facts): Link | undefined {
  const ip = f.me ? formatIP(f.me.lease.attrs.publicIP) : undefined;
  const a = ip ? f.addrs.find((x) => x.cidr.split('/')[0] === ip) : undefined;
  return a ? f.links.find((l) => l.name === a.dev) : undefined;
}

/** subnet.env against the own lease and the network config. */
export const checkSubnetEnv: Check = (f) => {
  const out: Problem[] = [];
  const se = f.subnetEnv;
  const P = (problem: string, fix: string) => out.push({ check: 'subnet-env', problem, fix });
  if (se.error !== undefined) {
    P(`${se.path} cannot be read (${se.error}): the flannel CNI plugin fails every pod ADD`, `start flanneld (it writes the file once it holds a lease) and check its log; pass --subnet-file if flanneld writes it elsewhere`);
    return out;
  }
  if (!se.subnet) P(`${se.path} has no valid FLANNEL_SUBNET`, 'restart flanneld: it rewrites the file');
  if (f.datastoreError !== undefined) return out;
  if (!f.me) {
    P(`no lease in the datastore belongs to this node (${f.meHow})`, 'check that flanneld runs on this node and its log for "failed to acquire lease"; pass --node-name or --public-ip if this node is not recognised');
    return out;
  }
  const own = f.me.lease;
  if (se.subnet && own.subnet && !netEqual(se.subnet, own.subnet)) {
    P(`FLANNEL_SUBNET ${formatNet(se.subnet)} in ${se.path} is not this node's lease ${formatNet(own.subnet)}`, 'restart flanneld so it rewrites subnet.env, then recreate the pods of the old subnet');
  }
  if (f.config?.network && se.network && !netEqual(se.network, f.config.network)) {
    P(`FLANNEL_NETWORK ${formatNet(se.network)} in ${se.path} differs from the network config's ${formatNet(f.config.network)}`, 'restart flanneld so it rewrites subnet.env');
  }
  return out;
};

/** The own lease: present and not expired. */
export const checkLease: Check = (f) => {
  if (f.datastoreError !== undefined) {
    return [{ check: 'lease', problem: `the datastore cannot be read: ${f.datastoreError}`, fix: 'check the --etcd-*/--kube* flags (the daemon\'s) and that the datastore is reachable from this node' }];
  }
  const l = f.me?.lease;
  if (!l || l.reservation || l.expiration <= 0 || l.expiration > f.now) return [];
  return [{ check: 'lease', problem: `this node's lease ${formatNet(l.subnet)} expired at ${new Date(l.expiration).toISOString()}`, fix: 'restart flanneld: it renews its lease while it runs' }];
};

/** The vxlan device: there, up, the lease's VtepMAC, the lease's address. */
export const checkDevice: Check = (f) => {
  if (!isVxlan(f) || !f.config) return [];
  const { dev } = vxlanSettings(f.config.backend);
  const P = (problem: string, fix: string): Problem => ({ check: 'device', problem, fix });
  const link = f.links.find((l) => l.name === dev);
  if (!link) return [P(`${dev} does not exist: no traffic to other hosts`, 'restart flanneld (it creates the device)')];
  const out: Problem[] = [];
  if (!link.up) out.push(P(`${dev} is down`, `ip link set ${dev} up`));
  const own = f.me?.lease;
  if (own) {
    const want = normalizeMac(backendKey(own));
    if (want && normalizeMac(link.mac) !== want) {
      out.push(P(`${dev} has MAC ${link.mac} but this node's lease advertises VtepMAC ${want}: peers send to a MAC nobody has`, 'restart flanneld: it updates the lease with the device\'s MAC'));
    }
    const addr = `${formatIP(netIP(own.subnet))}/32`;
    if (!f.addrs.some((a) => a.dev === dev && a.cidr === addr)) out.push(P(`${dev} lacks its address ${addr}`, `ip addr add ${addr} dev ${dev}`));
  }
  return out;
};

/** The kernel against the datastore: each peer's route, neighbour and FDB entry, and nothing stale. */
export const checkDrift: Check = (f) => {
  if (!f.config || f.datastoreError !== undefined) return [];
  const out: Problem[] = [];
  const P = (problem: string, fix: string) => out.push({ check: 'drift', problem, fix });
  const restart = 'restart flanneld (it re-programs every peer at start)';
  if (f.config.backendType === 'host-gw') {
    for (const r of peers(f)) {
      if (r.lease.attrs.backendType !== 'host-gw' || !r.lease.subnet) continue;
      const dst = formatNet(r.lease.subnet);
      const via = formatIP(r.lease.attrs.publicIP);
      const got = routeTo(f.routes, dst);
      if (!got) P(`no route to peer ${leaseName(r)}`, `${restart}, or: ip route replace ${dst} via ${via}`);
      else if (got.via !== via) P(`the route to peer ${leaseName(r)} goes via ${got.via ?? `dev ${got.dev ?? '?'}`}, not ${via}`, `ip route replace ${dst} via ${via}`);
    }
    return out;
  }
  if (!isVxlan(f) || !f.vxlan) return out;
  const { dev, routes, neighs, fdb } = f.vxlan;
  const keep: Neighbor[] = [];
  for (const r of peers(f)) {
    if (r.lease.attrs.backendType !== 'vxlan') continue;
    const n = leaseNeighbor(r.lease, 4);
    if (n === undefined) continue;
    if (typeof n === 'string') {
      P(`peer ${leaseName(r)} cannot be programmed: ${n}`, 'fix or delete that lease in the datastore');
      continue;
    }
    keep.push(n);
    const dst = formatNet(n.subnet);
    const gw = formatIP(netIP(n.subnet));
    const pub = formatIP(n.publicIP);
    const route = routeTo(routes, dst);
    if (!route) P(`no route to peer ${leaseName(r)} on ${dev}`, `${restart}, or: ip route replace ${dst} via ${gw} dev ${dev} onlink`);
    else if (route.via !== gw) P(`the route to peer ${leaseName(r)} goes via ${route.via ?? '?'}, not ${gw}`, `ip route replace ${dst} via ${gw} dev ${dev} onlink`);
    const neigh = neighs.find((x) => x.ip === gw);
    if (!neigh) P(`no neighbour entry for peer ${leaseName(r)}: ${gw} → ${n.mac} on ${dev}`, `${restart}, or: ip neigh replace ${gw} lladdr ${n.mac} dev ${dev} nud permanent`);
    else if (normalizeMac(neigh.mac) !== n.mac) P(`the neighbour entry ${gw} on ${dev} says ${neigh.mac}, the lease of peer ${leaseName(r)} says ${n.mac}`, `ip neigh replace ${gw} lladdr ${n.mac} dev ${dev} nud permanent`);
    const entries = fdb.filter((x) => normalizeMac(x.mac) === n.mac);
    if (!entries.some((x) => x.dst === pub)) {
      P(`no FDB entry for peer ${leaseName(r)}: ${n.mac} dst ${pub} on ${dev}`, `${restart}, or: bridge fdb replace ${n.mac} dev ${dev} dst ${pub} self permanent`);
    }
  }
  for (const op of staleOps({ name: dev, family: 4 }, keep, { routes, neighs, fdb })) {
    P(`stale ${describeOp(op)}: no lease in the datastore accounts for it`, `${restart}, or delete it by hand`);
  }
  return out;
};

/** The MTU chain: underlay → flannel device → cni0 → pod veths, and subnet.env's FLANNEL_MTU. */
export const checkMtu: Check = (f) => {
  const out: Problem[] = [];
  const P = (problem: string, fix: string) => out.push({ check: 'mtu', problem, fix });
  const ul = underlay(f);
  const envMtu = f.subnetEnv.mtu;
  let overlay: number | undefined = envMtu;
  if (isVxlan(f) && f.config) {
    const { dev } = vxlanSettings(f.config.backend);
    const link = f.links.find((l) => l.name === dev);
    if (link && ul && link.mtu > ul.mtu - VXLAN_OVERHEAD) {
      P(`${dev} has MTU ${link.mtu} but the underlay ${ul.name} (MTU ${ul.mtu}) leaves ${ul.mtu - VXLAN_OVERHEAD} after the ${VXLAN_OVERHEAD}-byte VXLAN encapsulation: large packets are dropped`, `ip link set ${dev} mtu ${ul.mtu - VXLAN_OVERHEAD}`);
    }
    if (link && envMtu !== undefined && envMtu !== link.mtu) {
      P(`FLANNEL_MTU=${envMtu} in ${f.subnetEnv.path} but ${dev} has MTU ${link.mtu}`, 'restart flanneld (it rewrites subnet.env), then recreate the pods so their interfaces get the right MTU');
    }
    if (link) overlay = Math.min(link.mtu, envMtu ?? link.mtu);
  } else if (ul && envMtu !== undefined && envMtu > ul.mtu) {
    P(`FLANNEL_MTU=${envMtu} in ${f.subnetEnv.path} is more than the underlay ${ul.name}'s MTU ${ul.mtu}`, 'restart flanneld (it rewrites subnet.env), then recreate the pods');
  }
  if (overlay === undefined) return out;
  // the CNI bridge: the bridge holding this node's gateway address (cni0 by default)
  const own = f.me?.lease.subnet ?? f.subnetEnv.subnet;
  const holdsGateway = (l: Link) =>
    own !== undefined && f.addrs.some((a) => a.dev === l.name && netContains(own, tryParseCIDR(a.cidr)?.ip ?? { family: 4, value: -1n }));
  const bridges = f.links.filter((l) => l.kind === 'bridge');
  const bridge = bridges.find(holdsGateway) ?? bridges.find((l) => l.name === 'cni0');
  if (!bridge) return out;
  if (bridge.mtu > overlay) P(`${bridge.name} has MTU ${bridge.mtu}, more than the overlay's ${overlay}`, `ip link set ${bridge.name} mtu ${overlay}, then recreate the pods`);
  for (const port of f.links.filter((l) => l.master === bridge.name && l.kind === 'veth')) {
    if (port.mtu > overlay) P(`pod interface ${port.name} on ${bridge.name} has MTU ${port.mtu}, more than the overlay's ${overlay}`, `recreate that pod (its MTU comes from subnet.env at ADD), or ip link set ${port.name} mtu ${overlay} and the pod's eth0 likewise`);
  }
  return out;
};

/** Two leases with one PublicIP (the NAT-interface mistake) or one VtepMAC (a cloned image). */
export const checkDuplicates: Check = (f) => {
  const out: Problem[] = [];
  const group = (key: (r: LeaseRow) => string | undefined) => {
    const m = new Map<string, LeaseRow[]>();
    for (const r of f.leases) {
      const k = key(r);
      if (k !== undefined) m.set(k, [...(m.get(k) ?? []), r]);
    }
    return [...m].filter(([, rs]) => rs.length > 1);
  };
  const names = (rs: LeaseRow[]) => rs.map((r) => (r.lease.subnet ? formatNet(r.lease.subnet) : '?')).join(', ');
  for (const [ip, rs] of group((r) => (r.lease.attrs.publicIP.value === 0n ? undefined : formatIP(r.lease.attrs.publicIP)))) {
    out.push({ check: 'duplicates', problem: `leases ${names(rs)} share PublicIP ${ip}: their traffic goes to one host`, fix: 'give each node its own address (--iface, --iface-can-reach or --public-ip) and delete the stale lease' });
  }
  for (const [mac, rs] of group((r) => (r.lease.attrs.backendType === 'vxlan' ? normalizeMac(backendKey(r.lease)) : undefined))) {
    out.push({ check: 'duplicates', problem: `leases ${names(rs)} share VtepMAC ${mac}: peers keep one FDB entry per MAC`, fix: 'delete the stale lease, or remove <data-dir>/flannel.<VNI>.mac on the cloned node and restart its flanneld' });
  }
  return out;
};

/** Forwarding and bridge netfilter. */
export const checkSysctl: Check = (f) => {
  const out: Problem[] = [];
  if (f.sysctl.ipForward !== undefined && f.sysctl.ipForward !== '1') {
    out.push({ check: 'sysctl', problem: `net.ipv4.ip_forward is ${f.sysctl.ipForward}: this host does not route pod traffic`, fix: 'sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d/)' });
  }
  if (f.config?.enableIPv6 && f.sysctl.ip6Forward !== undefined && f.sysctl.ip6Forward !== '1') {
    out.push({ check: 'sysctl', problem: `net.ipv6.conf.all.forwarding is ${f.sysctl.ip6Forward}: this host does not route IPv6 pod traffic`, fix: 'sysctl -w net.ipv6.conf.all.forwarding=1' });
  }
  if (f.sysctl.brNfCallIptables === undefined) {
    out.push({ check: 'sysctl', problem: 'br_netfilter is not loaded (/proc/sys/net/bridge/bridge-nf-call-iptables is missing): Service traffic between pods on one bridge skips kube-proxy', fix: 'modprobe br_netfilter (and list it in /etc/modules-load.d/)' });
  } else if (f.sysctl.brNfCallIptables !== '1') {
    out.push({ check: 'sysctl', problem: `net.bridge.bridge-nf-call-iptables is ${f.sysctl.brNfCallIptables}`, fix: 'sysctl -w net.bridge.bridge-nf-call-iptables=1' });
  }
  return out;
};

/** FORWARD policy and our accept rules; our masquerade rules when subnet.env says FLANNEL_IPMASQ=true. */
export const checkForward: Check = (f) => {
  const out: Problem[] = [];
  const net = f.config?.network ? formatNet(f.config.network) : (f.subnetEnv.network ? formatNet(f.subnetEnv.network) : 'the pod network');
  if (f.forward?.error) out.push({ check: 'forward', problem: `cannot read the FORWARD chain: ${f.forward.error}`, fix: 'check that iptables works on this host (iptables -S FORWARD)' });
  else if (f.forward && f.forward.policy !== undefined && f.forward.policy !== 'ACCEPT' && !f.forward.ourRules) {
    out.push({ check: 'forward', problem: `the FORWARD policy is ${f.forward.policy} and flanneld's accept rules (FLANNEL-FWD for ${net}) are missing: pod traffic between hosts is dropped`, fix: `restart flanneld with --iptables-forward-rules=true (the default), or: iptables -A FORWARD -s ${net} -j ACCEPT; iptables -A FORWARD -d ${net} -j ACCEPT` });
  }
  if (f.masq && f.masq.error) out.push({ check: 'forward', problem: `cannot read the masquerade rules: ${f.masq.error}`, fix: 'check that iptables/nft works on this host' });
  else if (f.masq && !f.masq.present) {
    out.push({ check: 'forward', problem: `FLANNEL_IPMASQ=true but flanneld's masquerade rules are missing: pods cannot reach outside ${net}`, fix: 'restart flanneld (it re-creates them; they are resynced every --iptables-resync seconds while it runs)' });
  }
  return out;
};

/** The active probe of each vxlan peer (probe.ts). */
export const checkProbe: Check = (f) =>
  f.probes
    .filter((p) => !p.ok)
    .map((p) => ({
      check: 'probe',
      problem: `peer ${p.subnet} (${p.publicIP}) does not answer through VXLAN UDP ${f.vxlan?.port ?? KERNEL_DEFAULT_VXLAN_PORT}: ${p.detail ?? 'no reply'}`,
      fix: `allow UDP ${f.vxlan?.port ?? KERNEL_DEFAULT_VXLAN_PORT} between ${f.me ? formatIP(f.me.lease.attrs.publicIP) : 'this host'} and ${p.publicIP} (firewall, security group, hypervisor) and check flanneld on that peer`,
    }));

/** Kernels before this corrupt the VXLAN UDP checksum of SNATed (kube-proxy --random-fully) traffic with tx offload on. */
export const OFFLOAD_FIXED_KERNEL: readonly [number, number] = [5, 7];

export function kernelBefore(release: string, v: readonly [number, number]): boolean | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return undefined;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a < v[0] || (a === v[0] && b < v[1]);
}

/**
 * The checksum-offload hint of upstream's troubleshooting guide (section NAT; flannel#1279, #1243,
 * #2152): with tx-checksum-ip-generic on flannel.<VNI>, the VXLAN UDP checksum comes out wrong when
 * the node's public IP is behind NAT, and on kernels before 5.7 for SNATed traffic; the receiver
 * drops the packets ("UDP: bad checksum" in its dmesg), seen as pods that cannot talk or 63 s delays.
 * Reported when one of those conditions holds and the offload is on or cannot be read (no ethtool).
 */
export const checkOffload: Check = (f) => {
  if (!isVxlan(f) || !f.config) return [];
  const { dev } = vxlanSettings(f.config.backend);
  if (!f.links.some((l) => l.name === dev) || f.offload.txChecksumIpGeneric === false) return [];
  const why: string[] = [];
  if (kernelBefore(f.offload.kernelRelease, OFFLOAD_FIXED_KERNEL) === true) why.push(`kernel ${f.offload.kernelRelease} is older than ${OFFLOAD_FIXED_KERNEL.join('.')}`);
  const pub = f.me ? formatIP(f.me.lease.attrs.publicIP) : undefined;
  if (pub && !f.addrs.some((a) => a.cidr.split('/')[0] === pub)) why.push(`this node's PublicIP ${pub} is on no interface here (behind NAT)`);
  if (why.length === 0) return [];
  const state = f.offload.ethtool ? 'is on' : 'could not be read (ethtool is not installed)';
  return [
    {
      check: 'offload',
      problem: `${why.join(' and ')}, and tx-checksum-ip-generic on ${dev} ${state}: VXLAN packets may leave with a bad UDP checksum and be dropped by peers (pods cannot talk, 63 s delays)`,
      fix: `ethtool -K ${dev} tx-checksum-ip-generic off (and a udev rule to keep it, see flannel's troubleshooting guide, section NAT)`,
    },
  ];
};

/** Plugin types a flannel conflist needs: each plugin's type, and flannel's delegate (bridge) and IPAM (host-local). */
export function neededPlugins(conf: unknown): string[] {
  const c = conf as { type?: unknown; plugins?: unknown[] };
  const plugins = (Array.isArray(c.plugins) ? c.plugins : [c]) as Array<Record<string, unknown>>;
  const out = new Set<string>();
  for (const p of plugins) {
    if (typeof p.type !== 'string') continue;
    out.add(p.type);
    if (p.type === 'flannel') {
      const d = (p.delegate ?? {}) as Record<string, unknown>;
      out.add(typeof d.type === 'string' ? d.type : 'bridge');
      const ipam = (p.ipam ?? d.ipam ?? {}) as Record<string, unknown>;
      out.add(typeof ipam.type === 'string' ? ipam.type : 'host-local');
    }
  }
  return [...out];
}

/** The runtime's view: the first network config is flannel's, and every plugin it needs is installed. */
export const checkCni: Check = (f) => {
  const c = f.cni;
  const P = (problem: string, fix: string): Problem => ({ check: 'cni', problem, fix });
  if (c.files.length === 0) return [P(`no CNI network config in ${c.confDir}: the runtime cannot start pods`, `install flannel's conflist (e.g. 10-flannel.conflist) into ${c.confDir} (kube-flannel's install-cni does this), or pass --cni-conf-dir`)];
  const first = c.files[0]!;
  let conf: unknown;
  try {
    if (first.error !== undefined) throw new Error(first.error);
    conf = JSON.parse(first.text ?? '');
  } catch (err) {
    return [P(`${c.confDir}/${first.name} (the config the runtime uses, first by name) is not valid JSON: ${(err as Error).message}`, `fix or replace ${c.confDir}/${first.name}`)];
  }
  const types = neededPlugins(conf);
  const out: Problem[] = [];
  if (!types.includes('flannel')) out.push(P(`the runtime uses ${c.confDir}/${first.name} (first by name), which does not call flannel`, `rename flannel's conflist to sort first (10-flannel.conflist) or remove ${first.name}`));
  for (const t of types) {
    if (!c.executables.has(t)) out.push(P(`CNI plugin ${t} (needed by ${first.name}) is not in ${c.binDirs.join(':')}`, `install the ${t} plugin into ${c.binDirs[0] ?? '/opt/cni/bin'}, or pass --cni-bin-dir`));
  }
  return out;
};

export const CHECKS: ReadonlyArray<readonly [string, Check]> = [
  ['subnet-env', checkSubnetEnv],
  ['lease', checkLease],
  ['device', checkDevice],
  ['drift', checkDrift],
  ['mtu', checkMtu],
  ['duplicates', checkDuplicates],
  ['sysctl', checkSysctl],
  ['forward', checkForward],
  ['probe', checkProbe],
  ['offload', checkOffload],
  ['cni', checkCni],
];

/** Every check not skipped, each one even when another throws (a bug there is one more problem line). */
export function runChecks(f: Facts, skip: ReadonlySet<string> = new Set()): Problem[] {
  const out: Problem[] = [];
  for (const [name, check] of CHECKS) {
    if (skip.has(name)) continue;
    try {
      out.push(...check(f));
    } catch (err) {
      out.push({ check: name, problem: `the check failed: ${(err as Error).message}`, fix: 'report this as a flannelctl bug' });
    }
  }
  return out;
}

