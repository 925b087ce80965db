// The thin storage layer under LocalManager (pkg/subnet/etcd Registry): the network config and the
// lease keys under <prefix>/subnets/, in Go's byte format (subnet-key.ts, lease-json.ts).
//
// Lease TTLs: Go calls TimeToLive once per key, one after the other, on every listing and on every
// watch event, and then uses the expiration of exactly one lease: its own (the renew timer). With
// 5000 leases that is 5000 round trips per listing (seconds, and tens of MiB of RSS: run
// scripts/bench/leases.mjs), twice at start (acquire, then the watch snapshot). So this registry:
//   - the kv's lease id already says what the daemon needs to know: 0 means a reservation
//     (expiration now - 1 s, exactly what Go computes from etcd's TTL -1, plus `reservation`);
//   - TimeToLive is called only when asked for (`withTTL`: the own-key reads and watch that drive the
//     renew timer, and tests), then with up to TTL_CONCURRENCY calls in flight; as in Go a listing
//     skips a key whose lookup fails, and an expired lease gives now - 1 s;
//   - peers' leases otherwise carry expiration 0 ("not looked up"); nothing reads it (backends
//     program routes from subnets and attrs only), and the acquire decision needs only `reservation`.
// Our own lease's expiration always comes from etcd: the Grant response on create/renew, or
// TimeToLive on the own-key read and watch. When that lookup fails, getSubnet and the own-key watch
// still report the key (it exists: dropping it would read as a removal) with expiration 0, which
// here means "unknown", never "expired"; LocalManager then keeps the expiration it already knows.
import { type IPNet, formatNet } from '../../../shared/net/ip.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../../lease.js';
import { type Logger, NOOP_LOGGER, errorMessage } from '../../../shared/log.js';
import { marshalLeaseAttrs, parseLeaseAttrs } from '../lease-json.js';
import { makeSubnetKey, parseSubnetKey } from '../subnet-key.js';
import { EtcdClient, EtcdError, type KeyValue } from './etcd-client.js';

export const DEFAULT_ETCD_PREFIX = '/coreos.com/network';
/** subnetTTL: every create and renew grants a fresh 24 h etcd lease */
export const SUBNET_TTL_SEC = 24 * 60 * 60;
export const TTL_CONCURRENCY = 32;
/** keys per range request when listing leases (see listPaged) */
export const LIST_PAGE = 500;

/** The lost creation race (Go's errSubnetAlreadyexists), which LocalManager retries. */
export class LeaseConflictError extends Error {
  constructor(readonly key: string) {
    super('subnet already exists');
    this.name = 'LeaseConflictError';
  }
}

export const CONFIG_NOT_FOUND = 'flannel config not found in etcd store. Did you create your config using etcdv3 API?';

export type WatchBatch =
  | { kind: 'events'; events: LeaseEvent[]; revision: number }
  /** the watch start revision was compacted: re-list and resume from the listing's revision */
  | { kind: 'compacted'; revision: number }
  /**
   * The store answered the watch at a revision below the start (`revision` < since - 1), or with
   * another cluster ID: etcd was rebuilt or restored (store-reset.ts), or the member lags. The watch
   * ends; the caller re-reads (a linearizable read tells which).
   */
  | { kind: 'behind'; revision: number; clusterId?: string };

/** What a read saw of the store: its revision and, from etcd, the cluster ID. */
export interface ReadHeader {
  revision: number;
  clusterId?: string;
}

