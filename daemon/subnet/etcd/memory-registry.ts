// An in-memory Registry (Go's MockSubnetRegistry), shipped as product code like undici's MockAgent:
// LocalManager unit tests run on it. It keeps etcd's shapes: a global revision, keys with or
// without a lease, Version==0 create semantics, watches from a revision, compaction, outages, and
// a store rebuilt empty or restored from a snapshot (wipe/restore: open watches break, as etcd's
// restart does, and the revision goes back).
import type { IPNet } from '../../../shared/net/ip.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../../lease.js';
import { marshalLeaseAttrs, parseLeaseAttrs } from '../lease-json.js';
import { makeSubnetKey, parseSubnetKey } from '../subnet-key.js';
import { EtcdError } from './etcd-client.js';
import { CONFIG_NOT_FOUND, LeaseConflictError, type Registry, type WatchBatch } from './registry.js';

interface Entry {
  value: string;
  /** expiry time in ms, or undefined for a key without a lease */
  expiresAt?: number;
  modRevision: number;
}

interface HistoryItem {
  revision: number;
  key: string;
  type: 'put' | 'delete';
  value: string;
  expiresAt?: number;
}

export class MemoryRegistry implements Registry {
  config: string | undefined;
  private readonly kvs = new Map<string, Entry>();
  private history: HistoryItem[] = [];
  revision = 1;
  compactRevision = 0;
  /** the next `n` calls fail with a recoverable error (an etcd outage) */
  failNext = 0;
  /**
   * the next `n` TimeToLive lookups fail, as EtcdRegistry handles it: a listing skips the key,
   * getSubnet and the own-key watch report it with expiration 0 ("unknown")
   */
  failTTL = 0;
  private wakers = new Set<() => void>();
  calls: string[] = [];
  /** the cluster ID every header reports (etcd keeps it across a wipe with the same member config) */
  clusterId = '7801232528081817440';
  /** bumped by wipe/restore: open watches then end with a broken stream */
  private generation = 0;

  constructor(
    config?: string,
    private readonly now: () => number = Date.now,
  ) {
    this.config = config;
  }

  private maybeFail(op: string): void {
    this.calls.push(op);
    if (this.failNext > 0) {
      this.failNext--;
      throw new EtcdError('etcd cluster is unavailable or misconfigured: connect ECONNREFUSED', 14, true);
    }
  }

  private wake(): void {
    for (const w of this.wakers) w();
    this.wakers.clear();
  }

  private record(key: string, type: 'put' | 'delete', value: string, expiresAt?: number): void {
    this.revision++;
    if (type === 'put') this.kvs.set(key, { value, expiresAt, modRevision: this.revision });
    else this.kvs.delete(key);
    this.history.push({ revision: this.revision, key, type, value, expiresAt });
    this.wake();
  }

  /** Test helpers: raw writes, as an operator with etcdctl would do. */
  putRaw(key: string, value: string, ttlSec?: number): void {
    this.record(key, 'put', value, ttlSec === undefined ? undefined : this.now() + ttlSec * 1000);
  }
  deleteRaw(key: string): void {
    if (this.kvs.has(key)) this.record(key, 'delete', '');
  }
  getRaw(key: string): { value: string; ttlSec?: number } | undefined {
    const e = this.kvs.get(key);
    if (!e) return undefined;
    return e.expiresAt === undefined ? { value: e.value } : { value: e.value, ttlSec: (e.expiresAt - this.now()) / 1000 };
  }
  keys(): string[] {
    return [...this.kvs.keys()].sort();
  }
  /** Deletes every key whose lease has expired (etcd's lease expiry). */
  expireLeases(): void {
    for (const [k, e] of [...this.kvs]) if (e.expiresAt !== undefined && e.expiresAt <= this.now()) this.deleteRaw(k);
  }
  /** The whole store, to restore() later (etcdctl snapshot save). */
  snapshot(): { kvs: Map<string, Entry>; history: HistoryItem[]; revision: number } {
    return { kvs: new Map(this.kvs), history: [...this.history], revision: this.revision };
  }
  /** Back to a snapshot (etcdutl snapshot restore without --bump-revision): the revision goes back. */
  restore(snap: { kvs: Map<string, Entry>; history: HistoryItem[]; revision: number }): void {
    this.kvs.clear();
    for (const [k, e] of snap.kvs) this.kvs.set(k, e);
    this.history = [...snap.history];
    this.revision = snap.revision;
    this.compactRevision = 0;
    this.generation++;
    this.wake();
  }
  /** etcd restarted on an empty data dir: nothing but the config (put back by the operator). */
  wipe(config = this.config): void {
    this.restore({ kvs: new Map(), history: [], revision: 1 });
    this.config = config;
  }
  compact(rev = this.revision): void {
    this.compactRevision = rev;
    this.history = this.history.filter((h) => h.revision > rev);
    this.wake();
  }

