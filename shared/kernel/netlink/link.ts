// Links as rtnetlink messages: struct ifinfomsg + IFLA_* attributes, both ways.
//
// Writes follow what iproute2 6.1 sends for the argv the iproute2 adapter builds (iproute2/batch.ts), in
// the same attribute order, so test/unit/shared/kernel/netlink/link.test.ts compares our bytes with the
// bytes `strace ip link …` showed. One deliberate difference: `ip link set/del dev X` first asks the
// kernel for X's index; we name the device in IFLA_IFNAME with index 0, which the kernel resolves itself
// (ENODEV when it is not there), one round trip instead of two.
// Reads decode RTM_NEWLINK into `Link` exactly as iproute2/parse.ts reads `ip -d -j link show`.
import { KernelError } from '../errors.js';
import type { KernelOp, Link, VxlanSpec } from '../kernel.js';
import { AttrWriter, attrMap, formatMac, getBe16, getIP, getStr, getU32, getU8, macBytes, familyOfIP } from './attr.js';
import { NLM_F_CREATE, NLM_F_EXCL, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK, RTM_SETLINK, type NlRequest } from './nlmsg.js';

export const AF_UNSPEC = 0;
export const AF_BRIDGE = 7;

// enum IFLA_* (if_link.h)
export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_AF_SPEC = 26;
export const IFLA_NET_NS_FD = 28;
export const IFLA_EXT_MASK = 29;
export const IFLA_LINK_NETNSID = 37;

// IFLA_LINKINFO children
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_INFO_SLAVE_KIND = 4;
const IFLA_INFO_SLAVE_DATA = 5;

const VETH_INFO_PEER = 1;
const IFLA_BR_VLAN_FILTERING = 7;
// bridge port (IFLA_INFO_SLAVE_DATA of a bridge's port)
const IFLA_BRPORT_MODE = 4; // hairpin
const IFLA_BRPORT_ISOLATED = 33;

const IFLA_VXLAN_ID = 1;
const IFLA_VXLAN_LINK = 3;
const IFLA_VXLAN_LOCAL = 4;
const IFLA_VXLAN_LEARNING = 7;
const IFLA_VXLAN_PORT = 15;
const IFLA_VXLAN_LOCAL6 = 17;
const IFLA_VXLAN_GBP = 23;

const IFLA_IPTUN_LINK = 1;
const IFLA_IPTUN_LOCAL = 2;
const IFLA_IPTUN_TTL = 4;
const IFLA_IPTUN_TOS = 5;
const IFLA_IPTUN_PROTO = 9;
const IFLA_IPTUN_PMTUDISC = 10;
const IFLA_IPTUN_ENCAP_TYPE = 15;
const IFLA_IPTUN_ENCAP_FLAGS = 16;
const IFLA_IPTUN_ENCAP_SPORT = 17;
const IFLA_IPTUN_ENCAP_DPORT = 18;
const IFLA_IPTUN_FWMARK = 20;

export const IFF_UP = 0x1;
export const IFF_PROMISC = 0x100;

/** RTEXT_FILTER_SKIP_STATS | RTEXT_FILTER_VF, what iproute2 asks with: no per-link statistics in replies */
const EXT_MASK = 9;

const ARPHRD_LOOPBACK = 772;
const ARPHRD_TUNNEL = 768;
const ARPHRD_SIT = 776;
const ARPHRD_IPGRE = 778;
const ARPHRD_TUNNEL6 = 769;
const ARPHRD_IP6GRE = 823;

/** IF_OPER_* as iproute2 names them */
const OPERSTATES = ['UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP'];

export const CREATE_EXCL = NLM_F_CREATE | NLM_F_EXCL;

/** struct ifinfomsg (16 bytes) */
export function ifinfomsg(w: AttrWriter, o: { family?: number; index?: number; flags?: number; change?: number } = {}): AttrWriter {
  return w
    .u8(o.family ?? AF_UNSPEC)
    .u8(0)
    .u16(0)
    .i32(o.index ?? 0)
    .u32(o.flags ?? 0)
    .u32(o.change ?? 0);
}

