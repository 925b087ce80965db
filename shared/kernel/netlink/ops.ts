// KernelOp → rtnetlink request, and how a batch may group them.
//
// Every op becomes one request; the words naming it in errors (`what`) are the message kind and the
// object as iproute2 would spell it: `RTM_NEWROUTE 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink`.
import type { KernelOp, RouteSpec } from '../kernel.js';
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

/** `10.0.0.0/8 via 1.2.3.4 dev x onlink …`, iproute2's argv for the route (iproute2/batch.ts routeArgs) */
export function routeText(r: RouteSpec): string {
  const a: string[] = r.type !== undefined ? [r.type, r.dst] : [r.dst];
  if (r.via !== undefined) a.push('via', r.via);
  if (r.dev !== undefined) a.push('dev', r.dev);
  if (r.onlink) a.push('onlink');
  if (r.src !== undefined) a.push('src', r.src);
  if (r.table !== undefined) a.push('table', String(r.table));
  if (r.scope !== undefined) a.push('scope', r.scope);
  if (r.proto !== undefined) a.push('proto', r.proto);
  if (r.metric !== undefined) a.push('metric', String(r.metric));
  if (r.mtu !== undefined) a.push('mtu', String(r.mtu));
  if (r.advmss !== undefined) a.push('advmss', String(r.advmss));
  return a.join(' ');
}

/** How the op is named in an error. */
export function opWhat(op: KernelOp): string {
  switch (op.op) {
    case 'replaceRoute':
      return `RTM_NEWROUTE (replace) ${routeText(op.route)}`;
    case 'addRoute':
      return `RTM_NEWROUTE ${routeText(op.route)}`;
    case 'prependRoute':
      return `RTM_NEWROUTE (prepend) ${routeText(op.route)}`;
    case 'deleteRoute':
      return `RTM_DELROUTE ${routeText(op.route)}`;
    case 'replaceNeigh':
      return `RTM_NEWNEIGH ${op.ip} lladdr ${op.mac} dev ${op.dev}`;
    case 'deleteNeigh':
      return `RTM_DELNEIGH ${op.ip} dev ${op.dev}`;
    case 'replaceFdb':
    case 'appendFdb':
      return `RTM_NEWNEIGH (fdb ${op.op === 'appendFdb' ? 'append' : 'replace'}) ${op.mac} dev ${op.dev} dst ${op.dst}`;
    case 'deleteFdb':
      return `RTM_DELNEIGH (fdb) ${op.mac} dev ${op.dev}${op.dst !== undefined ? ` dst ${op.dst}` : ''}`;
    case 'replaceAddr':
      return `RTM_NEWADDR (replace) ${op.cidr} dev ${op.dev}`;
    case 'addAddr':
      return `RTM_NEWADDR ${op.cidr} dev ${op.dev}`;
    case 'deleteAddr':
      return `RTM_DELADDR ${op.cidr} dev ${op.dev}`;
    case 'setLinkUp':
      return `RTM_NEWLINK ${op.dev} up`;
    case 'setLink': {
      const a = [`RTM_NEWLINK ${op.dev}`];
      if (op.mtu !== undefined) a.push(`mtu ${op.mtu}`);
      if (op.mac !== undefined) a.push(`address ${op.mac}`);
      if (op.promisc !== undefined) a.push(`promisc ${op.promisc ? 'on' : 'off'}`);
      if (op.master !== undefined) a.push(`master ${op.master}`);
      if (op.up !== undefined) a.push(op.up ? 'up' : 'down');
      return a.join(' ');
    }
    case 'setBridgePort':
      return `RTM_NEWLINK ${op.dev} bridge_slave${op.hairpin !== undefined ? ` hairpin ${op.hairpin ? 'on' : 'off'}` : ''}${op.isolated !== undefined ? ` isolated ${op.isolated ? 'on' : 'off'}` : ''}`;
    case 'addBridge':
      return `RTM_NEWLINK ${op.name} type bridge`;
    case 'addVeth':
      return `RTM_NEWLINK ${op.name} type veth peer ${op.peer}${op.peerNetns !== undefined ? ` netns ${op.peerNetns}` : ''}`;
    case 'addVxlan':
      return `RTM_NEWLINK ${op.name} type vxlan id ${op.vni}${op.local ? ` local ${op.local}` : ''}${op.dev !== undefined ? ` dev ${op.dev}` : ''} dstport ${op.port}`;
    case 'addIpip':
      return `RTM_NEWLINK ${op.name} type ipip local ${op.local}${op.dev !== undefined ? ` dev ${op.dev}` : ''}`;
    case 'addWireguard':
      return `RTM_NEWLINK ${op.name} type wireguard`;
    case 'deleteLink':
      return `RTM_DELLINK ${op.dev}`;
    case 'sysctl':
      return `sysctl ${op.key}=${op.value}`;
    case 'addVlan':
    case 'deleteVlan':
      return `${op.op === 'addVlan' ? 'RTM_SETLINK' : 'RTM_DELLINK'} (bridge vlan) dev ${op.dev} vid ${op.vidEnd !== undefined ? `${op.vid}-${op.vidEnd}` : op.vid}`;
  }
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
 * Whether `op` may join a run that already holds `run`: a route through a gateway that is not `onlink`
 * needs the gateway reachable through a link-scope route, which an earlier route of the run without a
 * gateway may be the one to create; such a route starts a new exchange after the run is acked.
 */
export function mayJoinRun(run: readonly KernelOp[], op: KernelOp): boolean {
  if (!isEntryOp(op)) return false;
  if (op.op === 'deleteRoute' || !('route' in op) || op.route.via === undefined || op.route.onlink) return true;
  return !run.some((r) => (r.op === 'addRoute' || r.op === 'replaceRoute' || r.op === 'prependRoute') && r.route.via === undefined && r.route.type === undefined);
}
