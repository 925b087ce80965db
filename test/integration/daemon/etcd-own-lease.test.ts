// LocalManager's own lease on a real etcd (flannel's subnet_test.go TestCompleteLease and
// registry_test.go's compaction and cancel cases): the own-key watch behind completeLease across a
// partition during which etcd compacts past the watch revision, and cancellation that returns
// promptly whatever the consumer or etcd is doing.
//
// The client goes through a TCP proxy (test/helpers/etcd.ts) whose cut() drops the watch stream:
// while it is cut, etcdctl (direct) changes keys and compacts, so the watch's reconnect asks for a
// compacted revision, as after a long outage on a busy cluster.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIP, parseIP } from '../../../shared/net/ip.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../../../daemon/lease.js';
import { memoryLogger } from '../../../shared/log.js';
import { EtcdClient } from '../../../daemon/subnet/etcd/etcd-client.js';
import { LocalManager } from '../../../daemon/subnet/etcd/local-manager.js';
import { EtcdRegistry, type WatchBatch } from '../../../daemon/subnet/etcd/registry.js';
import { hasEtcd, startEtcd, startTcpProxy, type TcpProxy, type TestEtcd } from '../../helpers/etcd.js';
import { until, within } from './daemon-harness.js';

const CONFIG = '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0" }';
const ATTRS: LeaseAttrs = { publicIP: parseIP('1.2.3.4') };
const OUR_VALUE = '{"PublicIP":"1.2.3.4","PublicIPv6":null}';

/** EtcdRegistry that counts the own-key reads and watches and the compactions they met. */
class RecordingRegistry extends EtcdRegistry {
  ownReads = 0;
  ownWatches = 0;
  ownCompactions = 0;

  override async getSubnet(...a: Parameters<EtcdRegistry['getSubnet']>) {
    const r = await super.getSubnet(...a);
    this.ownReads++;
    return r;
  }

  override async *watchSubnets(since: number, signal: AbortSignal, only?: Parameters<EtcdRegistry['watchSubnets']>[2]): AsyncGenerator<WatchBatch> {
    if (only) this.ownWatches++;
    for await (const b of super.watchSubnets(since, signal, only)) {
      if (only && b.kind === 'compacted') this.ownCompactions++;
      yield b;
    }
  }
}

