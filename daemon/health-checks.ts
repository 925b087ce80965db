// The conditions behind /readyz and /healthz (health.ts) that main.ts registers:
//   - DatastoreHealth: is the datastore reachable? Fed by the Kubernetes manager's watch health, or
//     for etcd by probeDatastore (a read of the network config key every few seconds: one small
//     GET, the cheapest request that proves etcd answers). Not ready once down for longer than the
//     grace (--datastore-down-grace), so that one lost request or a leader election does not make
//     every node of a cluster unready at once.
//   - leaseDue: the own lease should have been renewed (expiration - renew margin) and was not.
//     Readiness fails once it is overdue by the grace; liveness only when overdue by the stall
//     allowance while the datastore answers (the renewal loop is stuck, not etcd: a restart helps).
import { errorMessage } from '../shared/log.js';
import { formatNet } from '../shared/net/ip.js';
import type { Lease } from './lease.js';
import { recordDatastoreUp } from './metrics/metrics.js';
import { sleep } from './sleep.js';

export class DatastoreHealth {
  private downSince: number | undefined;
  private lastError = '';

  constructor(
    private readonly what: string,
    private readonly graceMs: number,
    private readonly now: () => number = Date.now,
  ) {
    recordDatastoreUp(true);
  }

  up(): void {
    this.downSince = undefined;
    recordDatastoreUp(true);
  }

  down(reason: string): void {
    this.downSince ??= this.now();
    this.lastError = reason;
    recordDatastoreUp(false);
  }

  isUp(): boolean {
    return this.downSince === undefined;
  }

  /** Readiness: the reason when the datastore has been unreachable for the grace or longer. */
  readonly check = (): string | undefined => {
    if (this.downSince === undefined) return undefined;
    const down = this.now() - this.downSince;
    if (down < this.graceMs) return undefined;
    return `${this.what} unreachable for ${Math.round(down / 1000)}s${this.lastError ? ` (${this.lastError})` : ''}`;
  };
}

/** Reads through `read` every `everyMs` (each read bounded by `timeoutMs`) and reports to `health`, until `signal` aborts. */
export async function probeDatastore(
  read: (signal: AbortSignal) => Promise<unknown>,
  health: DatastoreHealth,
  o: { everyMs: number; timeoutMs: number },
  signal: AbortSignal,
): Promise<void> {
  while (await sleep(o.everyMs, signal)) {
    try {
      await read(AbortSignal.any([signal, AbortSignal.timeout(o.timeoutMs)]));
      health.up();
    } catch (err) {
      if (signal.aborted) return;
      health.down(errorMessage(err));
    }
  }
}

/**
 * The reason when the own lease is `lateMs` or more past its renewal time (expiration - margin);
 * undefined for no lease, a reservation (never renewed) or a lease without expiry.
 */
export function leaseOverdue(lease: Lease | undefined, marginMs: number, lateMs: number, now: number): string | undefined {
  if (!lease || lease.reservation || !(lease.expiration > 0)) return undefined;
  const due = lease.expiration - marginMs;
  if (now - due < lateMs) return undefined;
  const name = lease.subnet ? formatNet(lease.subnet) : 'own lease';
  return `lease ${name} was due for renewal ${Math.round((now - due) / 1000)}s ago (expires ${new Date(lease.expiration).toISOString()})`;
}
