// A watch on a stopped etcd: the kernel keeps ACKing, so TCP keepalive never notices and the stream
// would hang forever; the client's liveness check ends it with a recoverable error instead, and a new
// watch from the last revision + 1 sees what happened meanwhile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdClient, EtcdError } from '../../../daemon/subnet/etcd/etcd-client.js';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';

describe.skipIf(!hasEtcd)('etcd watch liveness', () => {
  let etcd: TestEtcd;
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    etcd.resume();
    await etcd?.stop();
  });

  it('a watch on a frozen etcd fails over within a few check periods, then resumes without loss', async () => {
    const client = new EtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 500, watchCheckMs: 300 });
    const ac = new AbortController();
    try {
      etcd.ctl(['put', '/live/a', '1']);
      const it = client.watch('/live/', { prefix: true }, ac.signal);
      const created = await it.next();
      if (created.done) throw new Error('the watch ended');
      const rev = created.value.revision;

      etcd.pause();
      const t0 = Date.now();
      const err = await it.next().then(
        () => undefined,
        (e: unknown) => e,
      );
      const tookMs = Date.now() - t0;
      expect(err).toBeInstanceOf(EtcdError);
      expect((err as EtcdError).recoverable).toBe(true);
      expect((err as EtcdError).message).toMatch(/watch dropped: the endpoint did not answer a liveness check/);
      expect(tookMs).toBeLessThan(5_000); // the deadline of this test, not a benchmark

      etcd.resume();
      etcd.ctl(['put', '/live/b', '2']);
      const again = client.watch('/live/', { prefix: true, startRevision: rev + 1 }, ac.signal);
      const seen: string[] = [];
      for await (const r of again) {
        seen.push(...r.events.map((e) => e.kv.key));
        if (seen.includes('/live/b')) break;
      }
      expect(seen).toContain('/live/b');
    } finally {
      etcd.resume();
      ac.abort();
      client.close();
    }
  }, 20_000);

  it('a healthy idle watch is left alone by the checks', async () => {
    const client = new EtcdClient({ endpoints: [etcd.endpoint], requestTimeoutMs: 500, watchCheckMs: 50 });
    const ac = new AbortController();
    try {
      const it = client.watch('/idle/', { prefix: true }, ac.signal);
      await it.next(); // created
      // let a dozen check periods pass on purpose (the negative: none may end the stream), then a put
      // must still arrive on this very stream
      const next = it.next();
      await new Promise((r) => setTimeout(r, 600));
      etcd.ctl(['put', '/idle/x', '1']);
      const r = await next;
      if (r.done) throw new Error('the watch ended');
      expect(r.value.events.map((e) => e.kv.key)).toEqual(['/idle/x']);
    } finally {
      ac.abort();
      client.close();
    }
  }, 20_000);
});
