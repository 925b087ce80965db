// Continuous repair of the data path: what a backend's reconcile shares with every other backend.
//
// A backend handler (vxlan, host-gw) owns one `reconcile()`: read its devices' routes, neighbours and
// FDB entries, diff them against the desired state computed from the leases it holds, and write only
// the difference (applyResumable / removeBestEffort). This file holds what is the same everywhere:
// - WHEN it runs (`Reconcile`, started by the LeaseLoop once the first snapshot is programmed): on
//   kernel change notifications (`Kernel.watch`), debounced and coalesced so that a burst of events
//   (our own batch of 5000 writes echoing back, `ip route flush`) costs one reconcile; on `resync`
//   (the netlink socket lost events); and every `everyMs()` as the net for what events miss (the only
//   trigger with the iproute2 adapter, which cannot watch). Always inside the loop's `serial`, so it
//   never interleaves with a lease batch.
// - HOW a repair is reported (`RepairLog`): one info line per object (`Repaired route 10.244.2.0/24
//   via 10.244.2.0 dev flannel.1 (was missing)`) and a `flannel_repairs_total` count per repair. An
//   object someone keeps breaking is logged once, not on every repair, until a periodic round finds it
//   healthy (events come right after our own repair, so only the periodic round can tell that the
//   object stayed healthy); the counter still counts every repair.
import type { KernelEvent } from '../../shared/kernel/kernel.js';
import type { Logger } from '../../shared/log.js';
import { recordRepair, type RepairKind } from '../metrics/metrics.js';

/** The periodic full reconcile (issue 11: "a periodic full reconcile (default 60 s) catches what events miss"). */
export const DEFAULT_RECONCILE_INTERVAL = 60_000;
/** The environment variable of `--reconcile-interval` (daemon/options.ts fills every flag from its variable). */
const RECONCILE_INTERVAL_ENV = 'FLANNELD_RECONCILE_INTERVAL';

/**
 * A reconcile interval in ms (`500ms`, `2s`, `1m`, or plain milliseconds; `0` turns the periodic round
 * off); undefined when unset or empty. A value that cannot be read is an error naming `what` (the flag
 * or variable it came from): a typo must not silently leave the default in place.
 */
export function parseReconcileInterval(raw: string | undefined, what: string): number | undefined {
  const v = raw?.trim();
  if (v === undefined || v === '') return undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v);
  if (!m) throw new Error(`${what}=${v}: expected a duration such as 500ms, 2s or 1m`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n);
}

/** The reconcile interval from `FLANNELD_RECONCILE_INTERVAL` in `env` (parseReconcileInterval). */
export function reconcileIntervalFromEnv(env: Record<string, string | undefined> = process.env): number | undefined {
  return parseReconcileInterval(env[RECONCILE_INTERVAL_ENV], RECONCILE_INTERVAL_ENV);
}

/** How long events are gathered before one reconcile (a batch of our own writes echoes back within it). */
export const DEFAULT_DEBOUNCE = 50;

/** Why a reconcile runs: periodic rounds also settle the RepairLog (see there). */
export type ReconcileTrigger = 'event' | 'periodic';

/** What a handler gives the LeaseLoop to be reconciled (LeaseHandler.reconcile). */
export interface ReconcileSpec {
  /** Kernel.watch of the handler's namespace, if the adapter can watch */
  watch?: (onEvent: (ev: KernelEvent) => void) => { close(): void };
  /** whether an event can concern us (a veth of a pod coming and going does not); default all */
  relevant?(ev: KernelEvent): boolean;
  /** the full reconcile */
  run(trigger: ReconcileTrigger): Promise<void>;
  /** periodic full reconcile period in ms, re-read each round (≤ 0: off) */
  everyMs(): number;
  debounceMs?: number;
}

/**
 * Turns kernel events into reconciles: the first relevant event arms a timer of `debounceMs`; events
 * until it fires ride along; when it fires, one reconcile is queued unless one is queued already and
 * not yet started (it will read the kernel after these events anyway).
 */
export class EventTrigger {
  private timer: NodeJS.Timeout | undefined;
  private queued = false;
  private sub: { close(): void } | undefined;

