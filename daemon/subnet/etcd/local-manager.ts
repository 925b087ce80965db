// LocalManager (pkg/subnet/etcd/local_manager.go): the lease policy on top of a Registry.
//
// acquireLease (one attempt: acquire.ts): reuse the lease holding our PublicIP, else the previous
// subnet from subnet.env, else a random pick among the first 100 free subnets; create with a
// Version==0 txn and a 24 h lease. Fixes over Go:
//   - a lost creation race (LeaseConflictError) is retried with a fresh listing (Go exits 1);
//   - a reservation (key without an etcd lease) is reused as one: it is re-put without a lease and
//     never renewed, where Go attaches a 24 h lease to it (flannel-io/flannel#1329);
//   - etcd outages (recoverable errors) are retried with back-off instead of failing the start.
// completeLease: renew at expiration - margin (a new Grant(24h) + Put, as Go), retrying every
// minute through outages, while watching our own key (own-lease-watch.ts).
// Own lease removed (expired or deleted): Go logs "Lease has been revoked. Shutting down daemon."
// and exits 0; a supervisor then restarts it and it re-takes the same subnet from subnet.env if it
// is still free. We do that re-take in place: re-create the same key with the Version==0 txn. The
// txn can only succeed if nobody holds the subnet, so it never steals one, and the node keeps its
// pods' addresses and its data path with no restart gap (and without a supervisor, as in the lab,
// the node keeps working instead of dying). If another node has taken the subnet meanwhile, our
// pods' addresses now belong to it: completeLease rejects and the daemon exits non-zero, so that a
// supervisor restarts it onto a new subnet.
// watchLeases (peer-watch.ts): peer batches from a snapshot, then the watch from the snapshot
// revision + 1; compaction → re-list (LeaseWatcher.reset), broken stream → reconnect. A bad key or value is logged and skipped by the registry; it never causes a reset, so it can
// never remove healthy peers (Go's mass-removal hazard).
import { formatIP, formatNet, ipEqual } from '../../../shared/net/ip.js';
import type { SubnetManager } from '../manager.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../../lease.js';
import { type Logger, NOOP_LOGGER, errorMessage } from '../../../shared/log.js';
import { Backoff, sleep } from '../../sleep.js';
import { type Config, parseAndCheckConfig } from '../config.js';
import type { PreviousSubnets } from '../subnet-file.js';
import { isRecoverableError } from './etcd-client.js';
import { DEFAULT_LIVE_WINDOW_MS } from './public-ip-reuse.js';
import { LeaseConflictError, type ReadHeader, type Registry, SUBNET_TTL_SEC, describeSubnet } from './registry.js';
import { tryAcquireLease } from './acquire.js';
import { type OwnEvent, type OwnLeaseWatchDeps, watchOwnLease } from './own-lease-watch.js';
import { watchPeerLeases } from './peer-watch.js';
import { recordLeaseRenewal } from '../../metrics/metrics.js';
import { StoreResetDetector } from './store-reset.js';

export interface LocalManagerOptions {
  registry: Registry;
  previous?: PreviousSubnets;
  /** renew this long before expiry (--subnet-lease-renew-margin), default 60 min */
  renewMarginMs?: number;
  log?: Logger;
  random?: () => number;
  now?: () => number;
  /** lease TTL in seconds, default 24 h (tests shorten it) */
  ttlSec?: number;
  /** wait after a failed renewal, default 1 min */
  renewRetryMs?: number;
  /** attempts on a lost creation race, default 100 */
  raceRetries?: number;
  /**
   * Without a previous subnet, a lease with our PublicIP renewed less than this ago is taken to be
   * another live node's (public-ip-reuse.ts), default 10 min.
   */
  liveWindowMs?: number;
  /**
   * After an etcd reset (or a compacted watch), peers missing from the new store keep their routes
   * this long, so that their owners can re-create them (store-reset.ts), default 15 s.
   */
  resetGraceMs?: number;
}

export class LocalManager implements SubnetManager {
  private readonly registry: Registry;
  private previous: PreviousSubnets;
  private readonly renewMarginMs: number;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly ttlSec: number;
  private readonly renewRetryMs: number;
  private readonly raceRetries: number;
  private readonly liveWindowMs: number;
  private readonly resetGraceMs: number;
  private readonly store = new StoreResetDetector();
  /** the own-key loop's (completeLease) */
  private readonly resetListeners = new Set<(reason: string) => void>();
  /** watchLeases' */
  private readonly peerResyncListeners = new Set<(reason: string) => void>();
  private ownLease: Lease | undefined;
  private ownAttrs: LeaseAttrs | undefined;
  private config: Config | undefined;
  private readonly ownLeaseListeners = new Set<(l: Lease) => void>();

