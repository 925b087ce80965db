// startTraffic: main.go's traffic sequence (flannel's main.go, after the lease is acquired):
//   1. the OTHER mode's manager cleans up what it may have left (errors only logged);
//   2. init (nftables: creating the tables may fail → fatal, as Go exits 1);
//   3. --ip-masq: setupAndEnsureMasqRules (fatal only when recycling the previous run's rules fails);
//   4. --iptables-forward-rules: setupAndEnsureForwardRules (never fatal);
//   5. --ip-blackhole-route: the blackhole loop.
// Everything after the initial setup runs in background loops that stop when the signal aborts, log
// their failures and never end the daemon; `done` resolves once they all stopped. Nothing is removed
// on exit: rules and routes stay for the next start (zero-downtime restart).
import type { IPNet } from '../../shared/net/ip.js';
import { type Logger, errorMessage } from '../../shared/log.js';
import { type Sleep, sleep as realSleep } from '../sleep.js';
import { runBlackholeRoutes } from './blackhole.js';
import { IPTablesManager } from './iptables-manager.js';
import { NFTablesManager } from './nftables-manager.js';
import type { TrafficKernel, TrafficManager, TrafficOptions } from './traffic-manager.js';

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
    loops.push(runBlackholeRoutes(signal, k.routes, subnets, resync * 1000, log, sleep));
  }
  return { done: Promise.all(loops).then(() => undefined) };
}
