// The alloc backend (pkg/backend/alloc): acquires the lease and programs nothing. Its network
// still consumes the peer lease stream and logs it (Go's SimpleNetwork just waits), so the daemon's
// lease handling can be observed and measured end to end without a data plane.
import { formatNet } from '../../shared/net/ip.js';
import type { Lease, LeaseAttrs } from '../lease.js';
import type { Backend, BackendDeps, BackendNetworkConfig, Network } from './backend.js';
import type { Logger } from '../../shared/log.js';
import { idleCollector } from '../memory/idle-collect.js';

/** Batches larger than this are logged as a count, not lease by lease. */
const LOG_EACH_UP_TO = 10;

export function createAllocBackend(deps: BackendDeps): Backend {
  return {
    async registerNetwork(signal: AbortSignal, config: BackendNetworkConfig): Promise<Network> {
      const attrs: LeaseAttrs = { publicIP: deps.extIface.extAddr ?? { family: 4, value: 0n } };
      if (config.enableIPv6 && deps.extIface.extV6Addr) attrs.publicIPv6 = deps.extIface.extV6Addr;
      const lease = await deps.subnetManager.acquireLease(attrs, signal);
      return new AllocNetwork(lease, deps, deps.logger);
    },
  };
}

class AllocNetwork implements Network {
  constructor(
    private readonly own: Lease,
    private readonly deps: BackendDeps,
    private readonly log: Logger,
  ) {}

  lease(): Lease {
    return this.own;
  }

  mtu(): number {
    return this.deps.extIface.iface.mtu;
  }

  async run(signal: AbortSignal): Promise<void> {
    let first = true;
    for await (const batch of this.deps.subnetManager.watchLeases(signal)) {
      idleCollector.busy();
      // the first batch is the snapshot of every lease at start (scripts/bench/leases.mjs times it)
      if (first) this.log.info(`Lease snapshot: ${batch.length} peers`);
      first = false;
      if (batch.length <= LOG_EACH_UP_TO) {
        for (const e of batch) {
          this.log.info(`Subnet ${e.type === 'added' ? 'added' : 'removed'}: ${formatNet(e.lease.subnet)}`);
        }
      } else {
        const added = batch.filter((e) => e.type === 'added').length;
        this.log.info(`Lease batch: ${added} added, ${batch.length - added} removed`);
      }
      // the listing and parsing behind a large batch leave garbage bun keeps while idle (idle-collect.ts)
      idleCollector.idle();
    }
  }
}