  constructor(o: LocalManagerOptions) {
    this.registry = o.registry;
    this.previous = o.previous ?? {};
    this.renewMarginMs = o.renewMarginMs ?? 60 * 60 * 1000;
    this.log = o.log ?? NOOP_LOGGER;
    this.random = o.random ?? Math.random;
    this.now = o.now ?? Date.now;
    this.ttlSec = o.ttlSec ?? SUBNET_TTL_SEC;
    this.renewRetryMs = o.renewRetryMs ?? 60_000;
    this.raceRetries = o.raceRetries ?? 100;
    this.liveWindowMs = o.liveWindowMs ?? DEFAULT_LIVE_WINDOW_MS;
    this.resetGraceMs = o.resetGraceMs ?? 15_000;
  }

  name(): string {
    return `Etcd Local Manager with Previous Subnet: ${this.previous.subnet ? formatNet(this.previous.subnet) : 'None'}`;
  }

  /** Replaces the subnets from the previous run (main may learn them after construction). */
  setPrevious(p: PreviousSubnets): void {
    this.previous = p;
  }

  async listLeases(signal: AbortSignal): Promise<Lease[]> {
    return (await this.registry.getSubnets(signal)).leases;
  }

  /** The current own lease (after acquireLease), kept up to date by completeLease. */
  lease(): Lease | undefined {
    return this.ownLease;
  }

  async getNetworkConfig(signal?: AbortSignal): Promise<Config> {
    const text = await this.registry.getNetworkConfig(signal);
    this.config = parseAndCheckConfig(text);
    return this.config;
  }

  async acquireLease(attrs: LeaseAttrs, signal: AbortSignal): Promise<Lease> {
    const backoff = new Backoff(100, 5000);
    let conflicts = 0;
    for (;;) {
      signal.throwIfAborted();
      try {
        const cfg = await this.getNetworkConfig(signal);
        const lease = await tryAcquireLease(
          {
            registry: this.registry,
            log: this.log,
            now: this.now,
            random: this.random,
            ttlSec: this.ttlSec,
            liveWindowMs: this.liveWindowMs,
            previous: this.previous,
            held: this.ownLease,
            observe: (h) => this.store.observe(h), // nothing listens yet
          },
          cfg,
          attrs,
          signal,
        );
        this.ownLease = lease;
        this.ownAttrs = attrs;
        return lease;
      } catch (err) {
        if (signal.aborted) throw err;
        if (err instanceof LeaseConflictError) {
          if (++conflicts >= this.raceRetries) throw new Error(`failed to acquire lease: ${err.message}`, { cause: err });
          this.log.info(`subnet ${JSON.stringify(err.key)} was taken by another node meanwhile, trying again`);
          await sleep(10 + Math.floor(this.random() * 90), signal);
          continue;
        }
        if (isRecoverableError(err)) {
          const d = backoff.step();
          this.log.warn(`failed to acquire lease (trying again in ${d} ms): ${errorMessage(err)}`);
          await sleep(d, signal);
          continue;
        }
        throw new Error(`failed to acquire lease: ${errorMessage(err)}`, { cause: err });
      }
    }
  }

  /** RenewLease: a new Grant(24 h) and an unconditional Put of our attrs. */
  async renewLease(lease: Lease, signal?: AbortSignal): Promise<Lease> {
    const exp = await this.registry.updateSubnet(lease.subnet, lease.ipv6Subnet, lease.attrs, this.ttlSec, signal);
    const renewed: Lease = { ...lease, expiration: exp ?? this.now() - 1000 };
    delete renewed.reservation;
    this.setOwn(renewed);
    return renewed;
  }

  private setOwn(l: Lease): void {
    this.ownLease = l;
    for (const f of this.ownLeaseListeners) f(l);
  }