/** The attributes `link add <name> [mtu N] [address M]` puts before the kind, in iproute2's order. */
function common(w: AttrWriter, name: string, o: { mtu?: number | undefined; mac?: string | undefined }): void {
  if (o.mtu) w.attrU32(IFLA_MTU, o.mtu);
  if (o.mac !== undefined) w.attr(IFLA_ADDRESS, macBytes(o.mac));
  w.attrStr(IFLA_IFNAME, name);
}

function newLink(name: string, o: { mtu?: number | undefined; mac?: string | undefined }, kind: string, data?: (w: AttrWriter) => void): NlRequest {
  const w = ifinfomsg(new AttrWriter());
  common(w, name, o);
  w.nest(IFLA_LINKINFO, (li) => {
    li.attr(IFLA_INFO_KIND, Buffer.from(kind)); // without the NUL, as iproute2 sends it
    if (data !== undefined) li.nest(IFLA_INFO_DATA, data);
  });
  return { type: RTM_NEWLINK, flags: CREATE_EXCL, payload: w.bytes() };
}

/** `ip link add <name> [mtu N] [address M] type bridge [vlan_filtering 1]` */
export function addBridgeMsg(op: Extract<KernelOp, { op: 'addBridge' }> & { mac?: string }): NlRequest {
  return newLink(op.name, op, 'bridge', op.vlanFiltering ? (d) => d.attrU8(IFLA_BR_VLAN_FILTERING, 1) : undefined);
}

/**
 * `ip link add <name> [mtu N] [address M] type veth peer name <peer> [mtu N] [address M] [netns <fd>]`:
 * the peer is created directly in the namespace of `peerNsFd` (an open namespace file), never moved.
 */
export function addVethMsg(op: Extract<KernelOp, { op: 'addVeth' }>, peerNsFd?: number): NlRequest {
  return newLink(op.name, op, 'veth', (d) =>
    d.nest(VETH_INFO_PEER, (p) => {
      ifinfomsg(p);
      if (op.mtu) p.attrU32(IFLA_MTU, op.mtu);
      if (op.peerMac !== undefined) p.attr(IFLA_ADDRESS, macBytes(op.peerMac));
      if (peerNsFd !== undefined) p.attrU32(IFLA_NET_NS_FD, peerNsFd);
      p.attrStr(IFLA_IFNAME, op.peer);
    }),
  );
}

/** `ip link add <name> … type vxlan id N [local A] [dev D] dstport P [no]learning [gbp]`; `devIndex`: D's index */
export function addVxlanMsg(name: string, spec: VxlanSpec, devIndex?: number): NlRequest {
  return newLink(name, spec, 'vxlan', (d) => {
    if (devIndex !== undefined) d.attrU32(IFLA_VXLAN_LINK, devIndex);
    if (spec.gbp) d.attr(IFLA_VXLAN_GBP);
    d.attrU32(IFLA_VXLAN_ID, spec.vni);
    if (spec.local) d.attrIP(familyOfIP(spec.local) === 6 ? IFLA_VXLAN_LOCAL6 : IFLA_VXLAN_LOCAL, spec.local);
    d.attrU8(IFLA_VXLAN_LEARNING, spec.learning ? 1 : 0);
    d.attrBe16(IFLA_VXLAN_PORT, spec.port);
  });
}

/**
 * `ip link add <name> [mtu N] type ipip local A [dev D] [ttl N]`: iproute2 sends every tunnel parameter
 * (pmtudisc on, tos/fwmark/encap zero, link 0 without a device, ttl 0 = inherit): so do we.
 */
