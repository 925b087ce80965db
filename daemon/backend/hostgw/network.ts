// The host-gw network: the shared lease loop (lease-loop.ts) driving a RouteNetwork (route-network.ts)
// whose route for a peer is `<peer subnet> via <peer PublicIP> dev <ext iface>`, one per family.
//
// The usual refusal is a peer that is not on our L2 segment (the kernel rejects a gateway that is not
// on a directly attached network): we say so, and never fall back to `onlink`, which would blackhole.
import type { Kernel, RouteSpec } from '../../../shared/kernel/kernel.js';
import type { Logger } from '../../../shared/log.js';
import { formatIP, formatNet, type Family, type IP, type IPNet } from '../../../shared/net/ip.js';
import type { SubnetManager } from '../../subnet/manager.js';
import type { Network } from '../backend.js';
import type { Lease } from '../../lease.js';
import { LeaseLoop } from '../lease-loop.js';
import { guardFor } from '../peer-guard.js';
import { DEFAULT_RECONCILE_INTERVAL } from '../reconcile.js';
import { ROUTE_CHECK_INTERVAL, RouteNetwork, type PeerRoute } from '../route-network.js';

export const BACKEND_TYPE = 'host-gw';
export { ROUTE_CHECK_INTERVAL };

export interface HostgwNetworkOptions {
  subnetManager: Pick<SubnetManager, 'watchLeases'>;
  kernel: Kernel;
  logger: Logger;
  lease: Lease;
  /** the external interface: every peer route goes out through it */
  extIface: string;
  mtu: number;
  enableIPv4: boolean;
  enableIPv6: boolean;
  /** the flannel `Network`: where the stale-route sweep looks for IPv4 leftovers (absent: no v4 sweep) */
  network?: IPNet;
  /** the flannel `IPv6Network`, likewise for IPv6 (absent: no v6 sweep) */
  ipv6Network?: IPNet;
  /** route check period (ms) where the kernel cannot watch (iproute2), Go's 10 s; 0 disables it */
  checkInterval?: number;
  /** periodic full reconcile (ms) where the kernel can watch, default 60 s; 0 disables it (events still repair) */
  reconcileInterval?: number;
  /** our own addresses besides the lease's PublicIPs: never a peer's */
  ownAddrs?: readonly (IP | undefined)[];
  /** the IPv4 networks on the external interface: a peer's PublicIP is not their broadcast address */
  underlay?: readonly IPNet[];
}

export class HostgwNetwork implements Network {
  private readonly loop: LeaseLoop;
  private readonly routes: RouteNetwork;
  /** Settles once the first lease snapshot is programmed and stale routes are removed. */
  readonly firstSync: Promise<void>;

  constructor(private readonly o: HostgwNetworkOptions) {
    const { logger } = o;
    const guard = guardFor(o);
    this.loop = new LeaseLoop({ name: BACKEND_TYPE, subnetManager: o.subnetManager, logger, guard });
    this.routes = new RouteNetwork({
      kernel: o.kernel,
      logger,
      own: o.lease,
      backendType: BACKEND_TYPE,
      extIface: o.extIface,
      enableIPv4: o.enableIPv4,
      enableIPv6: o.enableIPv6,
      ...(o.network ? { network: o.network } : {}),
      ...(o.ipv6Network ? { ipv6Network: o.ipv6Network } : {}),
      checkEvery: () => this.o.checkInterval ?? ROUTE_CHECK_INTERVAL,
      reconcileEvery: () => this.o.reconcileInterval ?? DEFAULT_RECONCILE_INTERVAL,
      routeFor: (lease, family) => this.routeFor(lease, family),
      refusalHint: (r, direct) =>
        direct === false
          ? `; ${r.via} is not on a network directly attached to ${r.dev}: host-gw needs every host on one L2 segment (use vxlan, with DirectRouting, across routers)`
          : '',
    });
    this.firstSync = this.loop.firstSync;
  }

  lease(): Lease {
    return this.o.lease;
  }

  mtu(): number {
    return this.o.mtu;
  }

  /** Timing knobs, read at each use (tests shorten them): route check / reconcile periods in ms, 0 = off. */
  get timing(): { checkInterval?: number; reconcileInterval?: number } {
    return this.o;
  }

  /** Known host-gw peers (lease key → lease), for tests and diagnostics. */
  knownPeers(): Map<string, Lease> {
    return this.routes.knownPeers();
  }

  /** Wanted routes (destination → route and whether the kernel took it), for tests and diagnostics. */
  wantedRoutes(): Map<string, { route: RouteSpec; ok: boolean; error?: string }> {
    return this.routes.wantedRoutes();
  }

  /** Settles when every batch and check queued so far has run. */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  run(signal: AbortSignal): Promise<void> {
    return this.loop.run(signal, this.routes);
  }

  /** One route check round now (Go's routeCheck), serialized with the batches. */
  checkRoutes(): Promise<void> {
    return this.loop.serial(() => this.routes.checkRoutes());
  }

  /** The route one family of a lease needs; a string says why the lease cannot be used for it. */
  private routeFor(lease: Lease, family: Family): PeerRoute | string | undefined {
    if (!(family === 4 ? this.o.enableIPv4 : this.o.enableIPv6)) return undefined;
    const subnet = family === 4 ? (lease.enableIPv4 ? lease.subnet : undefined) : lease.ipv6Subnet;
    if (!subnet) return undefined;
    const gw = family === 4 ? lease.attrs.publicIP : lease.attrs.publicIPv6;
    if (subnet.family !== family) return `its IPv${family} subnet ${formatNet(subnet)} is not IPv${family}`;
    if (!gw || gw.value === 0n || gw.family !== family) return `no public IPv${family}`;
    return { dst: formatNet(subnet), via: formatIP(gw), dev: this.o.extIface };
  }
}
