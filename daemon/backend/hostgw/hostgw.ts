// The host-gw backend (flannel's pkg/backend/hostgw/hostgw.go); network.ts and ../route-network.ts run it.
//
// Design notes.
// host-gw needs no device and no encapsulation: every host is the gateway for its own subnet, so for
// every remote host we write one plain kernel route
//     ip route replace <remote subnet> via <remote PublicIP> dev <external interface>
// (and the IPv6 subnet via the remote PublicIPv6), and packets for a remote pod leave with their
// original headers, routed to the remote host, which delivers them to its cni0 bridge. That only works
// if the remote PublicIP is on a network directly attached to the external interface: all hosts must
// share one L2 segment. The kernel refuses a gateway it cannot reach directly, and we keep it that way
// (no `onlink`, which would only blackhole the traffic) and explain it in the log; vxlan (with
// DirectRouting) is the backend for routed underlays. For the same reason a PublicIP that is not the
// interface's own address (NAT, --public-ip) cannot work: registration fails, as upstream's New.
// MTU = the external interface's (no overhead). The lease carries no BackendData:
//     {"PublicIP":"192.168.77.1","PublicIPv6":null,"BackendType":"host-gw"}
//
// Where we deliberately differ from upstream (see network.ts for the mechanics):
// - The NAT check fails registerNetwork (`Error registering network: your PublicIP differs ...`), not
//   backend creation (`Error fetching backend: ...`): our factories do not fail.
// - A peer lease without a PublicIP for a family is skipped for that family (upstream adds a route via
//   0.0.0.0, i.e. a direct route); upstream would also crash on a v6 lease with IPv6 disabled locally.
// - A known peer whose lease switches to another backend type has its route removed (upstream keeps it
//   in its route cache and re-adds it every 10 s).
// - The route check replaces a wanted route whose gateway or device was changed behind our back
//   (upstream's RouteAdd fails with EEXIST and logs).
// - One `ip -batch` per lease batch instead of 3 netlink calls per route, resumed past a failed line.
// - Stale routes of leases deleted while flanneld was down are removed after the first snapshot
//   (IPv4 only, unless an IPv6Network is given: see HostgwNetwork.removeStaleRoutes).
// - An existing route to the same destination in the main table with another metric is left alone
//   (upstream deletes the first route it lists for the destination, whatever its metric).
import { ipEqual, type IP } from '../../../shared/net/ip.js';
import { acquireLeaseFor, type Backend, type BackendDeps, type BackendNetworkConfig, type Network } from '../backend.js';
import type { LeaseAttrs } from '../../lease.js';
import { BACKEND_TYPE, HostgwNetwork } from './network.js';
import { underlayNetworks } from '../peer-guard.js';

export const NAT_ERROR =
  "your PublicIP differs from interface IP, meaning that probably you're on a NAT, which is not supported by host-gw backend";

export function createHostgwBackend(deps: BackendDeps): HostgwBackend {
  return new HostgwBackend(deps);
}

const sameIP = (a: IP | undefined, b: IP | undefined): boolean => (a === undefined || b === undefined ? a === b : ipEqual(a, b));

export class HostgwBackend implements Backend {
  constructor(private readonly deps: BackendDeps) {}

  async registerNetwork(signal: AbortSignal, config: BackendNetworkConfig): Promise<Network> {
    const { extIface, kernel, subnetManager } = this.deps;
    const logger = this.deps.logger;
    if (!sameIP(extIface.extAddr, extIface.ifaceAddr)) throw new Error(NAT_ERROR);
    const interval = this.deps.reconcileInterval;
    if (config.enableIPv6 && !sameIP(extIface.extV6Addr, extIface.ifaceV6Addr)) {
      // upstream checks IPv4 only; peers' routes via a v6 address that is not ours will not work
      logger.warn(`the public IPv6 differs from the address of ${extIface.iface.name}; host-gw routes need the interface's own address`);
    }
    const ifaceName = JSON.stringify(extIface.iface.name);
    const attrs: LeaseAttrs = { publicIP: { family: 4, value: 0n }, backendType: BACKEND_TYPE };
    if (config.enableIPv4) {
      if (!extIface.extAddr) throw new Error(`failed to find an IPv4 address on ${ifaceName} for the host-gw backend`);
      attrs.publicIP = extIface.extAddr;
    }
    if (config.enableIPv6) {
      if (!extIface.extV6Addr) throw new Error(`failed to find an IPv6 address on ${ifaceName} for the host-gw backend`);
      attrs.publicIPv6 = extIface.extV6Addr;
    }

    const lease = await acquireLeaseFor(subnetManager, attrs, signal);

    return new HostgwNetwork({
      subnetManager,
      kernel,
      logger,
      lease,
      extIface: extIface.iface.name,
      mtu: extIface.iface.mtu,
      enableIPv4: config.enableIPv4,
      enableIPv6: config.enableIPv6,
      ownAddrs: [extIface.ifaceAddr, extIface.ifaceV6Addr],
      underlay: await underlayNetworks(kernel, extIface.iface.name, (m) => logger.warn(m)),
      ...(config.network ? { network: config.network } : {}),
      ...(config.ipv6Network ? { ipv6Network: config.ipv6Network } : {}),
      ...(interval !== undefined ? { reconcileInterval: interval } : {}),
    });
  }
}