describe.skipIf(!hasEtcd)('own lease on a real etcd', () => {
  let etcd: TestEtcd;
  let proxy: TcpProxy;
  const clients: EtcdClient[] = [];
  const aborts: AbortController[] = [];
  const signal = () => {
    const a = new AbortController();
    aborts.push(a);
    return a;
  };

  /** a manager on `prefix` (with CONFIG) whose client goes through the proxy */
  const manager = (prefix: string) => {
    etcd.ctl(['put', `${prefix}/config`, CONFIG]);
    const client = new EtcdClient({ endpoints: [proxy.endpoint], requestTimeoutMs: 2000 });
    clients.push(client);
    const log = memoryLogger();
    const reg = new RecordingRegistry(client, prefix, log);
    return { sm: new LocalManager({ registry: reg, log }), reg, log };
  };
  const keyOf = (prefix: string, l: Lease) => `${prefix}/subnets/${formatIP({ family: 4, value: l.subnet.base })}-24`;
  const leaseIdOf = (key: string) => BigInt(/"lease":(\d+)/.exec(etcd.ctl(['get', '-w', 'json', key]))?.[1] ?? '0').toString(16);
  const revisionNow = () => Number(/"revision":(\d+)/.exec(etcd.ctl(['get', '-w', 'json', 'any']))![1]);
  /**
   * A partition during which `during` writes (etcdctl, direct) and etcd then compacts all history,
   * past the revision any watch of ours resumes from (the filler makes it at least 2 revisions on).
   */
  const partition = (during: () => void) => {
    proxy.cut();
    try {
      during();
      etcd.ctl(['put', '/filler', 'x']);
      etcd.ctl(['compact', String(revisionNow())]);
    } finally {
      proxy.heal();
    }
  };

  /** acquire + completeLease, with every own-lease change recorded; resolves once the own key is watched */
  const running = async (prefix: string) => {
    const m = manager(prefix);
    const l = await m.sm.acquireLease(ATTRS, signal().signal);
    const seen: Lease[] = [];
    m.sm.onOwnLeaseChange((x) => seen.push(x));
    const ac = signal();
    const done = m.sm.completeLease(l, ac.signal);
    let settled = false;
    void done.then(
      () => (settled = true),
      () => (settled = true),
    );
    await until(() => m.reg.ownWatches >= 1, 'the own-key watch');
    return { ...m, l, key: keyOf(prefix, l), seen, ac, done, settled: () => settled };
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    proxy = await startTcpProxy(etcd.clientPort);
  });
  afterAll(async () => {
    for (const a of aborts) a.abort();
    for (const c of clients) c.close();
    await proxy?.close();
    await etcd?.stop();
  });

  it('TestCompleteLease: a renewal and an operator re-put come back as own-lease updates; a deletion re-takes the key', async () => {
    const r = await running('/complete');
    // RenewLease: a new Grant + Put; the own-key watch reports that put too (Go's EventAdded)
    const oldLease = leaseIdOf(r.key);
    const renewed = await r.sm.renewLease(r.l);
    await until(() => r.seen.length >= 2, 'the renewal seen by the own-key watch');
    expect(leaseIdOf(r.key)).not.toBe(oldLease);
    for (const x of r.seen) expect(Math.abs(x.expiration - renewed.expiration)).toBeLessThan(2000);

    // an operator re-puts our value with a 2 h lease: the expiration is looked up and the renew
    // timer recomputed (2 h − the 1 h margin)
    const id = /lease ([0-9a-f]+) granted/.exec(etcd.ctl(['lease', 'grant', '7200']))![1]!;
    etcd.ctl(['put', '--lease', id, r.key, OUR_VALUE]);
    await until(() => r.seen.length >= 3, 'the operator put');
    expect(Math.abs(r.seen[2]!.expiration - (Date.now() + 7200_000))).toBeLessThan(5000);
    await until(() => r.log.lines.some((x) => /Waiting for 3[56]\d\ds to renew lease/.test(x)), 'the recomputed timer');

    // deleting the key (Go: EventRemoved → exit 0): ours re-creates it in place with a 24 h lease
    etcd.ctl(['del', r.key]);
    await until(() => r.log.lines.some((x) => x.includes('Re-acquired lease')), 'the re-acquire');
    expect(etcd.ctl(['get', '--print-value-only', r.key])).toBe(`${OUR_VALUE}\n`);
    expect(Number(/remaining\((\d+)s\)/.exec(etcd.ctl(['lease', 'timetolive', leaseIdOf(r.key)]))![1])).toBeGreaterThan(86_300);
    expect(r.settled()).toBe(false);
    r.ac.abort();
    await within(r.done, 3000, 'completeLease to return');
  });

  it('TestWatchSubnetSurvivesCompactionAfterReconnect: own key unchanged across a compacted outage, live events after', async () => {
    const r = await running('/survive');
    const reads = r.reg.ownReads;
    partition(() => {
      etcd.ctl(['put', '/survive/subnets/10.3.40.0-24', '{"PublicIP":"1.1.1.40","PublicIPv6":null}']);
    });
    await until(() => r.reg.ownCompactions >= 1 && r.reg.ownReads > reads, 'the re-read after compaction');
    // nothing changed for us: no update, no re-take, no exit
    expect(r.seen).toEqual([]);
    expect(r.log.lines.filter((x) => /revoked|Re-acquired/.test(x))).toEqual([]);
    expect(r.settled()).toBe(false);
    // live events flow again
    const id = /lease ([0-9a-f]+) granted/.exec(etcd.ctl(['lease', 'grant', '7200']))![1]!;
    etcd.ctl(['put', '--lease', id, r.key, OUR_VALUE]);
    await until(() => r.seen.length >= 1, 'a live own-key event after the compaction');
    expect(Math.abs(r.seen[0]!.expiration - (Date.now() + 7200_000))).toBeLessThan(5000);
    r.ac.abort();
    await within(r.done, 3000, 'completeLease to return');
  });

  it('TestWatchSubnetRecoversFromCompaction: a change hidden by compaction is read back (re-list), then live events', async () => {
    const r = await running('/recover');
    // during the outage an operator turns our lease into a reservation (no etcd lease)
    partition(() => {
      etcd.ctl(['put', r.key, OUR_VALUE]);
    });
    await until(() => r.seen.length >= 1, 'the re-read after compaction');
    expect(r.reg.ownCompactions).toBeGreaterThanOrEqual(1);
    expect(r.seen[0]!.reservation).toBe(true);
    expect(r.sm.lease()?.reservation).toBe(true);
    // and live events after it: back to a leased key
    const id = /lease ([0-9a-f]+) granted/.exec(etcd.ctl(['lease', 'grant', '7200']))![1]!;
    etcd.ctl(['put', '--lease', id, r.key, OUR_VALUE]);
    await until(() => r.seen.length >= 2, 'a live event');
    expect(r.seen[1]!.reservation).toBeUndefined();
    expect(r.settled()).toBe(false);
    r.ac.abort();
    await within(r.done, 3000, 'completeLease to return');
  });

  it('TestWatchSubnetReportsRemovalAfterCompaction: a deletion below the horizon is noticed; ours re-takes the key', async () => {
    const r = await running('/removal');
    partition(() => {
      etcd.ctl(['del', r.key]);
    });
    await until(() => r.log.lines.some((x) => x.includes('Re-acquired lease')), 'the re-acquire');
    // noticed either by the compacted watch's re-read or, since the store-reset work, by the key check
    // every reconnect of the own-key watch makes before it resumes
    expect(r.reg.ownCompactions + r.log.lines.filter((x) => /missing|revoked/i.test(x)).length).toBeGreaterThanOrEqual(1);
    expect(r.log.lines.some((x) => /Lease has been revoked: re-acquiring|is missing/.test(x))).toBe(true);
    expect(etcd.ctl(['get', '--print-value-only', r.key])).toBe(`${OUR_VALUE}\n`);
    expect(r.settled()).toBe(false);
    r.ac.abort();
    await within(r.done, 3000, 'completeLease to return');
  });

  it('a takeover by another node hidden by compaction: the re-read shows the holder and completeLease rejects', async () => {
    const r = await running('/taken');
    partition(() => {
      etcd.ctl(['del', r.key]);
      etcd.ctl(['put', r.key, '{"PublicIP":"5.5.5.5","PublicIPv6":null}']);
    });
    await expect(within(r.done, 10_000, 'completeLease to reject')).rejects.toThrow(/was revoked and is now held by 5\.5\.5\.5: shutting down/);
    expect(r.reg.ownCompactions).toBeGreaterThanOrEqual(1);
    expect(etcd.ctl(['get', '--print-value-only', r.key])).toBe('{"PublicIP":"5.5.5.5","PublicIPv6":null}\n');
  });

  describe('TestResyncWatchCancelWithBlockedReceiver: cancelling returns within 3 s', () => {
    const watchers = () => etcd.metric('etcd_debugging_mvcc_watcher_total');
    /** every earlier test cancelled its watches: etcd must have dropped them all */
    const noWatchers = () => until(async () => (await watchers()) === 0, 'no watcher left by earlier tests', 3000);

    it('a registry watch whose consumer stopped pulling: the stream closes on abort, and the generator ends', async () => {
      const reg = manager('/blocked').reg;
      await noWatchers();
      const { revision } = await reg.getSubnets();
      const ac = signal();
      const it = reg.watchSubnets(revision + 1, ac.signal)[Symbol.asyncIterator]();
      const first = it.next();
      etcd.ctl(['put', '/blocked/subnets/10.3.50.0-24', '{"PublicIP":"1.1.1.50","PublicIPv6":null}']);
      expect((await first).value).toMatchObject({ kind: 'events' });
      // the consumer is now blocked: events pile up in the open stream
      for (const n of [51, 52, 53]) etcd.ctl(['put', `/blocked/subnets/10.3.${n}.0-24`, `{"PublicIP":"1.1.1.${n}","PublicIPv6":null}`]);
      expect(await watchers()).toBe(1);
      const t0 = Date.now();
      ac.abort();
      // the stream is closed without anyone pulling...
      await until(async () => (await watchers()) === 0, 'etcd to drop the watcher', 3000);
      // ...and a late pull ends the generator instead of handing out events after the cancel
      expect(await within(it.next(), 3000 - (Date.now() - t0), 'the generator to end')).toEqual({ done: true, value: undefined });
    });

    it('watchLeases blocked at its re-list batch after a compaction: ends at once on abort', async () => {
      const { sm, log } = manager('/resync');
      await sm.acquireLease(ATTRS, signal().signal);
      const ac = signal();
      const gen = sm.watchLeases(ac.signal)[Symbol.asyncIterator]();
      expect((await gen.next()).done).toBe(false); // the snapshot
      await noWatchers();
      // the next pull opens the watch; a partition with compaction makes it re-list
      const pending = gen.next();
      await until(async () => (await watchers()) === 1, 'the peer watch', 3000);
      partition(() => etcd.ctl(['put', '/resync/subnets/10.3.60.0-24', '{"PublicIP":"1.1.1.60","PublicIPv6":null}']));
      const batch = (await within(pending, 10_000, 'the re-list batch')).value as LeaseEvent[];
      expect(batch.map((e) => `${e.type} ${formatIP({ family: 4, value: e.lease.subnet.base })}`)).toEqual(['added 10.3.60.0']);
      expect(log.lines.some((x) => /watch revision \d+ was compacted .*: re-listing leases/.test(x))).toBe(true);
      // blocked: nobody pulls; cancel, then a late pull ends the generator
      const t0 = Date.now();
      ac.abort();
      expect(await within(gen.next(), 3000, 'watchLeases to end')).toEqual({ done: true, value: undefined });
      expect(Date.now() - t0).toBeLessThan(3000);
      await until(async () => (await watchers()) === 0, 'no watcher left', 3000);
    });

    it('completeLease and a pending watchLeases pull while etcd hangs (SIGSTOP): both return on abort', async () => {
      await noWatchers();
      const r = await running('/hang');
      const ac = signal();
      const gen = r.sm.watchLeases(ac.signal)[Symbol.asyncIterator]();
      await gen.next(); // the snapshot
      const pending = gen.next(); // now waiting on the peer watch stream
      await until(async () => (await watchers()) === 2, 'the own-key and the peer watch', 3000);
      etcd.pause();
      try {
        const t0 = Date.now();
        r.ac.abort();
        ac.abort();
        await within(r.done, 3000, 'completeLease to return');
        expect((await within(pending, 3000, 'watchLeases to end')).done).toBe(true);
        expect(Date.now() - t0).toBeLessThan(3000);
      } finally {
        etcd.resume();
      }
    });
  });
});
