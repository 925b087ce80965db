// The host-side op lists of a bridge ADD (one `Kernel.batch` in the host), each built with the words
// upstream uses when its step fails: the bridge (ensureBridge), the pod's veth and port (setupVeth,
// hairpin/isolation, VLANs) and the gateway (ensureVlanInterface + ensureAddr + the bridge MAC pin).
import { KernelError } from '../../shared/kernel/errors.js';
import type { KernelOp, LinkAddrs } from '../../shared/kernel/kernel.js';
import { goQuote } from '../../shared/go/quote.js';
import type { OpPlan } from '../../shared/ip/op-plan.js';
import { errorMessage } from '../../shared/log.js';
import { netContains, parseCIDR, type Family } from '../../shared/net/ip.js';
import type { BridgeConf } from './netconf.js';

const mtu = (n: BridgeConf) => (n.mtu ? { mtu: n.mtu } : {});
const failedOp = (err: unknown) => (err instanceof KernelError ? err.op : undefined);
/** the message without the adapter's `"<op text>": ` prefix */
const reason = (err: unknown) => errorMessage(err).replace(/^".*?": /, '');

/** ensureBridge: create it when missing (vlan_filtering, mtu, the MAC pin), promisc, up. */
export function bridgePlan(n: BridgeConf, brName: string, before: LinkAddrs | undefined, brPinMac: string | undefined): OpPlan {
  const ops: KernelOp[] = [];
  if (before === undefined) {
    ops.push({ op: 'addBridge', name: brName, ...mtu(n), vlanFiltering: n.vlan !== 0 || n.vlans !== undefined });
    // upstream pins the MAC of the device that gets the gateway address: with a vlan that is <br>.<vlan>
    if (n.isGateway && n.vlan === 0 && brPinMac !== undefined) ops.push({ op: 'setLink', dev: brName, mac: brPinMac });
  }
  if (n.promiscMode) ops.push({ op: 'setLink', dev: brName, promisc: true });
  if (before === undefined || !before.up) ops.push({ op: 'setLink', dev: brName, up: true });
  return {
    ops,
    explain(err) {
      const op = failedOp(err);
      const msg = errorMessage(err);
      if (op?.op === 'addBridge') return new Error(`failed to create bridge ${goQuote(brName)}: could not add ${goQuote(brName)}: ${msg}`, { cause: err });
      if (op?.op === 'setLink' && op.promisc) return new Error(`failed to create bridge ${goQuote(brName)}: could not set promiscuous mode on ${goQuote(brName)}: ${msg}`, { cause: err });
      return new Error(`failed to create bridge ${goQuote(brName)}: ${msg}`, { cause: err });
    },
  };
}

/** The pod's veth pair (container end created straight in the pod netns), up and enslaved, port flags, VLANs. */
export function portPlan(n: BridgeConf, brName: string, hostVeth: string, cont: { name: string; netns: string; mac: string }): OpPlan {
  const ops: KernelOp[] = [
    { op: 'addVeth', name: hostVeth, peer: cont.name, peerNetns: cont.netns, peerMac: cont.mac, ...mtu(n) },
    { op: 'setLink', dev: hostVeth, master: brName, up: true },
    { op: 'setBridgePort', dev: hostVeth, hairpin: n.hairpinMode, ...(n.portIsolation ? { isolated: true } : {}) },
    ...vlanOps(n, hostVeth, n.vlan),
  ];
  return {
    ops,
    explain(err) {
      const op = failedOp(err);
      const msg = errorMessage(err);
      switch (op?.op) {
        case 'addVeth':
          return new Error(`failed to make veth pair: ${msg}`, { cause: err });
        case 'setLink':
          return new Error(`failed to connect ${goQuote(hostVeth)} to bridge ${brName}: ${msg}`, { cause: err });
        case 'setBridgePort':
          return new Error(`failed to setup hairpin mode for ${hostVeth}: ${msg}`, { cause: err });
        default:
          return new Error(`failed to setup vlan tag on interface ${goQuote(hostVeth)}: ${msg}`, { cause: err });
      }
    },
  };
}

