// A container interface configured from an IPAM result (upstream pkg/ipam/ipam_linux.go ConfigureIface,
// plus the DAD sysctls and the address settling the bridge does around it): the ops of one batch inside
// the container's netns, and the words of upstream's errors for whichever op fails.
import { KernelError } from '../kernel/errors.js';
import type { Kernel, KernelOp, RouteSpec } from '../kernel/kernel.js';
import type { Result } from '../cni/types.js';
import { goQuote } from '../go/quote.js';
import { errorMessage } from '../log.js';
import { formatCIDR, parseCIDR, type Family } from '../net/ip.js';
import { formatRouteDst } from '../net/route.js';
import type { OpPlan } from './op-plan.js';


const isV4 = (s: string): boolean => !s.includes(':');

/** A CNI result address as the kernel lists it (`ip/prefix`, host bits kept). */
export function normCidr(cidr: string): string {
  const { ip, net } = parseCIDR(cidr);
  return formatCIDR(ip, net.prefix);
}

/**
 * The container side of an L3 ADD: sysctls, addresses, up, routes. Routes are added as Go's
 * ConfigureIface adds them, netlink.RouteAddEcmp (NLM_F_CREATE without NLM_F_EXCL: `ip route prepend`):
 * an IPAM route equal to the pod subnet becomes a second route ahead of the connected one, and only an
 * identical route is in the way (EEXIST).
 */
export function configureIface(ifName: string, result: Result, o: { enabledad: boolean }): OpPlan {
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
  for (const r of result.routes ?? []) {
    const f: Family = isV4(r.dst) ? 4 : 6;
    const dst = formatRouteDst(r.dst);
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
    ops.push({ op: 'prependRoute', route: spec });
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
