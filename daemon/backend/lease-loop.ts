// The lease loop every backend network runs (flannel's per-backend `Run` loops, once): peer lease
// batches from the subnet manager → PeerGuard (which leases may be programmed at all) → the last event
// per lease → the backend's handler, one batch at a time.
//
// - Serial: batches, periodic work (route check, device watchdog) and retries never interleave; each
//   runs after everything queued before it.
// - Never dies on a lease: a handler that throws (a bug, an unexpected kernel failure) is logged at
//   error level and the loop goes on; the handler's periodic work re-converges later.
// - The first batch is the snapshot of every current lease: once it is handled, the handler removes
//   what it finds in the kernel that no lease accounts for (`removeStale`; skipped when the snapshot
//   failed, as what to keep is then unknown), then `firstSync` settles, also after a failure (a daemon
//   waiting on it must not hang).
// - Continuous repair: a handler with `reconcile` has it run on kernel events (debounced) and every
//   `everyMs()` (reconcile.ts), both only after the first snapshot is programmed: before that, what the
//   kernel should hold is not known yet.
// - The convergence SLI: each lease event handed to the handler is observed in
//   `flannel_lease_event_to_programmed_seconds` as the time from its batch arriving from the subnet
//   manager (queueing behind earlier work included) to the handler finishing it. The snapshot is not:
//   it is startup, not an event.
// - Retries with back-off for leases the kernel refused (`scheduleRetry`), doubled up to 30 s; a new
//   event for the lease cancels its retry.
// - Memory: every serial job is reported to the idle collector (../memory/idle-collect.ts), which runs
//   bun's full GC once the loop is idle after a burst that grew the heap (never on one lease event).
import { errorMessage, type Logger } from '../../shared/log.js';
import { lastEventPerLease, type Lease, type LeaseEvent } from '../lease.js';
import { sleep } from '../sleep.js';
import type { PeerGuard } from './peer-guard.js';
import { recordLeaseProgrammed } from '../metrics/metrics.js';
import { ECHO_WINDOW, EventTrigger, type ReconcileSpec } from './reconcile.js';
import type { SubnetManager } from '../subnet/manager.js';
import { idleCollector, type IdleCollector } from '../memory/idle-collect.js';

/** What one backend does with accepted peer lease events. */
export interface LeaseHandler {
  /**
   * One batch: the last event of each accepted peer lease (key → event). `snapshot` is the raw first
   * batch (every lease in the datastore, of any backend type), only on the first call.
   */
  handleBatch(events: Map<string, LeaseEvent>, ctx: { snapshot?: readonly LeaseEvent[] }): Promise<void>;
  /** After the snapshot is handled: remove what an earlier run left for leases that are gone. */
  removeStale?(): Promise<void>;
  /** Leases whose retry is due (key → lease); reschedule or cancel each through the loop. */
  retry?(due: Map<string, Lease>): Promise<void>;
  /** Work done every `everyMs()` ms (re-read each round; ≤ 0: off), serialized with the batches. */
  periodic?: ReadonlyArray<{ everyMs: () => number; run: () => Promise<void> }>;
  /** Continuous repair (reconcile.ts): run on kernel events and periodically, after the first snapshot. */
  reconcile?: ReconcileSpec;
}

export interface LeaseLoopOptions {
  /** for the error line: `host-gw`, `vxlan` */
  name: string;
  subnetManager: Pick<SubnetManager, 'watchLeases'>;
  logger: Logger;
  /** which peer leases may be programmed at all; it also knows our own lease */
  guard: PeerGuard;
  /** first retry delay (ms), re-read at each schedule */
  retryDelay?: () => number;
  /** told when each serial job starts and ends, to collect garbage after bursts (default: the daemon's) */
  collector?: Pick<IdleCollector, 'busy' | 'idle'>;
}

const MAX_RETRY_DELAY = 30_000;

export class LeaseLoop {
  private tail: Promise<void> = Promise.resolve();
  private firstSyncDone: () => void = () => {};
  /** Settles once the first lease snapshot is handled and stale state removed (also on failure). */
  readonly firstSync = new Promise<void>((resolve) => (this.firstSyncDone = resolve));
  private readonly retries = new Map<string, { lease: Lease; delay: number; at: number }>();
  private retryTimer: NodeJS.Timeout | undefined;
  private signal: AbortSignal | undefined;
  private handler: LeaseHandler | undefined;
  /** serial jobs running (0 or 1) and when the last one ended: kernel events then are mostly their echo */
  private writing = 0;
  private lastWriteEnd = -Infinity;

  constructor(private readonly o: LeaseLoopOptions) {}