  constructor(
    private readonly spec: ReconcileSpec,
    private readonly serial: (f: () => Promise<void>) => Promise<void>,
    /** whether the loop is writing now or finished writing within ECHO_WINDOW ms (see isEcho) */
    private readonly writingRecently: () => boolean = () => false,
  ) {}

  /**
   * Subscribes, then reconciles once: whatever changed between the snapshot being programmed and the
   * subscription is not missed (false: the adapter cannot watch, the periodic round is all there is).
   */
  start(): boolean {
    if (!this.spec.watch) return false;
    this.sub = this.spec.watch((ev) => this.onEvent(ev));
    this.onEvent({ kind: 'resync' });
    return true;
  }

  stop(): void {
    this.sub?.close();
    this.sub = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onEvent(ev: KernelEvent): void {
    if (this.sub === undefined || this.timer !== undefined) return;
    if (ev.kind !== 'resync' && this.spec.relevant && !this.spec.relevant(ev)) return;
    if (isEcho(ev, this.writingRecently())) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.queued) return;
      this.queued = true;
      void this.serial(async () => {
        this.queued = false;
        await this.spec.run('event');
      });
    }, this.spec.debounceMs ?? DEFAULT_DEBOUNCE);
    this.timer.unref?.();
  }
}

/**
 * How long after the loop's own writes a new/changed route, neighbour or FDB entry is taken for their
 * echo (the monitor drains every 10–100 ms; a loaded machine adds to that).
 */
export const ECHO_WINDOW = 300;

/**
 * Our own writes echo back as "new" route/neighbour/FDB events. Reconciling on each of them cost a full
 * dump of the device (100–300 ms at 5000 peers) that the next lease event then waited behind (one-event
 * p99 175 ms in `converge`). So while the loop writes, and for ECHO_WINDOW after, such events do not
 * trigger a reconcile. Deletions, link and address changes and resyncs always do: our writes rarely make
 * those, and they are what breaks a data path. A foreign change to an entry that lands inside the window
 * is caught by the periodic round.
 */
export function isEcho(ev: KernelEvent, writingRecently: boolean): boolean {
  return writingRecently && (ev.kind === 'route' || ev.kind === 'neigh' || ev.kind === 'fdb') && !ev.deleted;
}

/** One repaired (or removed) kernel object, as logged. */
export interface Repair {
  kind: RepairKind;
  action: 'restored' | 'removed';
  /** identifies the object across rounds, e.g. `route|flannel.1|10.244.2.0/24` */
  key: string;
  /** the log line: `Repaired route 10.244.2.0/24 via 10.244.2.0 dev flannel.1 (was missing)` */
  line: string;
}

/** Logs each repaired object once until it is seen healthy by a periodic round, and counts every repair. */
export class RepairLog {
  /** keys logged and not yet seen healthy by a periodic round → repairs since the line was logged */
  private readonly open = new Map<string, number>();

  constructor(private readonly logger: Logger) {}

  /** A repair that was written successfully. */
  repaired(r: Repair): void {
    recordRepair(r.kind, r.action);
    const n = this.open.get(r.key);
    if (n === undefined) {
      this.open.set(r.key, 0);
      this.logger.info(r.line);
    } else {
      this.open.set(r.key, n + 1);
    }
  }

  /** A repair the kernel refused: logged once per object like a repair (error level), not counted. */
  failed(r: Repair, err: string): void {
    const key = `failed|${r.key}`;
    if (this.open.has(key)) return;
    this.open.set(key, 0);
    this.logger.error(`${r.line.replace(/^(Repaired|Removed)/, (w) => (w === 'Repaired' ? 'Failed to repair' : 'Failed to remove'))}: ${err}`);
  }

  /**
   * After a periodic round: the objects that needed no repair in it (`broken` holds the keys that did)
   * are healthy again; a later repair of one of them is logged again, with how often it was repaired
   * meanwhile when more than once.
   */
  settle(broken: ReadonlySet<string>): void {
    for (const [key, n] of this.open) {
      const base = key.startsWith('failed|') ? key.slice(7) : key;
      if (broken.has(base)) continue;
      this.open.delete(key);
      if (n > 0) this.logger.info(`${base.replace(/\|/g, ' ')}: repaired ${n} more times after it was first logged; healthy again`);
    }
  }
}