  /**
   * Keeps our lease alive until `signal` aborts (resolves). Rejects only when the subnet has been
   * taken by another node after our lease vanished.
   */
  async completeLease(lease: Lease, signal: AbortSignal): Promise<void> {
    let current = lease;
    this.ownLease = lease;
    const local = new AbortController();
    const onAbort = () => local.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    // Own-key events from a background watch, queued for this loop.
    const queue: OwnEvent[] = [];
    let wake: (() => void) | undefined;
    const watcher = watchOwnLease(this.watchDeps(), current, local.signal, (ev) => {
      queue.push(ev);
      wake?.();
    });
    try {
      for (;;) {
        if (signal.aborted) return;
        const waitMs = current.reservation ? 2 ** 31 - 1 : current.expiration - this.now() - this.renewMarginMs;
        if (queue.length === 0) {
          if (!current.reservation) this.log.info(`Waiting for ${Math.max(0, Math.round(waitMs / 1000))}s to renew lease`);
          const timer = new AbortController();
          const abortTimer = () => timer.abort();
          local.signal.addEventListener('abort', abortTimer, { once: true });
          wake = () => timer.abort();
          await sleep(waitMs, timer.signal);
          wake = undefined;
          local.signal.removeEventListener('abort', abortTimer);
        }
        if (signal.aborted) return;

        const ev = queue.shift();
        if (ev?.type === 'reset') {
          current = await this.restoreAfterReset(current, signal);
          this.setOwn(current);
          continue;
        }
        if (ev?.type === 'added') {
          if (!ipEqual(ev.lease.attrs.publicIP, current.attrs.publicIP)) {
            throw new Error(
              `lease ${describeSubnet(current.subnet, current.ipv6Subnet)} was revoked and is now held by ${formatIP(ev.lease.attrs.publicIP)}: shutting down`,
            );
          }
          // our own renewals, or an operator's edit (e.g. turning the lease into a reservation)
          current = this.adopt(current, ev.lease);
          this.setOwn(current);
          continue;
        }
        if (ev?.type === 'removed') {
          // a later event in the queue may already show a new holder: let it decide
          if (queue.some((q) => q.type === 'added')) continue;
          current = await this.reclaim(current, signal);
          this.setOwn(current);
          continue;
        }
        if (ev) continue;
        if (current.reservation) continue;
        try {
          current = await this.renewLease(current, signal);
          recordLeaseRenewal('success');
          this.log.info('Lease renewed, new expiration: ' + new Date(current.expiration).toISOString());
        } catch (err) {
          if (signal.aborted) return;
          recordLeaseRenewal('failure');
          this.log.error(`Error renewing lease (trying again in ${Math.round(this.renewRetryMs / 1000)}s): ${errorMessage(err)}`);
          await sleep(this.renewRetryMs, signal);
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      local.abort();
      await watcher;
    }
  }

  /**
   * Our lease as the registry reports our key now: its reservation flag and its expiration, except
   * that an unknown expiration (0: etcd's TimeToLive lookup failed, see registry.ts) never replaces
   * the one we know. Taking the 0 would put the renew timer in the past: a renewal at once, whose own
   * put comes back on the own-key watch, whose lookup fails again, and so on, each round a Grant+Put
   * that leaves the previous 24 h etcd lease behind as an orphan. Keeping the known expiration is
   * the safest choice rather than re-looking it up with back-off: such an event is nearly always the
   * echo of our own create or renewal, whose expiration we already hold from the Grant response, so
   * it is exact, costs no extra round trip and cannot loop. If instead an operator re-put our key
   * with a shorter lease, the worst case is that the key expires before we renew: the watch then
   * reports `removed` and we re-take the subnet in place (reclaim). If the known expiration is
   * itself stale (we held a reservation), we renew once, and that renewal's Grant is then known.
   */
  private adopt(current: Lease, reported: Lease): Lease {
    const l: Lease = { ...current, expiration: reported.expiration };
    if (reported.reservation) l.reservation = true;
    else delete l.reservation;
    if (!reported.reservation && reported.expiration === 0) {
      l.expiration = current.expiration;
      this.log.warn(
        `could not look up the TTL of our lease ${describeSubnet(current.subnet, current.ipv6Subnet)}: keeping the known expiration ${new Date(current.expiration).toISOString()}`,
      );
    }
    return l;
  }

  /**
   * The store was reset (store-reset.ts): re-create our key with the same subnet (the Version==0
   * txn, so never over another node), or, if the key survived (a restored snapshot), renew it at
   * once so that its TTL and attributes are ours again. Rejects only when another node holds it.
   */
  private async restoreAfterReset(current: Lease, signal: AbortSignal): Promise<Lease> {
    const backoff = new Backoff(100, 5000);
    for (;;) {
      signal.throwIfAborted();
      try {
        const { lease: now } = await this.registry.getSubnet(current.subnet, current.ipv6Subnet, signal);
        if (!now) return await this.reclaim(current, signal, 'after the etcd reset');
        if (!ipEqual(now.attrs.publicIP, current.attrs.publicIP)) {
          throw new Error(
            `lease ${describeSubnet(current.subnet, current.ipv6Subnet)} is held by ${formatIP(now.attrs.publicIP)} after the etcd reset: shutting down`,
          );
        }
        if (now.reservation) return this.adopt(current, now);
        const renewed = await this.renewLease(current, signal);
        this.log.info(
          `Our lease ${describeSubnet(current.subnet, current.ipv6Subnet)} survived the etcd reset: renewed it, new expiration ${new Date(renewed.expiration).toISOString()}`,
        );
        return renewed;
      } catch (err) {
        if (!isRecoverableError(err) || signal.aborted) throw err;
        const d = backoff.step();
        this.log.warn(`failed to restore our lease after the etcd reset (trying again in ${d} ms): ${errorMessage(err)}`);
        await sleep(d, signal);
      }
    }
  }

  /** Our key vanished: re-create it (Version==0 txn) or give up if another node holds it now. */
  private async reclaim(current: Lease, signal: AbortSignal, why?: string): Promise<Lease> {
    const what = describeSubnet(current.subnet, current.ipv6Subnet);
    if (why) this.log.warn(`Our lease ${what} is missing ${why}: re-creating it with the same subnet`);
    else this.log.warn(`Lease has been revoked: re-acquiring ${what}`);
    const backoff = new Backoff(100, 5000);
    for (;;) {
      signal.throwIfAborted();
      try {
        const exp = await this.registry.createSubnet(current.subnet, current.ipv6Subnet, current.attrs, this.ttlSec, signal);
        this.log.info(`Re-acquired lease ${what}`);
        const l: Lease = { ...current, expiration: exp };
        delete l.reservation;
        return l;
      } catch (err) {
        if (err instanceof LeaseConflictError) {
          const { lease: holder } = await this.registry.getSubnet(current.subnet, current.ipv6Subnet, signal);
          if (holder && ipEqual(holder.attrs.publicIP, current.attrs.publicIP)) return this.adopt(current, holder);
          if (!holder) continue;
          throw new Error(`lease ${what} was revoked and is now held by ${formatIP(holder.attrs.publicIP)}: shutting down`);
        }
        if (!isRecoverableError(err) || signal.aborted) throw err;
        const d = backoff.step();
        this.log.warn(`failed to re-acquire lease (trying again in ${d} ms): ${errorMessage(err)}`);
        await sleep(d, signal);
      }
    }
  }

  /** A linearizable read's header: a store reset found here is announced to both watch loops. */
  private checkStore(h: ReadHeader): void {
    const reason = this.store.observe(h);
    if (reason !== undefined) this.storeReset(reason);
  }

  private storeReset(reason: string): void {
    this.log.warn(`etcd store reset detected: ${reason}; re-creating our lease with the same subnet and re-listing peers`);
    for (const f of [...this.resetListeners]) f(reason);
    this.requestPeerResync(reason);
  }

  private onStoreReset(f: (reason: string) => void): () => void {
    this.resetListeners.add(f);
    return () => this.resetListeners.delete(f);
  }

  /** Re-list peers with the reset grace, without touching our own lease (it is handled apart). */
  private requestPeerResync(reason: string): void {
    for (const f of [...this.peerResyncListeners]) f(reason);
  }

  onOwnLeaseChange(f: (l: Lease) => void): () => void {
    this.ownLeaseListeners.add(f);
    return () => this.ownLeaseListeners.delete(f);
  }


  /**
   * Peer lease batches: the first batch is the snapshot (every peer `added`, possibly empty), then
   * changes. Never throws for etcd trouble: it retries until `signal` aborts, then ends (peer-watch.ts).
   */
  async *watchLeases(signal: AbortSignal): AsyncGenerator<LeaseEvent[]> {
    yield* watchPeerLeases(
      {
        ...this.watchDeps(),
        now: this.now,
        resetGraceMs: this.resetGraceMs,
        flags: { enableIPv4: true, enableIPv6: this.config?.enableIPv6 ?? this.ownLease?.enableIPv6 ?? false },
        ownLease: this.ownLease,
        onOwnLeaseChange: (f) => this.onOwnLeaseChange(f),
        onPeerResync: (f) => {
          this.peerResyncListeners.add(f);
          return () => this.peerResyncListeners.delete(f);
        },
      },
      signal,
    );
  }

  /** What both watch loops share: the registry, the log, and the store-reset bookkeeping. */
  private watchDeps(): OwnLeaseWatchDeps {
    return {
      registry: this.registry,
      log: this.log,
      checkStore: (h) => this.checkStore(h),
      sawRevision: (r) => this.store.saw(r),
      onStoreReset: (f) => this.onStoreReset(f),
      requestPeerResync: (reason) => this.requestPeerResync(reason),
    };
  }
}