  /** Consumes lease batches until the signal aborts; a failing batch is logged, never fatal. */
  async run(signal: AbortSignal, handler: LeaseHandler): Promise<void> {
    this.signal = signal;
    this.handler = handler;
    this.o.logger.info('Watching for new subnet leases');
    const periodic = (handler.periodic ?? []).map((p) => this.every(p.everyMs, p.run, signal));
    const rec = handler.reconcile;
    const trigger = rec && new EventTrigger(rec, (f) => this.serial(f), () => this.writing > 0 || performance.now() - this.lastWriteEnd < ECHO_WINDOW);
    if (rec && trigger) {
      // both wait for the first snapshot (and its stale sweep): before it, every entry looks stale
      const aborted = new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      const synced = Promise.race([this.firstSync, aborted]).then(() => !signal.aborted && (trigger.start(), true));
      periodic.push(synced.then((go) => (go ? this.every(rec.everyMs, () => rec.run('periodic'), signal) : undefined)));
    }
    try {
      let first = true;
      for await (const batch of this.o.subnetManager.watchLeases(signal)) {
        if (signal.aborted) break;
        const arrived = performance.now();
        const snapshot = first;
        first = false;
        await this.serial(async () => {
          try {
            await this.handle(batch, snapshot, arrived);
            if (snapshot) await handler.removeStale?.();
          } finally {
            if (snapshot) this.firstSyncDone();
          }
        });
      }
    } finally {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      trigger?.stop();
      await Promise.all(periodic);
    }
  }

  /** One batch through the guard to the handler (called inside serial()). */
  private async handle(batch: readonly LeaseEvent[], snapshot: boolean, arrived: number): Promise<void> {
    const last = lastEventPerLease(this.o.guard.update(batch), (l) => this.o.guard.isOwn(l));
    for (const key of last.keys()) this.retries.delete(key);
    if (last.size === 0 && !snapshot) return;
    await this.handler!.handleBatch(last, snapshot ? { snapshot: batch } : {});
    if (!snapshot) {
      const seconds = (performance.now() - arrived) / 1000;
      for (let i = 0; i < last.size; i++) recordLeaseProgrammed(seconds);
    }
  }

  /** Settles when everything queued so far has run. */
  idle(): Promise<void> {
    return this.tail;
  }

  /** Runs f after everything queued before it; never rejects (a throw is logged at error level). */
  serial(f: () => Promise<void>): Promise<void> {
    const collector = this.o.collector ?? idleCollector;
    const guarded = async (): Promise<void> => {
      this.writing++;
      collector.busy();
      try {
        await f();
      } catch (err) {
        this.o.logger.error(`${this.o.name}: unexpected error: ${errorMessage(err)}`);
      } finally {
        this.writing--;
        this.lastWriteEnd = performance.now();
        // a snapshot, a big batch or a full reconcile leaves garbage bun would keep while idle (idle-collect.ts)
        collector.idle();
      }
    };
    const next = this.tail.then(guarded, guarded);
    this.tail = next;
    return next;
  }

  private async every(everyMs: () => number, run: () => Promise<void>, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const ms = everyMs();
      if (ms <= 0) return;
      if (!(await sleep(ms, signal))) return;
      await this.serial(run);
    }
  }

  // ---- retries with back-off ----------------------------------------------------------------------

  /** Retries `lease` later: first after retryDelay (1 s), then twice as long each time, up to 30 s. */
  scheduleRetry(key: string, lease: Lease): void {
    const prev = this.retries.get(key);
    const delay = prev ? Math.min(prev.delay * 2, MAX_RETRY_DELAY) : (this.o.retryDelay?.() ?? 1000);
    this.retries.set(key, { lease, delay, at: Date.now() + delay });
    this.armRetryTimer();
  }

  cancelRetry(key: string): void {
    this.retries.delete(key);
  }

  /** Leases waiting for a retry (key → lease and current delay), e.g. to keep their entries in a sweep. */
  pendingRetries(): Map<string, { lease: Lease; delay: number }> {
    return new Map([...this.retries].map(([k, r]) => [k, { lease: r.lease, delay: r.delay }]));
  }

  private armRetryTimer(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.retries.size === 0 || this.signal?.aborted) return;
    const next = Math.min(...[...this.retries.values()].map((r) => r.at));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.serial(() => this.runRetries());
    }, Math.max(0, next - Date.now()));
    this.retryTimer.unref?.();
  }

  private async runRetries(): Promise<void> {
    const now = Date.now();
    const due = new Map([...this.retries].filter(([, r]) => r.at <= now).map(([k, r]) => [k, r.lease]));
    try {
      if (due.size > 0) await this.handler?.retry?.(due);
    } finally {
      this.armRetryTimer();
    }
  }
}
