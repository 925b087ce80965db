// The kernel behind one small interface.
//
// Plugins (bridge, loopback) and daemon backends never build `ip`/`bridge`/`iptables` argv themselves:
// they read with the verbs below and write with `batch(ops)`, a list of ops that reads like upstream's
// netlink calls (`netlink.RouteAdd`, `dev.AddFDB`). A network namespace is a property of the kernel
// handle: `inNetns(path)` returns the same verbs acting inside that namespace.
//
// Writes use replace/append semantics where a retry must be safe; strict creates (`addRoute`,
// `addBridge`, `addVxlan`) fail with EEXIST as netlink's do.
// The only error that leaves this layer is KernelError (errors.ts): callers decide on its `code`
// (`isNotFound(err)`, `isExists(err)`), never on its message.
//
// Adapters: iproute2/ (execs `ip`, `bridge`, `nsenter`) and fake/ (in memory, for unit tests). Another
// adapter (netlink) is a folder beside them that implements Kernel, sets KernelError.code, and passes
// test/unit/shared/kernel/contract.test.ts.
import type { Family } from '../net/ip.js';

export interface Link {
  name: string;
  index: number;
  /** `bridge`, `veth`, `vxlan`, `loopback`, ... (`link_info.info_kind`, or `loopback` for lo) */
  kind?: string;
  mtu: number;
  mac: string;
  up: boolean;
  /** name of the master device (bridge), if enslaved */
  master?: string;
  promisc?: boolean;
  /** vxlan attributes when kind === 'vxlan' */
  vxlan?: { vni: number; port: number; local?: string; learning: boolean; gbp: boolean; dev?: string };
  /** `operstate` as the kernel reports it: `UP`, `DOWN`, `UNKNOWN`, `LOWERLAYERDOWN`, ... */
  operstate?: string;
  /** ifindex of the peer (veth) or lower device (`link_index`) */
  peerIndex?: number;
  /** bridge attributes when kind === 'bridge' */
  bridge?: { vlanFiltering: boolean };
  /** bridge-port attributes when the link is enslaved to a bridge */
  port?: { hairpin: boolean; isolated: boolean };
}

export interface BridgeVlan {
  vid: number;
  pvid: boolean;
  untagged: boolean;
}

export interface Addr {
  dev: string;
  family: Family;
  /** `ip/prefix` with host bits, e.g. `10.244.1.1/24` */
  cidr: string;
  scope: string;
  /** IPv6 DAD still running / failed (only set when true) */
  tentative?: boolean;
  dadfailed?: boolean;
}

/** A link together with its addresses (Kernel.inspect). */
export interface LinkAddrs extends Link {
  addrs: Addr[];
}

export interface RouteSpec {
  /** `default`, or a network `10.244.2.0/24` */
  dst: string;
  /** route type (`ip route add blackhole 10.0.0.0/8`); absent: unicast */
  type?: 'blackhole' | 'unreachable' | 'prohibit';
  via?: string;
  dev?: string;
  onlink?: boolean;
  src?: string;
  table?: number;
  scope?: 'global' | 'link' | 'host';
  metric?: number;
  mtu?: number;
  advmss?: number;
  proto?: string;
}

export interface Route extends RouteSpec {
  family: Family;
}

export interface Neigh {
  dev: string;
  ip: string;
  mac: string;
  permanent: boolean;
}

export interface Fdb {
  dev: string;
  mac: string;
  dst?: string;
  self: boolean;
  permanent: boolean;
}

/** One write in a batch; a batch runs in order in one namespace and stops at the first failure. */
export type KernelOp =
  | { op: 'replaceRoute'; route: RouteSpec }
  | { op: 'deleteRoute'; route: RouteSpec }
  | { op: 'replaceNeigh'; dev: string; ip: string; mac: string }
  | { op: 'deleteNeigh'; dev: string; ip: string }
  | { op: 'replaceFdb'; dev: string; mac: string; dst: string }
  | { op: 'appendFdb'; dev: string; mac: string; dst: string }
  | { op: 'deleteFdb'; dev: string; mac: string; dst?: string }
  | { op: 'replaceAddr'; dev: string; cidr: string }
  | { op: 'setLinkUp'; dev: string }
  // Added for the bridge plugin (one host-side and one pod-side batch per ADD):
  /** `ip link add <name> [mtu N] type bridge [vlan_filtering 1]`: fails with EEXIST if present */
  | { op: 'addBridge'; name: string; mtu?: number; vlanFiltering?: boolean }
  /** veth pair; the peer is created directly in `peerNetns` (a file path), never moved */
  | { op: 'addVeth'; name: string; peer: string; peerNetns?: string; mtu?: number; mac?: string; peerMac?: string }
  /** `ip link set`: any subset of the attributes, applied in one command */
  | { op: 'setLink'; dev: string; up?: boolean; master?: string; promisc?: boolean; mtu?: number; mac?: string }
  /** bridge-port flags (`type bridge_slave hairpin on isolated off`) */
  | { op: 'setBridgePort'; dev: string; hairpin?: boolean; isolated?: boolean }
  /** strict `ip addr add` (EEXIST fails) */
  | { op: 'addAddr'; dev: string; cidr: string }
  | { op: 'deleteAddr'; dev: string; cidr: string }
  /** strict `ip route add` (EEXIST fails, like netlink RouteAdd) */
  | { op: 'addRoute'; route: RouteSpec }
  /**
   * `ip route prepend`: create without exclusivity (netlink NLM_F_CREATE only, Go's RouteAddEcmp). Another
   * route to the same dst does not stop it; only an identical route fails (EEXIST).
   */
  | { op: 'prependRoute'; route: RouteSpec }
  /** strict `ip link add … type vxlan` (EEXIST fails); whether an existing device fits is the caller's call */
  | ({ op: 'addVxlan'; name: string } & VxlanSpec)
  /** strict `ip link add <name> type ipip local <local> [dev <dev>] [ttl N]` (flannel's `flannel.ipip`) */
  | { op: 'addIpip'; name: string; local: string; dev?: string; ttl?: number; mtu?: number }
  /** strict `ip link add <name> type wireguard` (kernel WireGuard; keys and peers are set through `wg`/UAPI) */
  | { op: 'addWireguard'; name: string; mtu?: number }
  | { op: 'deleteLink'; dev: string }
  /** write `/proc/sys/<key>` in the batch's namespace (key as in writeSysctl); `optional`: ignore failure (Go's `_, _ = sysctl.Sysctl`) */
  | { op: 'sysctl'; key: string; value: string; optional?: boolean }
  /** `bridge vlan add dev <dev> vid <vid>[-<vidEnd>] [pvid] [untagged] [self]` */
  | { op: 'addVlan'; dev: string; vid: number; vidEnd?: number; pvid?: boolean; untagged?: boolean; self?: boolean }
  | { op: 'deleteVlan'; dev: string; vid: number; vidEnd?: number; self?: boolean };

