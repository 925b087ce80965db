// KernelOp → rtnetlink request, and how a batch may group them.
//
// Every op becomes one request; errors name it as the iproute2 adapter's batch line (opWhat).
import type { KernelOp, RouteSpec } from '../kernel.js';
import { opLine } from '../iproute2/batch.js';
import { addrMsg } from './addr.js';
import { addBridgeMsg, addIpipMsg, addVethMsg, addVxlanMsg, addWireguardMsg, delLinkMsg, setBridgePortMsg, setLinkMsg, vlanMsg } from './link.js';
import { delNeighMsg, fdbMsg, replaceNeighMsg } from './neigh.js';
import type { NlRequest } from './nlmsg.js';
import { routeMsg } from './route.js';

/** What an op needs from the session that encodes it: link indexes by name, namespace fds by path. */
export interface OpContext {
  /** the index of link `name`; throws KernelError ENODEV when there is none */
  index(name: string): number;
  /** an open fd of the namespace file at `path` (closed by the caller after the request) */
  netnsFd(path: string): number;
}

/**
 * How the op is named in an error: the line the iproute2 adapter runs for it, quoted, as that adapter
 * names a failed batch line (`"route replace 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink": File
 * exists`): one wording whichever backend ran it, and what callers strip (`^".*?": `) to keep Go's words.
 */
export function opWhat(op: KernelOp): string {
  const { tool, args } = opLine(op);
  return `"${tool === 'sysctl' ? 'sysctl ' : ''}${args.join(' ')}"`;
}

/** The request of an op (not for `sysctl`, which is a file write). `fds`: namespace fds it opened. */
export function encodeOp(op: Exclude<KernelOp, { op: 'sysctl' }>, cx: OpContext): NlRequest {
  switch (op.op) {
    case 'replaceRoute':
      return routeMsg('replace', op.route, oif(op.route, cx));
    case 'addRoute':
      return routeMsg('add', op.route, oif(op.route, cx));
    case 'prependRoute':
      return routeMsg('prepend', op.route, oif(op.route, cx));
    case 'deleteRoute':
      return routeMsg('del', op.route, oif(op.route, cx));
    case 'replaceNeigh':
      return replaceNeighMsg(cx.index(op.dev), op.ip, op.mac);
    case 'deleteNeigh':
      return delNeighMsg(cx.index(op.dev), op.ip);
    case 'replaceFdb':
      return fdbMsg('replace', cx.index(op.dev), op.mac, op.dst);
    case 'appendFdb':
      return fdbMsg('append', cx.index(op.dev), op.mac, op.dst);
    case 'deleteFdb':
      return fdbMsg('del', cx.index(op.dev), op.mac, op.dst);
    case 'replaceAddr':
      return addrMsg('replace', cx.index(op.dev), op.cidr);
    case 'addAddr':
      return addrMsg('add', cx.index(op.dev), op.cidr);
    case 'deleteAddr':
      return addrMsg('del', cx.index(op.dev), op.cidr);
    case 'setLinkUp':
      return setLinkMsg(op.dev, { up: true });
    case 'setLink':
      return setLinkMsg(op.dev, { up: op.up, promisc: op.promisc, mtu: op.mtu, mac: op.mac, masterIndex: op.master !== undefined ? cx.index(op.master) : undefined });
    case 'setBridgePort':
      return setBridgePortMsg(op.dev, op);
    case 'addBridge':
      return addBridgeMsg(op);
    case 'addVeth':
      return addVethMsg(op, op.peerNetns !== undefined ? cx.netnsFd(op.peerNetns) : undefined);
    case 'addVxlan':
      return addVxlanMsg(op.name, op, op.dev !== undefined ? cx.index(op.dev) : undefined);
    case 'addIpip':
      return addIpipMsg(op, op.dev !== undefined ? cx.index(op.dev) : undefined);
    case 'addWireguard':
      return addWireguardMsg(op);
    case 'deleteLink':
      return delLinkMsg(op.dev);
    case 'addVlan':
    case 'deleteVlan':
      return vlanMsg(op, cx.index(op.dev));
  }
}

const oif = (r: RouteSpec, cx: OpContext): number | undefined => (r.dev !== undefined ? cx.index(r.dev) : undefined);

/**
 * Entry writes (routes, neighbours, FDB entries): no later op names what they create, so a run of them
 * can share one sendmsg. Links, addresses, vlans and sysctls go one per exchange.
 */
export function isEntryOp(op: KernelOp): op is Extract<KernelOp, { op: 'replaceRoute' | 'addRoute' | 'prependRoute' | 'deleteRoute' | 'replaceNeigh' | 'deleteNeigh' | 'replaceFdb' | 'appendFdb' | 'deleteFdb' }> {
  switch (op.op) {
    case 'replaceRoute':
    case 'addRoute':
    case 'prependRoute':
    case 'deleteRoute':
    case 'replaceNeigh':
    case 'deleteNeigh':
    case 'replaceFdb':
    case 'appendFdb':
    case 'deleteFdb':
      return true;
    default:
      return false;
  }
}

/**
 * A route through a gateway that is not `onlink` needs the gateway reachable through a link-scope route,
 * which an earlier route of the same run without a gateway may be the one to create: such a route
 * (`needsLinkRoute`) does not join a run that holds one (`makesLinkRoute`); it starts the next exchange,
 * sent after the run is acked.
 */
export function needsLinkRoute(op: KernelOp): boolean {
  return (op.op === 'addRoute' || op.op === 'replaceRoute' || op.op === 'prependRoute') && op.route.via !== undefined && !op.route.onlink;
}

export function makesLinkRoute(op: KernelOp): boolean {
  return (op.op === 'addRoute' || op.op === 'replaceRoute' || op.op === 'prependRoute') && op.route.via === undefined && op.route.type === undefined;
}