export function addIpipMsg(op: Extract<KernelOp, { op: 'addIpip' }>, devIndex?: number): NlRequest {
  return newLink(op.name, op, 'ipip', (d) => {
    d.attrU8(IFLA_IPTUN_PROTO, 0);
    d.attrIP(IFLA_IPTUN_LOCAL, op.local);
    d.attrU8(IFLA_IPTUN_PMTUDISC, 1);
    d.attrU8(IFLA_IPTUN_TOS, 0);
    d.attrU8(IFLA_IPTUN_TTL, op.ttl ?? 0);
    d.attrU32(IFLA_IPTUN_LINK, devIndex ?? 0);
    d.attrU32(IFLA_IPTUN_FWMARK, 0);
    d.attrU16(IFLA_IPTUN_ENCAP_TYPE, 0);
    d.attrU16(IFLA_IPTUN_ENCAP_FLAGS, 0);
    d.attrU16(IFLA_IPTUN_ENCAP_SPORT, 0);
    d.attrU16(IFLA_IPTUN_ENCAP_DPORT, 0);
  });
}

/** `ip link add <name> [mtu N] type wireguard` */
export function addWireguardMsg(op: Extract<KernelOp, { op: 'addWireguard' }>): NlRequest {
  return newLink(op.name, op, 'wireguard');
}

/**
 * `ip link set dev X [mtu N] [address M] [promisc on|off] [master B] [up|down]` in one message, as
 * iproute2 sends it; `masterIndex` is B's index (0: `nomaster`).
 */
export function setLinkMsg(dev: string, o: { up?: boolean | undefined; promisc?: boolean | undefined; mtu?: number | undefined; mac?: string | undefined; masterIndex?: number | undefined }): NlRequest {
  let flags = 0;
  let change = 0;
  if (o.up !== undefined) {
    change |= IFF_UP;
    if (o.up) flags |= IFF_UP;
  }
  if (o.promisc !== undefined) {
    change |= IFF_PROMISC;
    if (o.promisc) flags |= IFF_PROMISC;
  }
  const w = ifinfomsg(new AttrWriter(64), { flags, change });
  w.attrStr(IFLA_IFNAME, dev);
  if (o.mtu !== undefined) w.attrU32(IFLA_MTU, o.mtu);
  if (o.mac !== undefined) w.attr(IFLA_ADDRESS, macBytes(o.mac));
  if (o.masterIndex !== undefined) w.attrU32(IFLA_MASTER, o.masterIndex);
  return { type: RTM_NEWLINK, flags: 0, payload: w.bytes() };
}

/**
 * `ip link set dev X type bridge_slave [hairpin on|off] [isolated on|off]`. iproute2 names the kind
 * `bridge_slave` (no NUL) in IFLA_INFO_KIND; the kernel ignores a kind on an existing device and hands
 * IFLA_INFO_SLAVE_DATA to the master's ops. Kept byte for byte.
 */
export function setBridgePortMsg(dev: string, o: { hairpin?: boolean | undefined; isolated?: boolean | undefined }): NlRequest {
  const w = ifinfomsg(new AttrWriter(64));
  w.attrStr(IFLA_IFNAME, dev);
  w.nest(IFLA_LINKINFO, (li) => {
    li.attr(IFLA_INFO_KIND, Buffer.from('bridge_slave'));
    li.nest(IFLA_INFO_SLAVE_DATA, (d) => {
      if (o.hairpin !== undefined) d.attrU8(IFLA_BRPORT_MODE, o.hairpin ? 1 : 0);
      if (o.isolated !== undefined) d.attrU8(IFLA_BRPORT_ISOLATED, o.isolated ? 1 : 0);
    });
  });
  return { type: RTM_NEWLINK, flags: 0, payload: w.bytes() };
}

/** `ip link del dev X` */
export function delLinkMsg(dev: string): NlRequest {
  const w = ifinfomsg(new AttrWriter(32));
  w.attrStr(IFLA_IFNAME, dev);
  return { type: RTM_DELLINK, flags: 0, payload: w.bytes() };
}

/** RTM_GETLINK of one link, by name or index (reply: one RTM_NEWLINK, or ENODEV) */
export function getLinkMsg(dev: string | number): NlRequest {
  const w = ifinfomsg(new AttrWriter(32), { index: typeof dev === 'number' ? dev : 0 });
  w.attrU32(IFLA_EXT_MASK, EXT_MASK);
  if (typeof dev === 'string') w.attrStr(IFLA_IFNAME, dev);
  return { type: RTM_GETLINK, flags: 0, payload: w.bytes() };
}