function vlanOps(n: BridgeConf, dev: string, vlan: number): KernelOp[] {
  const ops: KernelOp[] = [];
  if ((vlan !== 0 || n.vlans !== undefined) && !n.preserveDefaultVlan) ops.push({ op: 'deleteVlan', dev, vid: 1 });
  if (vlan !== 0) ops.push({ op: 'addVlan', dev, vid: vlan, pvid: true, untagged: true });
  for (const v of n.vlans ?? []) ops.push({ op: 'addVlan', dev, vid: v });
  if (vlan === 0 && n.vlans !== undefined && !n.preserveDefaultVlan) ops.push({ op: 'addVlan', dev, vid: 1, pvid: true, untagged: true });
  return ops;
}

/**
 * The ops that put `gw` (ip/prefix) on `dev` as upstream's ensureAddr does, given its current addresses:
 * same string → nothing to add; IPv4: any other v4 address conflicts; IPv6: overlapping subnets conflict.
 * A conflict is deleted with forceAddress, else it is an error.
 */
export function planEnsureAddr(dev: string, family: Family, gw: string, current: readonly string[], forceAddress: boolean): KernelOp[] {
  const want = parseCIDR(gw);
  const ops: KernelOp[] = [];
  for (const cidr of current) {
    if (cidr === gw) return ops;
    const have = parseCIDR(cidr);
    if (have.ip.family !== family) continue;
    if (family === 4 || netContains(have.net, want.ip) || netContains(want.net, have.ip)) {
      if (!forceAddress) throw new Error(`${goQuote(dev)} already has an IP address different from ${gw}`);
      ops.push({ op: 'deleteAddr', dev, cidr });
    }
  }
  ops.push({ op: 'replaceAddr', dev, cidr: gw });
  return ops;
}

export interface GatewayTarget {
  /** the bridge, or `<br>.<vlan>` with a vlan */
  dev: string;
  /** its addresses now */
  addrs: readonly string[];
  /** `<br>.<vlan>` to create (a veth whose peer is a tagged bridge port; its MAC set explicitly: the pin) */
  create?: { peer: string; mac: string };
}

/**
 * The gateway address(es) on the bridge or on `<br>.<vlan>` (ensureVlanInterface + ensureAddr), then
 * the bridge MAC pin. A planning conflict (an address there without forceAddress) throws at once.
 */
export function gatewayPlan(n: BridgeConf, brName: string, gws: ReadonlyArray<{ family: Family; gws: readonly string[] }>, target: GatewayTarget, brPinMac: string | undefined): OpPlan {
  const ops: KernelOp[] = [];
  const onVlan = target.dev !== brName;
  if (target.create !== undefined) {
    const { peer, mac } = target.create;
    ops.push(
      { op: 'addVeth', name: target.dev, peer, mac, ...mtu(n) },
      { op: 'sysctl', key: `net/ipv6/conf/${peer}/accept_ra`, value: '0', optional: true },
      { op: 'setLink', dev: peer, master: brName, up: true },
      ...vlanOps({ ...n, vlans: undefined }, peer, n.vlan),
      { op: 'setLink', dev: target.dev, up: true },
    );
  }
  let addrs = [...target.addrs];
  let count = 0;
  for (const g of gws) {
    for (const cidr of g.gws) {
      try {
        ops.push(...planEnsureAddr(target.dev, g.family, cidr, addrs, n.forceAddress));
      } catch (err) {
        throw new Error(`${onVlan ? 'failed to set vlan interface for bridge with addr' : 'failed to set bridge addr'}: ${errorMessage(err)}`);
      }
      addrs = [...addrs, cidr];
      count++;
    }
  }
  if (brPinMac !== undefined && !onVlan && count > 0) ops.push({ op: 'setLink', dev: brName, mac: brPinMac });
  return {
    ops,
    explain(err) {
      const op = failedOp(err);
      const msg = reason(err);
      if (op?.op === 'replaceAddr') return new Error(`failed to set bridge addr: could not add IP address ${op.cidr} to ${goQuote(op.dev)}: ${msg}`, { cause: err });
      if (op?.op === 'deleteAddr') return new Error(`failed to set bridge addr: could not remove IP address from ${goQuote(op.dev)}: ${msg}`, { cause: err });
      if (op?.op === 'setLink' && op.mac !== undefined) return new Error(`failed to set bridge addr: could not set bridge's mac: ${msg}`, { cause: err });
      return new Error(`failed to create vlan interface: ${msg}`, { cause: err });
    },
  };
}
