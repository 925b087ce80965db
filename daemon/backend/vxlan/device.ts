// One VXLAN device and the verbs that program it (flannel's pkg/backend/vxlan/device.go).
//
// `ensure()` creates or reconciles the link; `configure()` puts the lease's /32 (/128) on it and brings it
// up; the `*Ops` methods return the kernel writes for one peer so that the network can send the writes of a
// whole lease batch through one `Kernel.batch()` exec. They read like upstream's AddARP/AddFDB/AddRoute.
import type { Addr, Kernel, KernelOp, Link, RouteSpec } from '../../../shared/kernel/kernel.js';
import {
  formatCIDR,
  formatIP,
  formatNet,
  netContains,
  netIP,
  parseNet,
  tryParseCIDR,
  type IP,
  type IPNet,
} from '../../../shared/net/ip.js';

/** The kernel's VXLAN port when none is given (IANA's is 4789; Linux predates it). */
export const KERNEL_DEFAULT_VXLAN_PORT = 8472;

export interface VxlanDeviceAttrs {
  name: string;
  family: 4 | 6;
  vni: number;
  /** underlay device name */
  vtepDev: string;
  /** local underlay address */
  vtepAddr: string;
  /** 0 = kernel default */
  vtepPort: number;
  gbp: boolean;
  learning: boolean;
  /** device MTU (underlay MTU − encapsulation overhead) */
  mtu: number;
  /** the VtepMAC, lower-case colon form */
  mac: string;
}

/** A remote VTEP: the peer's subnet, its device MAC and the underlay address to encapsulate to. */
export interface Neighbor {
  subnet: IPNet;
  mac: string;
  publicIP: IP;
}

/** Why an existing link cannot be reused as is (upstream's vxlanLinksIncompat, plus MAC and learning). */
export function vxlanIncompat(link: Link, want: VxlanDeviceAttrs): string | undefined {
  if (link.kind !== 'vxlan') return `type ${link.kind ?? 'unknown'} != vxlan`;
  const v = link.vxlan;
  if (!v) return 'no vxlan attributes';
  if (v.vni !== want.vni) return `vni ${v.vni} != ${want.vni}`;
  if (v.local !== undefined && v.local !== want.vtepAddr) return `local ${v.local} != ${want.vtepAddr}`;
  if (v.dev !== undefined && v.dev !== want.vtepDev) return `dev ${v.dev} != ${want.vtepDev}`;
  const port = want.vtepPort > 0 ? want.vtepPort : KERNEL_DEFAULT_VXLAN_PORT;
  if (v.port > 0 && v.port !== port) return `port ${v.port} != ${port}`;
  if (v.gbp !== want.gbp) return `gbp ${v.gbp} != ${want.gbp}`;
  if (v.learning !== want.learning) return `learning ${v.learning} != ${want.learning}`;
  if (link.mac.toLowerCase() !== want.mac) return `mac ${link.mac} != ${want.mac}`;
  return undefined;
}

export class VxlanDevice {
  private index = -1;
  private fresh = false;

  constructor(
    private readonly kernel: Kernel,
    readonly attrs: VxlanDeviceAttrs,
    private readonly log: (msg: string) => void,
  ) {}

  /** ifindex seen at the last ensure(); a different one means somebody re-created the link. */
  get ifIndex(): number {
    return this.index;
  }

  /** True if the last ensure() created the link: nothing of an earlier run can be left on it. */
  get created(): boolean {
    return this.fresh;
  }

  /**
   * Create-or-verify: a missing link is created with our MAC; an incompatible one is deleted and
   * re-created; a compatible one is kept and its MTU reconciled. Returns true if the link was (re)created,
   * i.e. it holds no address, neighbours, FDB entries or routes yet.
   */
  async ensure(): Promise<boolean> {
    const a = this.attrs;
    const existing = await this.kernel.getLink(a.name);
    if (existing) {
      const why = vxlanIncompat(existing, a);
      if (!why) {
        if (existing.mtu !== a.mtu) {
          this.log(`${JSON.stringify(a.name)} MTU ${existing.mtu} != ${a.mtu}: reconciling`);
          await this.kernel.setLinkMtu(a.name, a.mtu);
        }
        this.index = existing.index;
        this.fresh = false;
        return false;
      }
      this.log(`${JSON.stringify(a.name)} already exists with incompatible configuration: ${why}; recreating device`);
    }
    // Compatibility is decided here only (vxlanIncompat); the kernel is told to create, strictly.
    await this.kernel.batch([
      ...(existing ? [{ op: 'deleteLink', dev: a.name } as const] : []),
      {
        op: 'addVxlan',
        name: a.name,
        vni: a.vni,
        port: a.vtepPort > 0 ? a.vtepPort : KERNEL_DEFAULT_VXLAN_PORT,
        local: a.vtepAddr,
        dev: a.vtepDev,
        learning: a.learning,
        gbp: a.gbp,
        mtu: a.mtu,
        mac: a.mac,
      },
      // no router advertisements on a /128 point-to-point style device (optional: IPv6 may be off)
      { op: 'sysctl', key: `net/ipv6/conf/${a.name}/accept_ra`, value: '0', optional: true },
    ]);
    const link = await this.kernel.getLink(a.name);
    if (!link) throw new Error(`link ${JSON.stringify(a.name)} disappeared right after it was created`);
    this.index = link.index;
    this.fresh = true;
    return true;
  }

