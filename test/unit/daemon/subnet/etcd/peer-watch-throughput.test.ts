// Leases put while the daemon runs: etcd sends one watch response per put, and the backend must not
// get one batch (one kernel exchange) per response. What arrived while it handled a batch is its next
// batch (read-ahead.ts), so 5000 puts cost a handful of kernel exchanges, not 5000.
import { describe, expect, it } from 'vitest';
import { parseIP, parseNet } from '../../../../../shared/net/ip.js';
import { NOOP_LOGGER } from '../../../../../shared/log.js';
import type { Lease, LeaseEvent } from '../../../../../daemon/lease.js';
import { watchPeerLeases, type PeerWatchDeps } from '../../../../../daemon/subnet/etcd/peer-watch.js';
import { readAhead } from '../../../../../daemon/subnet/etcd/read-ahead.js';
import type { Registry, WatchBatch } from '../../../../../daemon/subnet/etcd/registry.js';
import { IN_PROCESS, until } from '../../../../helpers/until.js';
import { signal } from './test-signal.js';

const lease = (i: number): Lease => ({
  enableIPv4: true,
  enableIPv6: false,
  subnet: parseNet(`10.${1 + (i >> 8)}.${i & 255}.0/24`),
  attrs: { publicIP: parseIP(`192.168.${i >> 8}.${i & 255}`), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0a:00:00:00:00:01' } },
  expiration: 0,
});

/** An etcd-like registry: no leases listed, then `n` puts, each its own watch response, one per turn. */
function onePutPerResponse(n: number) {
  const state = { sent: 0 };
  const registry: Pick<Registry, 'getSubnets' | 'watchSubnets'> = {
    getSubnets: async () => ({ leases: [], revision: 1 }),
    async *watchSubnets(since: number, sig: AbortSignal): AsyncGenerator<WatchBatch> {
      for (let i = 0; i < n; i++) {
        await new Promise((r) => setImmediate(r)); // each response is its own chunk on the socket
        state.sent++;
        yield { kind: 'events', events: [{ type: 'added', lease: lease(i) }], revision: since + i };
      }
      await new Promise((r) => sig.addEventListener('abort', r, { once: true }));
    },
  };
  return { registry: registry as Registry, state };
}

function deps(registry: Registry): PeerWatchDeps {
  return {
    registry,
    log: NOOP_LOGGER,
    now: Date.now,
    resetGraceMs: 10_000,
    flags: { enableIPv4: true, enableIPv6: false },
    ownLease: undefined,
    onOwnLeaseChange: () => () => {},
    checkStore: () => {},
    sawRevision: () => {},
    onPeerResync: () => () => {},
  };
}

describe('peer lease watch under a stream of puts', () => {
  it('hands the backend what arrived while it was busy as one batch, not one batch per watch response', async () => {
    const N = 500;
    const { registry, state } = onePutPerResponse(N);
    const batches: LeaseEvent[][] = [];
    const it = watchPeerLeases(deps(registry), signal());
    for await (const b of it) {
      batches.push(b);
      const seen = batches.reduce((s, x) => s + x.length, 0);
      if (seen === N) break;
      // the backend is busy with this batch (a kernel exchange) until every put has been sent
      if (batches.length === 2) await until(() => state.sent === N, 'every put sent', IN_PROCESS);
    }
    // snapshot (empty), the first put, then the other N - 1 at once
    expect(batches.map((b) => b.length)).toEqual([0, 1, N - 1]);
    expect(batches.flat().map((e) => e.lease.subnet)).toEqual(Array.from({ length: N }, (_, i) => lease(i).subnet));
  });
});

describe('readAhead', () => {
  const from = async function* <T>(items: T[], fail?: Error): AsyncGenerator<T> {
    for (const x of items) yield x;
    if (fail) throw fail;
  };
  const sumRuns = (a: number, b: number) => (a > 0 && b > 0 ? a + b : undefined);

  it('folds what queued up while the consumer was busy, keeping apart what merge refuses, in order', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let done = false;
    const source = async function* () {
      yield 1;
      await gate; // the rest arrives while the consumer holds 1
      yield* [2, 3, -1, 4, 5];
      done = true;
    };
    const out: number[] = [];
    for await (const x of readAhead(source(), sumRuns)) {
      out.push(x);
      if (out.length === 1) {
        open();
        await until(() => done, 'the source read to its end', IN_PROCESS);
      }
    }
    expect(out).toEqual([1, 5, -1, 9]);
  });

  it('throws the source error after the items read before it', async () => {
    const out: number[] = [];
    await expect(
      (async () => {
        for await (const x of readAhead(from([1, 2], new Error('stream broke')), () => undefined)) out.push(x);
      })(),
    ).rejects.toThrow('stream broke');
    expect(out).toEqual([1, 2]);
  });
});