export interface VxlanSpec {
  vni: number;
  port: number;
  /** local (underlay) address; '' for none */
  local: string;
  /** underlay device */
  dev?: string;
  learning: boolean;
  gbp?: boolean;
  mtu?: number;
  mac?: string;
}

export interface Kernel {
  /** The same verbs, every command run inside the network namespace at `path` (a file path). */
  inNetns(path: string): Kernel;

  getLink(name: string): Promise<Link | undefined>;
  listLinks(): Promise<Link[]>;
  setLinkUp(name: string): Promise<void>;
  setLinkDown(name: string, o?: { missingOk?: boolean }): Promise<void>;
  setLinkMtu(name: string, mtu: number): Promise<void>;
  deleteLink(name: string, o?: { missingOk?: boolean }): Promise<void>;

  listAddrs(o?: { dev?: string; family?: Family }): Promise<Addr[]>;
  deleteAddr(dev: string, cidr: string, o?: { missingOk?: boolean }): Promise<void>;

  /** Routes of the main table (or `table`); with `type`, only routes of that type (`blackhole`). */
  listRoutes(o?: { family?: Family; dev?: string; table?: number; type?: RouteSpec['type'] }): Promise<Route[]>;
  /** `ip route get <dst>`: the route the kernel would take (used for --iface-can-reach). */
  routeGet(dst: string): Promise<Route & { prefsrc?: string }>;

  listNeighs(dev: string): Promise<Neigh[]>;
  listFdb(dev: string): Promise<Fdb[]>;

  /**
   * Applies `ops` in order, inside this handle's namespace, and stops at the first failure: the ops
   * before it are applied, the ones after it are not. The failure is a KernelError naming the op
   * (`err.op`) and its position (`err.index`; iproute2 cannot tell which of several sysctls in a row
   * failed), with the errno in `err.code`. A `sysctl` op with
   * `optional` never fails the batch (Go's `_, _ = sysctl.Sysctl`). An adapter may spend one round trip
   * on the whole list (iproute2: one exec; see its `stats.execs`); group ops of a kind together where
   * the order allows it, which lets it. One exception to "not applied": the netlink adapter sends a run of
   * consecutive independent route/neighbour/FDB writes in one datagram, and rtnetlink does not stop a
   * datagram at a failure, so writes after the failed one IN THAT RUN may have been applied (callers
   * that resume after `err.index`, as op-applier does, re-apply them idempotently).
   */
  batch(ops: readonly KernelOp[]): Promise<void>;

  /**
   * Keys are `/proc/sys`-relative, slash-separated (`net/ipv6/conf/cni0.100/accept_ra`, as Go's
   * sysctl package); a key without `/` is taken as dotted (`net.ipv4.ip_forward`).
   */
  readSysctl(key: string): Promise<string>;
  writeSysctl(key: string, value: string): Promise<void>;

  /**
   * Applies `ops` as `batch` does, then reads the named links with their addresses: writes and reads
   * in one call (iproute2: one `ip -json -batch -` exec when the ops are all `ip` ops). Without ops,
   * missing links are just absent from the map; with ops, a missing link fails like a failed op.
   */
  inspect(names: readonly string[], ops?: readonly KernelOp[]): Promise<Map<string, LinkAddrs>>;

  /**
   * Change notifications from the kernel (rtnetlink multicast: links, addresses, IPv4/IPv6 routes,
   * neighbours and FDB entries) in this handle's namespace, until `close()`. Coarse on purpose: a
   * watcher re-reads what it owns rather than trusting event payloads. `{ kind: 'resync' }` means
   * events were lost (receive-buffer overflow, ENOBUFS): re-read everything. Absent on adapters that
   * cannot watch (iproute2): callers rely on their periodic reconcile alone.
   */
  watch?(onEvent: (ev: KernelEvent) => void): { close(): void };
}

/** One kernel change (Kernel.watch). */
export type KernelEvent =
  | { kind: 'link' | 'addr' | 'route' | 'neigh' | 'fdb'; deleted: boolean; dev?: string }
  | { kind: 'resync' };
