// The traffic manager's types (flannel's pkg/trafficmngr/trafficmngr.go): masquerade rules for pod
// traffic leaving the Network (--ip-masq), FORWARD accept rules for the Network
// (--iptables-forward-rules, default on) and, not part of Go's interface but started at the same
// point of main, the blackhole route for our own subnet (--ip-blackhole-route). Two
// implementations, chosen by the config's EnableNFTables: IPTablesManager (iptables-manager.ts, the
// default) and NFTablesManager (nftables-manager.ts); start.ts runs main.go's sequence over them.
// This file holds types only, so that the implementations can import it without a cycle.
import type { IPNet } from '../../shared/net/ip.js';
import type { Iptables } from '../../shared/kernel/iptables.js';
import type { Nft } from '../../shared/kernel/nft.js';
import type { BlackholeKernel } from './blackhole.js';

/** What setupAndEnsureMasqRules needs; a family is set up when its network and subnet are both given. */
export interface MasqParams {
  network?: IPNet;
  subnet?: IPNet;
  /** FLANNEL_NETWORK / FLANNEL_SUBNET of the subnet.env this daemon found at start (the previous run) */
  prevNetwork?: IPNet;
  prevSubnet?: IPNet;
  ipv6Network?: IPNet;
  ipv6Subnet?: IPNet;
  prevIPv6Network?: IPNet;
  prevIPv6Subnet?: IPNet;
  resyncSeconds: number;
  randomFullyDisable: boolean;
}

export interface ForwardParams {
  network?: IPNet;
  ipv6Network?: IPNet;
  resyncSeconds: number;
}

/** Go's trafficmngr.TrafficManager (signal = ctx). */
export interface TrafficManager {
  /** Logs the mode; nftables creates its two tables (a failure here is fatal in main). */
  init(): Promise<void>;
  /** Removes this mode's state; run by the manager of the mode NOT selected. */
  cleanUp(): Promise<void>;
  /** Throws only when the previous run's rules could not be recycled (main exits 1, as Go). */
  setupAndEnsureMasqRules(signal: AbortSignal, p: MasqParams): Promise<void>;
  /** Never throws: failures are logged (and, in iptables mode, retried every resync period). */
  setupAndEnsureForwardRules(signal: AbortSignal, p: ForwardParams): Promise<void>;
  /** Resolves when every background loop this manager started has stopped. */
  done(): Promise<void>;
}

export interface TrafficKernel {
  iptables: Record<4 | 6, Iptables>;
  nft: Nft;
  /** the blackhole routes' */
  routes: BlackholeKernel;
}

export interface TrafficOptions {
  enableNFTables: boolean;
  ipMasq: boolean;
  ipMasqFullyRandomDisable: boolean;
  iptablesForwardRules: boolean;
  ipBlackholeRoute: boolean;
  /** --iptables-resync, seconds (also the blackhole period) */
  iptablesResync: number;
  /** the config's networks, each only when its family is enabled */
  network?: IPNet;
  ipv6Network?: IPNet;
  /** our lease's subnets */
  subnet?: IPNet;
  ipv6Subnet?: IPNet;
  previous: { network?: IPNet; subnet?: IPNet; ipv6Network?: IPNet; ipv6Subnet?: IPNet };
}