/** the payload of an RTM_GETLINK dump of every link */
export function dumpLinksPayload(): Buffer {
  return ifinfomsg(new AttrWriter(32)).attrU32(IFLA_EXT_MASK, EXT_MASK).bytes();
}

// ---- bridge vlans (AF_BRIDGE, IFLA_AF_SPEC): `bridge vlan add|del dev X vid N[-M] [pvid] [untagged] [self]`

const IFLA_BRIDGE_FLAGS = 0;
const IFLA_BRIDGE_VLAN_INFO = 2;
const BRIDGE_FLAGS_SELF = 2;
const BRIDGE_VLAN_INFO_PVID = 2;
const BRIDGE_VLAN_INFO_UNTAGGED = 4;
const BRIDGE_VLAN_INFO_RANGE_BEGIN = 8;
const BRIDGE_VLAN_INFO_RANGE_END = 16;

export function vlanMsg(op: Extract<KernelOp, { op: 'addVlan' | 'deleteVlan' }>, index: number): NlRequest {
  const w = ifinfomsg(new AttrWriter(64), { family: AF_BRIDGE, index });
  const add = op.op === 'addVlan';
  const flags = add ? (op.pvid ? BRIDGE_VLAN_INFO_PVID : 0) | (op.untagged ? BRIDGE_VLAN_INFO_UNTAGGED : 0) : 0;
  const info = (f: number, vid: number) => w.attr(IFLA_BRIDGE_VLAN_INFO, [f & 0xff, f >> 8, vid & 0xff, vid >> 8]);
  w.nest(IFLA_AF_SPEC, () => {
    if (op.self) w.attrU16(IFLA_BRIDGE_FLAGS, BRIDGE_FLAGS_SELF);
    if (op.vidEnd !== undefined && op.vidEnd !== op.vid) {
      info(flags | BRIDGE_VLAN_INFO_RANGE_BEGIN, op.vid);
      info(flags | BRIDGE_VLAN_INFO_RANGE_END, op.vidEnd);
    } else info(flags, op.vid);
  });
  return { type: add ? RTM_SETLINK : RTM_DELLINK, flags: 0, payload: w.bytes() };
}

// ---- reading

/** What a link message says beyond `Link`: its raw index references, resolved to names by the caller. */
export interface DecodedLink {
  link: Link;
  /** IFLA_MASTER */
  masterIndex?: number;
  /** IFLA_VXLAN_LINK */
  vxlanLinkIndex?: number;
  /** IFLA_LINK when the link is not in another namespace (then iproute2 names it: `"link": "eth0"`) */
  lowerIndex?: number;
}

/** The ifindex of an RTM_NEWLINK payload (without decoding the rest). */
export const linkIndexOf = (payload: Buffer): number => payload.readInt32LE(4);

/** The IFLA_IFNAME of an RTM_NEWLINK/DELLINK payload. */
export function linkNameOf(payload: Buffer): string | undefined {
  return getStr(attrMap(payload, 16).get(IFLA_IFNAME));
}