  /**
   * Puts `<subnet base>/32` (/128) on the device, brings it up and checks the MAC (upstream #1795), as
   * upstream's Configure with EnsureV4AddressOnLink / EnsureV6AddressOnLink. What else goes:
   * - v4: every other address that lies inside `network` (the flannel Network), e.g. an old lease's /32;
   *   an address outside it is the operator's and is kept. Without `network` (caller did not say) every
   *   other v4 address but link-scope ones goes, as the /32 of an old lease could be anywhere.
   * - v6: every other address that is not link-local (upstream keeps exactly one global v6 address).
   * Stale addresses, the new address and link-up are one kernel batch.
   */
  async configure(subnet: IPNet, network?: IPNet): Promise<void> {
    const a = this.attrs;
    const addrs = await this.kernel.listAddrs({ dev: a.name, family: a.family });
    const { ops } = this.addrOps(addrs, subnet, network);
    for (const op of ops) if (op.op === 'deleteAddr') this.log(`removing stale address ${op.cidr} from ${a.name}`);
    ops.push({ op: 'setLinkUp', dev: a.name });
    await this.kernel.batch(ops);
    const link = await this.kernel.getLink(a.name);
    if (!link) throw new Error(`link ${JSON.stringify(a.name)} disappeared while configuring it`);
    if (link.mac.toLowerCase() !== a.mac) {
      throw new Error(`${a.name}'s mac address wanted: ${a.mac}, but got: ${link.mac}`);
    }
    this.index = link.index;
  }

  /**
   * The address writes that bring the device's addresses to what configure() leaves (the lease's /32 or
   * /128, no stale one), with what differed (`missing 10.10.16.0/32`, `extra 10.10.99.0/32`).
   */
  addrOps(addrs: readonly Addr[], subnet: IPNet, network?: IPNet): { ops: KernelOp[]; was: string[] } {
    const a = this.attrs;
    const want = formatCIDR(netIP(subnet), a.family === 4 ? 32 : 128);
    const ops: KernelOp[] = [];
    const was: string[] = [];
    let present = false;
    for (const addr of addrs) {
      if (sameCidr(addr.cidr, want)) present = true;
      else if (isStaleAddr(addr, a.family, network)) {
        ops.push({ op: 'deleteAddr', dev: a.name, cidr: addr.cidr });
        was.push(`extra address ${addr.cidr}`);
      }
    }
    if (!present) {
      ops.push({ op: 'replaceAddr', dev: a.name, cidr: want });
      was.push(`address ${want} missing`);
    }
    return { ops, was };
  }

  /**
   * What differs on a live link of ours that can be fixed in place (MTU, down, addresses): the writes
   * and what differed. A link of another kind, VNI, MAC, ... is not for this (vxlanIncompat: re-create).
   */
  driftOps(link: Link, addrs: readonly Addr[], subnet: IPNet, network?: IPNet): { ops: KernelOp[]; was: string[] } {
    const a = this.attrs;
    const { ops, was } = this.addrOps(addrs, subnet, network);
    if (link.mtu !== a.mtu) {
      ops.unshift({ op: 'setLink', dev: a.name, mtu: a.mtu });
      was.unshift(`mtu ${link.mtu}`);
    }
    if (!link.up) {
      ops.push({ op: 'setLinkUp', dev: a.name });
      was.push('down');
    }
    return { ops, was };
  }

  /** The onlink route to a peer's subnet through this device. */
  vxlanRoute(n: Neighbor): RouteSpec {
    return { dst: formatNet(n.subnet), via: formatIP(netIP(n.subnet)), dev: this.attrs.name, onlink: true };
  }

  /** The plain route used for a peer on the same L2 segment. */
  directRoute(n: Neighbor): RouteSpec {
    return { dst: formatNet(n.subnet), via: formatIP(n.publicIP) };
  }

  /** AddARP, AddFDB, AddRoute: in this order, replace semantics. */
  addPeerOps(n: Neighbor): KernelOp[] {
    const dev = this.attrs.name;
    return [
      { op: 'replaceNeigh', dev, ip: formatIP(netIP(n.subnet)), mac: n.mac },
      { op: 'replaceFdb', dev, mac: n.mac, dst: formatIP(n.publicIP) },
      { op: 'replaceRoute', route: this.vxlanRoute(n) },
    ];
  }

  /** DelRoute, DelARP, DelFDB: route first so nothing is sent to a half-removed peer. */
  removePeerOps(n: Neighbor): KernelOp[] {
    const dev = this.attrs.name;
    return [
      { op: 'deleteRoute', route: this.vxlanRoute(n) },
      { op: 'deleteNeigh', dev, ip: formatIP(netIP(n.subnet)) },
      { op: 'deleteFdb', dev, mac: n.mac, dst: formatIP(n.publicIP) },
    ];
  }

  addDirectOps(n: Neighbor): KernelOp[] {
    return [{ op: 'replaceRoute', route: this.directRoute(n) }];
  }

  removeDirectOps(n: Neighbor): KernelOp[] {
    return [{ op: 'deleteRoute', route: this.directRoute(n) }];
  }
}

/** Same address and prefix, whatever the spelling (`fd00:0::/128` = `fd00::/128`). */
function sameCidr(a: string, b: string): boolean {
  const x = tryParseCIDR(a);
  const y = tryParseCIDR(b);
  return !!x && !!y && x.ip.family === y.ip.family && x.ip.value === y.ip.value && x.net.prefix === y.net.prefix;
}

const LINK_LOCAL_V6 = parseNet('fe80::/10');

/** Whether `configure` removes an address other than the wanted one (see there). */
function isStaleAddr(addr: Addr, family: 4 | 6, network: IPNet | undefined): boolean {
  const parsed = tryParseCIDR(addr.cidr);
  if (!parsed) return false;
  if (family === 6) return addr.scope !== 'link' && !netContains(LINK_LOCAL_V6, parsed.ip);
  if (network === undefined || network.family !== 4) return addr.scope !== 'link';
  return netContains(network, parsed.ip);
}
