// Backends program the data path for one network. Wiring, as flannel's pkg/backend/common.go:
//   const backend = BACKENDS[config.backendType](deps)     (registry.ts, no side-effect registration)
//   const network = await backend.registerNetwork(signal, config)   → acquires our lease
//   await network.run(signal)   → consumes peer lease events until the signal aborts
import type { IP, IPNet } from '../../shared/net/ip.js';
import type { Kernel } from '../../shared/kernel/kernel.js';
import type { Lease, LeaseAttrs } from '../lease.js';
import type { Logger } from '../../shared/log.js';
import type { SubnetManager } from '../subnet/manager.js';

/** The host's underlay interface and addresses (pkg/ipmatch LookupExtIface). */
export interface ExternalInterface {
  iface: { name: string; index: number; mtu: number };
  /** address of iface used as the VXLAN local/source address */
  ifaceAddr?: IP;
  ifaceV6Addr?: IP;
  /** the address peers reach us at (--public-ip, else ifaceAddr) */
  extAddr?: IP;
  extV6Addr?: IP;
}

/** What a backend needs of the subnet manager (daemon/subnet/manager.ts, Go's subnet.Manager). */
export type BackendSubnetManager = Pick<SubnetManager, 'acquireLease' | 'watchLeases' | 'listLeases' | 'name' | 'storedMacAddresses'>;

export interface Network {
  lease(): Lease;
  mtu(): number;
  /** Runs until the signal aborts; must never throw for one bad lease (log and skip it). */
  run(signal: AbortSignal): Promise<void>;
  /** Settles once the first lease snapshot is programmed (readiness: "peers programmed"). */
  readonly firstSync?: Promise<void>;
}

export interface Backend {
  registerNetwork(signal: AbortSignal, config: BackendNetworkConfig): Promise<Network>;
}

export interface BackendNetworkConfig {
  enableIPv4: boolean;
  enableIPv6: boolean;
  /** the raw `Backend` object of the network config, e.g. {"Type":"vxlan","VNI":100,"Port":8472} */
  backend: Record<string, unknown>;
  /** the config's `Network` (IPv4), when enabled: vxlan keeps device addresses outside it, as Go */
  network?: IPNet;
  /** the config's `IPv6Network`, when enabled */
  ipv6Network?: IPNet;
}

export interface BackendDeps {
  subnetManager: BackendSubnetManager;
  extIface: ExternalInterface;
  kernel: Kernel;
  /** flannel's data dir for state kept across restarts (e.g. the VtepMAC) */
  stateDir: string;
  /** leveled: a lease that fails to program is an error, a refused or skipped one a warning, progress info */
  logger: Logger;
  /** The periodic full reconcile of the data path in ms (reconcile.ts; unset: the default 60 s; 0: off). */
  reconcileInterval?: number;
}

export type BackendFactory = (deps: BackendDeps) => Backend;

/** acquireLease, with Go's "failed to acquire lease" context on a failure that is not our own abort. */
export async function acquireLeaseFor(sm: Pick<SubnetManager, 'acquireLease'>, attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease> {
  try {
    return await sm.acquireLease(attrs, signal);
  } catch (err) {
    if (signal.aborted) throw err;
    throw new Error(`failed to acquire lease: ${(err as Error).message}`, { cause: err });
  }
}