/** RTM_NEWLINK → Link, as iproute2/parse.ts reads `ip -d -j link show` (names of other links left to the caller). */
export function decodeLink(payload: Buffer): DecodedLink {
  if (payload.length < 16) throw new KernelError(`netlink: RTM_NEWLINK of ${payload.length} bytes`, { code: 'EIO' });
  const type = payload.readUInt16LE(2);
  const flags = payload.readUInt32LE(8);
  const a = attrMap(payload, 16);
  const info = a.has(IFLA_LINKINFO) ? attrMap(a.get(IFLA_LINKINFO)!) : undefined;
  const kind = getStr(info?.get(IFLA_INFO_KIND)) ?? (type === ARPHRD_LOOPBACK ? 'loopback' : undefined);
  const addr = a.get(IFLA_ADDRESS);
  const link: Link = {
    name: getStr(a.get(IFLA_IFNAME)) ?? '',
    index: linkIndexOf(payload),
    mtu: getU32(a.get(IFLA_MTU)) ?? 0,
    mac: addr !== undefined ? llAddr(addr, type) : '',
    up: (flags & IFF_UP) !== 0,
    promisc: (flags & IFF_PROMISC) !== 0,
  };
  const out: DecodedLink = { link };
  if (kind !== undefined) link.kind = kind;
  const master = getU32(a.get(IFLA_MASTER));
  if (master !== undefined && master !== 0) out.masterIndex = master;
  const oper = getU8(a.get(IFLA_OPERSTATE));
  if (oper !== undefined) link.operstate = OPERSTATES[oper] ?? String(oper);
  const lower = getU32(a.get(IFLA_LINK));
  if (lower !== undefined && lower !== 0) {
    // iproute2 prints the index only for a link in another namespace, else the name ("link")
    if (a.has(IFLA_LINK_NETNSID)) link.peerIndex = lower;
    else out.lowerIndex = lower;
  }
  const data = info?.has(IFLA_INFO_DATA) ? attrMap(info.get(IFLA_INFO_DATA)!) : undefined;
  if (kind === 'vxlan' && data !== undefined) {
    link.vxlan = {
      vni: getU32(data.get(IFLA_VXLAN_ID)) ?? 0,
      port: getBe16(data.get(IFLA_VXLAN_PORT)) ?? 0,
      learning: getU8(data.get(IFLA_VXLAN_LEARNING)) === 1,
      gbp: data.has(IFLA_VXLAN_GBP),
    };
    const local = nonZeroIP(data.get(IFLA_VXLAN_LOCAL)) ?? nonZeroIP(data.get(IFLA_VXLAN_LOCAL6));
    if (local !== undefined) link.vxlan.local = local;
    const vl = getU32(data.get(IFLA_VXLAN_LINK));
    if (vl !== undefined && vl !== 0) out.vxlanLinkIndex = vl;
  }
  if (kind === 'bridge') link.bridge = { vlanFiltering: getU8(data?.get(IFLA_BR_VLAN_FILTERING)) === 1 };
  if (info !== undefined && getStr(info.get(IFLA_INFO_SLAVE_KIND)) === 'bridge') {
    const s = info.has(IFLA_INFO_SLAVE_DATA) ? attrMap(info.get(IFLA_INFO_SLAVE_DATA)!) : new Map<number, Buffer>();
    link.port = { hairpin: getU8(s.get(IFLA_BRPORT_MODE)) === 1, isolated: getU8(s.get(IFLA_BRPORT_ISOLATED)) === 1 };
  }
  return out;
}

/**
 * Fills in what needs other links' names (master, vxlan dev, lower device), as iproute2 prints them:
 * `nameOf` gives a name or undefined (then iproute2 prints `if<N>`).
 */
export function resolveLinkNames(d: DecodedLink, nameOf: (index: number) => string | undefined): Link {
  const link = d.link;
  const name = (i: number) => nameOf(i) ?? `if${i}`;
  if (d.masterIndex !== undefined) link.master = name(d.masterIndex);
  if (link.vxlan !== undefined) {
    // iproute2: `data.link` (IFLA_VXLAN_LINK), else the top-level "link" (IFLA_LINK)
    const i = d.vxlanLinkIndex ?? d.lowerIndex;
    if (i !== undefined) link.vxlan.dev = name(i);
  }
  return link;
}

/** iproute2's ll_addr_n2a: a tunnel's 4/16-byte address as an IP, anything else as `aa:bb:…`. */
function llAddr(b: Buffer, type: number): string {
  if (b.length === 4 && (type === ARPHRD_TUNNEL || type === ARPHRD_SIT || type === ARPHRD_IPGRE)) return getIP(b)!;
  if (b.length === 16 && (type === ARPHRD_TUNNEL6 || type === ARPHRD_IP6GRE)) return getIP(b)!;
  return formatMac(b);
}

function nonZeroIP(b: Buffer | undefined): string | undefined {
  if (b === undefined || b.every((x) => x === 0)) return undefined;
  return getIP(b);
}