export interface Registry {
  /** The raw config text; throws CONFIG_NOT_FOUND when the key is missing. */
  getNetworkConfig(signal?: AbortSignal): Promise<string>;
  /** Every lease; expirations only with `withTTL` (else 0, or now - 1 s for a reservation). */
  getSubnets(signal?: AbortSignal, o?: { withTTL?: boolean }): Promise<{ leases: Lease[] } & ReadHeader>;
  /** One lease, with its expiration looked up (0 if the lookup failed: the key is still reported). */
  getSubnet(sn: IPNet, sn6: IPNet | undefined, signal?: AbortSignal): Promise<{ lease?: Lease } & ReadHeader>;
  /** Grant(ttl) + txn If(Version(key)==0) Put; the expiration (ms); LeaseConflictError on a lost race. */
  createSubnet(sn: IPNet, sn6: IPNet | undefined, attrs: LeaseAttrs, ttlSec: number, signal?: AbortSignal): Promise<number>;
  /**
   * Unconditional put. ttlSec > 0: a new Grant(ttl) and the returned expiration; ttlSec 0: the key
   * is put without a lease (a reservation stays one) and undefined is returned.
   */
  updateSubnet(
    sn: IPNet,
    sn6: IPNet | undefined,
    attrs: LeaseAttrs,
    ttlSec: number,
    signal?: AbortSignal,
  ): Promise<number | undefined>;
  deleteSubnet(sn: IPNet, sn6: IPNet | undefined, signal?: AbortSignal): Promise<void>;
  /**
   * Changes from `since` on, for every lease, or for one key when `only` is given (then with the
   * expiration looked up, 0 if the lookup failed, as for getSubnet). Ends (returns or
   * throws) when the stream breaks; the caller re-watches from its last revision + 1.
   * Junk keys and values are logged and skipped, never turned into removals.
   */
  watchSubnets(
    since: number,
    signal: AbortSignal,
    only?: { sn: IPNet; sn6?: IPNet },
  ): AsyncIterable<WatchBatch>;
  close(): void;
}

