// The traffic manager (flannel's pkg/trafficmngr): masquerade rules for pod traffic leaving the
// Network (--ip-masq), FORWARD accept rules for the Network (--iptables-forward-rules, default on)
// and, not part of Go's interface but started at the same point of main, the blackhole route for our
// own subnet (--ip-blackhole-route). Two implementations, chosen by the config's EnableNFTables:
// IPTablesManager (iptables-manager.ts, the default) and NFTablesManager (nftables-manager.ts).
//
// startTraffic is main.go's sequence (spec §5, §11 steps 11–12):
//   1. the OTHER mode's manager cleans up what it may have left (errors only logged);
//   2. init (nftables: creating the tables may fail → fatal, as Go exits 1);
//   3. --ip-masq: setupAndEnsureMasqRules (fatal only when recycling the previous run's rules fails);
//   4. --iptables-forward-rules: setupAndEnsureForwardRules (never fatal);
//   5. --ip-blackhole-route: the blackhole loop.
// Everything after the initial setup runs in background loops that stop when the signal aborts, log
// their failures and never end the daemon; `done` resolves once they all stopped. Nothing is removed
// on exit: rules and routes stay for the next start (zero-downtime restart).
import type { IPNet } from '../../shared/net/ip.js';
import type { BlackholeRoutes } from '../../shared/kernel/blackhole.js';
import type { Iptables } from '../../shared/kernel/iptables.js';
import type { Nft } from '../../shared/kernel/nft.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../log.js';
import { sleep as realSleep } from '../sleep.js';
import { runBlackholeRoutes } from './blackhole.js';
import { IPTablesManager } from './iptables-manager.js';
import { NFTablesManager } from './nftables-manager.js';

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

/** `(ms, signal) → true when the time passed, false when aborted` (daemon/sleep.ts; fakes in tests). */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<boolean>;

export interface TrafficKernel {
  iptables: Record<4 | 6, Iptables>;
  nft: Nft;
  blackhole: BlackholeRoutes;
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

export function newTrafficManager(useNFTables: boolean, k: TrafficKernel, log: Logger, sleep: Sleep = realSleep): TrafficManager {
  return useNFTables ? new NFTablesManager({ nft: k.nft, log }) : new IPTablesManager({ iptables: k.iptables, log, sleep });
}

/**
 * main.go from "clean up the other traffic manager" to the blackhole goroutines. Throws (with Go's
 * wording) what main treats as fatal; returns the promise of all background loops.
 */
export async function startTraffic(
  signal: AbortSignal,
  o: TrafficOptions,
  k: TrafficKernel,
  log: Logger,
  sleep: Sleep = realSleep,
): Promise<{ done: Promise<void> }> {
  let resync = o.iptablesResync;
  if (!(resync >= 1)) {
    // Go would spin on time.After(0); one second is the shortest period we run
    log.warn(`--iptables-resync=${o.iptablesResync} is below 1 second: resyncing every 1 s`);
    resync = 1;
  }
  const other = newTrafficManager(!o.enableNFTables, k, log, sleep);
  try {
    await other.cleanUp();
  } catch (err) {
    log.warn(`Failed to clean up the ${o.enableNFTables ? 'iptables' : 'nftables'} rules of a previous run: ${errorMessage(err)}`);
  }
  const tm = newTrafficManager(o.enableNFTables, k, log, sleep);
  try {
    await tm.init();
  } catch (err) {
    throw new Error(`Failed to initialize the traffic manager: ${errorMessage(err)}`, { cause: err });
  }
  if (o.ipMasq) {
    try {
      await tm.setupAndEnsureMasqRules(signal, {
        ...(o.network && o.subnet ? { network: o.network, subnet: o.subnet } : {}),
        ...(o.ipv6Network && o.ipv6Subnet ? { ipv6Network: o.ipv6Network, ipv6Subnet: o.ipv6Subnet } : {}),
        ...(o.previous.network ? { prevNetwork: o.previous.network } : {}),
        ...(o.previous.subnet ? { prevSubnet: o.previous.subnet } : {}),
        ...(o.previous.ipv6Network ? { prevIPv6Network: o.previous.ipv6Network } : {}),
        ...(o.previous.ipv6Subnet ? { prevIPv6Subnet: o.previous.ipv6Subnet } : {}),
        resyncSeconds: resync,
        randomFullyDisable: o.ipMasqFullyRandomDisable,
      });
    } catch (err) {
      throw new Error(`Failed to setup masq rules, ${errorMessage(err)}`, { cause: err });
    }
  }
  if (o.iptablesForwardRules) {
    await tm.setupAndEnsureForwardRules(signal, {
      ...(o.network ? { network: o.network } : {}),
      ...(o.ipv6Network ? { ipv6Network: o.ipv6Network } : {}),
      resyncSeconds: resync,
    });
  }
  const loops = [tm.done()];
  if (o.ipBlackholeRoute) {
    const subnets = [o.subnet, o.ipv6Subnet].filter((s): s is IPNet => s !== undefined);
    loops.push(runBlackholeRoutes(signal, k.blackhole, subnets, resync * 1000, log, sleep));
  }
  return { done: Promise.all(loops).then(() => undefined) };
}