  private toLease(key: string, e: { value: string; expiresAt?: number }, withTTL = true, skipOnTTLError = false): Lease | undefined {
    const k = parseSubnetKey(key);
    if (!k) return undefined;
    let attrs: LeaseAttrs;
    try {
      attrs = parseLeaseAttrs(e.value);
    } catch {
      return undefined;
    }
    let expiration = e.expiresAt === undefined ? this.now() - 1000 : withTTL ? e.expiresAt : 0;
    if (e.expiresAt !== undefined && withTTL && this.failTTL > 0) {
      this.failTTL--;
      if (skipOnTTLError) return undefined;
      expiration = 0;
    }
    const l: Lease = {
      enableIPv4: true,
      enableIPv6: k.sn6 !== undefined,
      subnet: k.sn,
      attrs,
      expiration,
    };
    if (k.sn6) l.ipv6Subnet = k.sn6;
    if (e.expiresAt === undefined) l.reservation = true;
    return l;
  }

  private key(sn: IPNet, sn6?: IPNet): string {
    return `/coreos.com/network/subnets/${makeSubnetKey(sn, sn6)}`;
  }

  async getNetworkConfig(): Promise<string> {
    this.maybeFail('getNetworkConfig');
    if (this.config === undefined) throw new Error(CONFIG_NOT_FOUND);
    return this.config;
  }

  async getSubnets(_signal?: AbortSignal, o: { withTTL?: boolean } = {}) {
    this.maybeFail('getSubnets');
    const leases: Lease[] = [];
    for (const [k, e] of this.kvs) {
      const l = this.toLease(k, e, o.withTTL === true, true);
      if (l) leases.push(l);
    }
    return { leases, revision: this.revision, clusterId: this.clusterId };
  }

  async getSubnet(sn: IPNet, sn6?: IPNet) {
    this.maybeFail('getSubnet');
    const e = this.kvs.get(this.key(sn, sn6));
    const lease = e ? this.toLease(this.key(sn, sn6), e) : undefined;
    const h = { revision: this.revision, clusterId: this.clusterId };
    return lease ? { lease, ...h } : h;
  }

  async createSubnet(sn: IPNet, sn6: IPNet | undefined, attrs: LeaseAttrs, ttlSec: number) {
    this.maybeFail('createSubnet');
    const key = this.key(sn, sn6);
    if (this.kvs.has(key)) throw new LeaseConflictError(key);
    const exp = this.now() + ttlSec * 1000;
    this.record(key, 'put', marshalLeaseAttrs(attrs), exp);
    return exp;
  }

  async updateSubnet(sn: IPNet, sn6: IPNet | undefined, attrs: LeaseAttrs, ttlSec: number) {
    this.maybeFail('updateSubnet');
    const exp = ttlSec > 0 ? this.now() + ttlSec * 1000 : undefined;
    this.record(this.key(sn, sn6), 'put', marshalLeaseAttrs(attrs), exp);
    return exp;
  }

  async deleteSubnet(sn: IPNet, sn6?: IPNet) {
    this.maybeFail('deleteSubnet');
    this.deleteRaw(this.key(sn, sn6));
  }

  async *watchSubnets(since: number, signal: AbortSignal, only?: { sn: IPNet; sn6?: IPNet }): AsyncGenerator<WatchBatch> {
    this.maybeFail('watchSubnets');
    const want = only ? this.key(only.sn, only.sn6) : undefined;
    const generation = this.generation;
    if (since - 1 > this.revision) {
      yield { kind: 'behind', revision: this.revision, clusterId: this.clusterId };
      return;
    }
    let next = since;
    while (!signal.aborted) {
      if (generation !== this.generation) throw new EtcdError('etcd 127.0.0.1:2379: watch stream: aborted', -1, true);
      if (next <= this.compactRevision) {
        yield { kind: 'compacted', revision: this.compactRevision };
        return;
      }
      const items = this.history.filter(
        (h) => h.revision >= next && h.key.startsWith('/coreos.com/network/subnets/') && (!want || h.key === want),
      );
      const top = this.revision;
      if (items.length > 0) {
        const events: LeaseEvent[] = [];
        for (const h of items) {
          if (h.type === 'delete') {
            const k = parseSubnetKey(h.key);
            if (!k) continue;
            const lease: Lease = { enableIPv4: true, enableIPv6: !!k.sn6, subnet: k.sn, attrs: { publicIP: { family: 4, value: 0n } }, expiration: 0 };
            if (k.sn6) lease.ipv6Subnet = k.sn6;
            events.push({ type: 'removed', lease });
          } else {
            const l = this.toLease(h.key, h, want !== undefined);
            if (l) events.push({ type: 'added', lease: l });
          }
        }
        yield { kind: 'events', events, revision: top };
      }
      next = top + 1;
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          resolve();
        };
        this.wakers.add(done);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  close(): void {}
}