/** Maps `fn` over `items` with at most `limit` promises in flight, keeping order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export class EtcdRegistry implements Registry {
  readonly prefix: string;
  private readonly subnetsDir: string;
  /** the cluster ID of the last read, to notice a watch answered by another cluster */
  private clusterId: string | undefined;

  constructor(
    private readonly client: EtcdClient,
    prefix = DEFAULT_ETCD_PREFIX,
    private readonly log: Logger = NOOP_LOGGER,
    private readonly now: () => number = Date.now,
    /** keys per range request of a listing (tests make it small) */
    private readonly listPage = LIST_PAGE,
  ) {
    this.prefix = prefix.replace(/\/+$/, '') || '/';
    // Go lists with WithPrefix on path.Join(prefix, "subnets"); we add the slash so that a sibling
    // such as "subnets-old/..." is not read as leases.
    this.subnetsDir = `${this.prefix === '/' ? '' : this.prefix}/subnets/`;
  }

  private keyFor(sn: IPNet, sn6?: IPNet): string {
    return this.subnetsDir + makeSubnetKey(sn, sn6);
  }

  async getNetworkConfig(signal?: AbortSignal): Promise<string> {
    const key = `${this.prefix === '/' ? '' : this.prefix}/config`;
    const r = await this.client.range(key, {}, signal);
    const kv = r.kvs[0];
    if (!kv) throw new Error(CONFIG_NOT_FOUND);
    return kv.value;
  }

  /** kv → Lease without the TTL; undefined (logged) for junk. */
  private decode(kv: KeyValue): Lease | undefined {
    const k = parseSubnetKey(kv.key);
    if (!k) {
      this.log.warn(`ignoring ${JSON.stringify(kv.key)}: not a subnet key`);
      return undefined;
    }
    let attrs: LeaseAttrs;
    try {
      attrs = parseLeaseAttrs(kv.value);
    } catch (e) {
      this.log.warn(`ignoring lease ${JSON.stringify(kv.key)}: bad value: ${errorMessage(e)}`);
      return undefined;
    }
    const lease: Lease = {
      enableIPv4: true, // etcd mode always sets it, as Go does
      enableIPv6: k.sn6 !== undefined,
      subnet: k.sn,
      attrs,
      expiration: kv.lease === '0' ? this.now() - 1000 : 0,
    };
    if (k.sn6) lease.ipv6Subnet = k.sn6;
    if (kv.lease === '0') lease.reservation = true;
    return lease;
  }

  /**
   * Fills in the expiration from etcd's TimeToLive. When the lookup fails: in a listing the key is
   * skipped (logged), as Go does; for one key (getSubnet) or a watch event (`keepOnError`) the
   * lease is kept with expiration 0 ("unknown"), so that neither an existing key nor new attrs are
   * lost to a transient error. Not now - 1 s: that reads as "expired" and would make the owner
   * renew at once (see LocalManager.adopt).
   */
  private async withTTL(kv: KeyValue, lease: Lease, signal?: AbortSignal, keepOnError = false): Promise<Lease | undefined> {
    if (kv.lease === '0') return lease;
    try {
      const ttl = await this.client.leaseTimeToLive(kv.lease, signal);
      lease.expiration = this.now() + ttl * 1000;
      return lease;
    } catch (e) {
      if (signal?.aborted) throw e;
      this.log.warn(`failed to get the TTL of ${JSON.stringify(kv.key)}${keepOnError ? '' : ', skipping'}: ${errorMessage(e)}`);
      if (!keepOnError) return undefined;
      lease.expiration = 0;
      return lease;
    }
  }

  private header(r: { revision: number; clusterId?: string }): ReadHeader {
    if (r.clusterId !== undefined) this.clusterId = r.clusterId;
    return r.clusterId === undefined ? { revision: r.revision } : { revision: r.revision, clusterId: r.clusterId };
  }

  async getSubnets(signal?: AbortSignal, o: { withTTL?: boolean } = {}): Promise<{ leases: Lease[] } & ReadHeader> {
    const { decoded, header: h } = await this.listPaged(signal);
    if (!o.withTTL) return { leases: decoded.map((d) => d.l), ...h };
    const leases = await mapLimit(decoded, TTL_CONCURRENCY, ({ kv, l }) => this.withTTL(kv, l, signal));
    return { leases: leases.filter((l): l is Lease => l !== undefined), ...h };
  }

  /**
   * Every lease key, decoded, read in pages of LIST_PAGE keys at the first page's revision (one
   * snapshot, as a single range is). Why pages: one range of 5000 leases is a ~2.5 MiB JSON reply
   * held at once as bytes, text, parsed tree and decoded keys; the heap grown for that peak is not
   * given back (start with 5000 existing leases: VmRSS +10 MiB over the same leases arriving by
   * watch; scripts/bench/leases-heap.mjs). A page's reply is freed before the next is read. If
   * that revision is compacted meanwhile, the listing starts over at the current one.
   */
  private async listPaged(signal?: AbortSignal): Promise<{ decoded: { kv: KeyValue; l: Lease }[]; header: ReadHeader }> {
    for (let attempt = 0; ; attempt++) {
      const decoded: { kv: KeyValue; l: Lease }[] = [];
      let first: { revision: number; clusterId?: string } | undefined;
      let from: string | undefined;
      try {
        for (;;) {
          const page = await this.client.range(
            this.subnetsDir,
            { prefix: true, limit: this.listPage, ...(from === undefined ? {} : { from }), ...(first ? { revision: first.revision } : {}) },
            signal,
          );
          first ??= page;
          for (const kv of page.kvs) {
            const l = this.decode(kv);
            if (l) decoded.push({ kv, l });
          }
          const last = page.kvs.at(-1);
          if (!page.more || last === undefined) break;
          // a key that is not UTF-8 does not survive the round trip: never read the same page twice
          if (from === `${last.key}\0`) throw new EtcdError(`listing ${this.subnetsDir} does not advance past ${JSON.stringify(last.key)}`, -1, false);
          from = `${last.key}\0`;
        }
        return { decoded, header: this.header(first) };
      } catch (e) {
        if (attempt < 3 && first && e instanceof EtcdError && /compacted/.test(e.message)) continue;
        throw e;
      }
    }
  }

  async getSubnet(sn: IPNet, sn6: IPNet | undefined, signal?: AbortSignal): Promise<{ lease?: Lease } & ReadHeader> {
    const r = await this.client.range(this.keyFor(sn, sn6), {}, signal);
    const h = this.header(r);
    const kv = r.kvs[0];
    const l = kv ? this.decode(kv) : undefined;
    const lease = kv && l ? await this.withTTL(kv, l, signal, true) : undefined;
    return lease ? { lease, ...h } : h;
  }

  async createSubnet(sn: IPNet, sn6: IPNet | undefined, attrs: LeaseAttrs, ttlSec: number, signal?: AbortSignal) {
    const key = this.keyFor(sn, sn6);
    const value = marshalLeaseAttrs(attrs);
    const grant = await this.client.leaseGrant(ttlSec, signal);
    let ok = false;
    try {
      ok = await this.client.putIfAbsent(key, value, grant.id, signal);
    } finally {
      if (!ok) await this.client.leaseRevoke(grant.id).catch(() => {});
    }
    if (!ok) throw new LeaseConflictError(key);
    return this.now() + grant.ttl * 1000;
  }

  async updateSubnet(sn: IPNet, sn6: IPNet | undefined, attrs: LeaseAttrs, ttlSec: number, signal?: AbortSignal) {
    const key = this.keyFor(sn, sn6);
    const value = marshalLeaseAttrs(attrs);
    if (ttlSec <= 0) {
      await this.client.put(key, value, '0', signal);
      return undefined;
    }
    const grant = await this.client.leaseGrant(ttlSec, signal);
    await this.client.put(key, value, grant.id, signal);
    return this.now() + grant.ttl * 1000;
  }

  async deleteSubnet(sn: IPNet, sn6: IPNet | undefined, signal?: AbortSignal) {
    await this.client.deleteRange(this.keyFor(sn, sn6), {}, signal);
  }

  async *watchSubnets(since: number, signal: AbortSignal, only?: { sn: IPNet; sn6?: IPNet }): AsyncGenerator<WatchBatch> {
    const key = only ? this.keyFor(only.sn, only.sn6) : this.subnetsDir;
    for await (const res of this.client.watch(key, { prefix: true, startRevision: since }, signal)) {
      if (res.compactRevision !== undefined) {
        yield { kind: 'compacted', revision: res.compactRevision };
        return;
      }
      if (res.canceled) throw new EtcdError(`watch canceled: ${res.cancelReason ?? 'unknown reason'}`, -1, true);
      if (res.created) {
        // a store below our start revision, or another cluster: etcd was rebuilt or restored
        const otherCluster = res.clusterId !== undefined && this.clusterId !== undefined && res.clusterId !== this.clusterId;
        if ((res.revision > 0 && res.revision < since - 1) || otherCluster) {
          const b: WatchBatch = { kind: 'behind', revision: res.revision };
          if (res.clusterId !== undefined) b.clusterId = res.clusterId;
          yield b;
          return;
        }
        continue;
      }
      if (res.events.length === 0) continue;
      const events: LeaseEvent[] = [];
      let revision = 0;
      for (const ev of res.events) {
        revision = Math.max(revision, ev.kv.modRevision);
        if (only && ev.kv.key !== key) continue; // a WithPrefix watch also sees longer keys
        if (ev.type === 'delete') {
          const k = parseSubnetKey(ev.kv.key);
          if (!k) {
            this.log.warn(`ignoring deletion of ${JSON.stringify(ev.kv.key)}: not a subnet key`);
            continue;
          }
          const lease: Lease = {
            enableIPv4: true,
            enableIPv6: k.sn6 !== undefined,
            subnet: k.sn,
            attrs: { publicIP: { family: 4, value: 0n } },
            expiration: 0,
          };
          if (k.sn6) lease.ipv6Subnet = k.sn6;
          events.push({ type: 'removed', lease });
          continue;
        }
        const l = this.decode(ev.kv);
        const lease = l && only ? await this.withTTL(ev.kv, l, signal, true) : l;
        if (lease) events.push({ type: 'added', lease });
      }
      yield { kind: 'events', events, revision: Math.max(revision, since - 1) };
    }
  }

  close(): void {
    this.client.close();
  }
}

export function describeSubnet(sn: IPNet, sn6?: IPNet): string {
  return sn6 ? `${formatNet(sn)}, ${formatNet(sn6)}` : formatNet(sn);
}
