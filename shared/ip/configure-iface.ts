// A container interface configured from an IPAM result (upstream pkg/ipam/ipam_linux.go ConfigureIface,
// plus the DAD sysctls and the address settling the bridge does around it): the ops of one batch inside
// the container's netns, and the words of upstream's errors for whichever op fails.
import { KernelError } from '../kernel/errors.js';
import type { Kernel, KernelOp, RouteSpec } from '../kernel/kernel.js';
import type { Result } from '../cni/types.js';
import { goQuote } from '../go/quote.js';
import { errorMessage } from '../log.js';
import { formatCIDR, formatNet, parseCIDR, tryParseCIDR, type Family } from '../net/ip.js';
import { formatRouteDst } from '../net/route.js';
import type { OpPlan } from './op-plan.js';


const isV4 = (s: string): boolean => !s.includes(':');

/** A CNI result address as the kernel lists it (`ip/prefix`, host bits kept). */
export function normCidr(cidr: string): string {
  const { ip, net } = parseCIDR(cidr);
  return formatCIDR(ip, net.prefix);
}

/**
 * IPv4 networks the kernel routes itself once the addresses are on the interface (its connected routes,
 * main table, metric 0): `ip route add` of the same dst there fails with EEXIST.
 */
function connectedV4(ips: readonly { address: string }[]): Set<string> {
  const out = new Set<string>();
  for (const ipc of ips) {
    const c = tryParseCIDR(ipc.address);
    if (c?.ip.family === 4) out.add(formatNet(c.net));
  }
  return out;
}

/**
 * The container side of an L3 ADD: sysctls, addresses, up, routes.
 *
 * A route whose dst is the connected network of one of the addresses (an IPAM route equal to the pod
 * subnet) is not added: the kernel already routes it. Go's ConfigureIface adds routes with
 * netlink.RouteAddEcmp (NLM_F_CREATE without NLM_F_EXCL), so the kernel takes it as a second route
 * ahead of the connected one (pod-to-pod traffic then goes through the gateway); our `ip route add` is
 * exclusive and failed the ADD with "File exists". Same result and ADD outcome as Go; the kernel keeps
 * only the connected route (direct on the bridge).
 */
export function configureIface(ifName: string, result: Result, o: { enabledad: boolean; log?: (msg: string) => void }): OpPlan {
  const ops: KernelOp[] = [];
  if (o.enabledad) {
    ops.push({ op: 'sysctl', key: `net/ipv6/conf/${ifName}/enhanced_dad`, value: '1', optional: true });
    ops.push({ op: 'sysctl', key: `net/ipv6/conf/${ifName}/accept_dad`, value: '1', optional: true });
  } else {
    ops.push({ op: 'sysctl', key: `net/ipv6/conf/${ifName}/accept_dad`, value: '0', optional: true });
  }
  ops.push({ op: 'sysctl', key: `net/ipv4/conf/${ifName}/arp_notify`, value: '1', optional: true });
  const ips = result.ips ?? [];
  if (ips.some((ip) => !isV4(ip.address))) {
    for (const dev of ['lo', ifName]) ops.push({ op: 'sysctl', key: `net/ipv6/conf/${dev}/disable_ipv6`, value: '0' });
    ops.push({ op: 'sysctl', key: `net/ipv6/conf/${ifName}/keep_addr_on_down`, value: '1' });
  }
  for (const ipc of ips) ops.push({ op: 'addAddr', dev: ifName, cidr: normCidr(ipc.address) });
  ops.push({ op: 'setLinkUp', dev: ifName });
  const gw = (f: Family) => ips.find((i) => i.gateway !== undefined && (isV4(i.address) ? 4 : 6) === f)?.gateway;
  const connected = connectedV4(ips);
  for (const r of result.routes ?? []) {
    const f: Family = isV4(r.dst) ? 4 : 6;
    const dst = formatRouteDst(r.dst);
    if (f === 4 && !r.priority && (r.table === undefined || r.table === 254) && connected.has(dst)) {
      o.log?.(`bridge: route ${dst} on ${ifName} not added: it is the connected route of ${ifName}'s address, which the kernel already has`);
      continue;
    }
    const via = r.gw ?? gw(f);
    const spec: RouteSpec = { dst, dev: ifName };
    if (via !== undefined) spec.via = via;
    if (r.priority) spec.metric = r.priority;
    if (r.table) spec.table = r.table;
    if (r.scope !== undefined) {
      const scope = r.scope === 253 ? 'link' : r.scope === 254 ? 'host' : r.scope === 0 ? 'global' : undefined;
      if (scope !== undefined) spec.scope = scope;
    }
    if (r.mtu) spec.mtu = r.mtu;
    if (r.advmss) spec.advmss = r.advmss;
    ops.push({ op: 'addRoute', route: spec });
  }
  return { ops, explain: (err) => explainIfaceStep(err, ifName) };
}

function explainIfaceStep(err: unknown, ifName: string): Error {
  const op = err instanceof KernelError ? err.op : undefined;
  const msg = errorMessage(err).replace(/^".*?": /, '');
  switch (op?.op) {
    case 'addAddr':
      return new Error(`failed to add IP addr ${op.cidr} to ${goQuote(ifName)}: ${msg}`, { cause: err });
    case 'setLinkUp':
      return new Error(`failed to set ${goQuote(ifName)} UP: ${msg}`, { cause: err });
    case 'addRoute':
    case 'prependRoute': {
      const r = op.route;
      return new Error(`failed to add route '${r.dst}${r.via ? ` via ${r.via}` : ''} dev ${ifName}': ${msg}`, { cause: err });
    }
    case 'sysctl':
      return new Error(`failed to set sysctl ${op.key}=${op.value}: ${msg}`, { cause: err });
    default:
      return err instanceof Error ? err : new Error(msg);
  }
}

/**
 * ip.SettleAddresses: waits until no IPv6 address of `ifName` is tentative (DAD done), at most 5 s;
 * an address that failed DAD is an error.
 */
export async function settleAddresses(k: Kernel, ifName: string, sleep: (ms: number) => Promise<void>): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const link = (await k.inspect([ifName])).get(ifName);
    const addrs = (link?.addrs ?? []).filter((a) => a.family === 6);
    const failed = addrs.find((a) => a.dadfailed);
    if (failed !== undefined) throw new Error(`link ${ifName} has address ${failed.cidr} in DADFAILED state`);
    if (!addrs.some((a) => a.tentative)) return;
    if (Date.now() > deadline) throw new Error(`link ${ifName} still has tentative addresses after 5 seconds`);
    await sleep(50);
  }
}
