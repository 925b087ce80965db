// The lease loop's part of continuous repair and of the convergence SLI: the reconcile runs on kernel
// events (debounced, coalesced) and periodically, never before the first snapshot is programmed; each
// lease event handed to the handler is observed in flannel_lease_event_to_programmed_seconds.
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../../shared/log.js';
import { parseNet } from '../../../../shared/net/ip.js';
import type { KernelEvent } from '../../../../shared/kernel/kernel.js';
import type { Lease, LeaseEvent } from '../../../../daemon/lease.js';
import { LeaseLoop, type LeaseHandler } from '../../../../daemon/backend/lease-loop.js';
import { PeerGuard } from '../../../../daemon/backend/peer-guard.js';
import { metricValue } from '../../../../daemon/metrics/metrics.js';
import type { ReconcileTrigger } from '../../../../daemon/backend/reconcile.js';
import { FakeSubnetManager, vxlanLease } from '../../../helpers/fake-subnet-manager.js';
import { until, IN_PROCESS } from '../../../helpers/until.js';

const OWN = vxlanLease('10.10.16.0/20', '192.168.100.1', '0a:00:00:00:00:01');
const PEER = vxlanLease('10.10.32.0/20', '192.168.100.2', '0a:00:00:00:00:02');
const PEER2 = vxlanLease('10.10.48.0/20', '192.168.100.3', '0a:00:00:00:00:03');
const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });

const controllers: AbortController[] = [];
afterEach(() => {
  for (const ac of controllers.splice(0)) ac.abort();
});

/** A loop over a handler whose reconcile records its triggers; `emit` plays the kernel. */
function setup(o: { everyMs?: number; watch?: boolean; batchMs?: number } = {}) {
  const logger = memoryLogger();
  const manager = new FakeSubnetManager('10.10.16.0/20');
  const guard = new PeerGuard({ own: OWN, enableIPv4: true, enableIPv6: false, network: parseNet('10.10.0.0/16'), ownAddrs: [], log: (m) => logger.warn(m) });
  const loop = new LeaseLoop({ name: 'test', subnetManager: manager, logger, guard });
  const runs: ReconcileTrigger[] = [];
  let listener: ((ev: KernelEvent) => void) | undefined;
  let busy = false;
  let overlapped = false;
  const handler: LeaseHandler = {
    async handleBatch() {
      busy = true;
      await new Promise((r) => setTimeout(r, o.batchMs ?? 0));
      busy = false;
    },
    reconcile: {
      ...(o.watch === false
        ? {}
        : {
            watch: (f: (ev: KernelEvent) => void) => {
              listener = f;
              return { close: () => (listener = undefined) };
            },
          }),
      relevant: (ev) => ev.kind === 'resync' || ev.dev === 'flannel.1',
      async run(trigger) {
        if (busy) overlapped = true;
        runs.push(trigger);
      },
      everyMs: () => o.everyMs ?? 0,
      debounceMs: 20,
    },
  };
  const ac = new AbortController();
  controllers.push(ac);
  void loop.run(ac.signal, handler);
  const emit = (ev: KernelEvent) => listener?.(ev);
  return { manager, loop, runs, emit, subscribed: () => listener !== undefined, overlapped: () => overlapped };
}

describe('LeaseLoop reconcile', () => {
  it('subscribes only once the first snapshot is programmed, then reconciles once (what changed before it subscribed)', async () => {
    const t = setup();
    await new Promise((r) => setTimeout(r, 10));
    expect(t.subscribed()).toBe(false);
    t.manager.push([added(PEER)]);
    await t.loop.firstSync;
    await until(() => t.subscribed(), 'the watch subscribed', IN_PROCESS);
    await until(() => t.runs.length === 1, 'the reconcile after subscribing', IN_PROCESS);
  });

  it('coalesces a burst of relevant events into one reconcile, ignores irrelevant ones, and a resync always counts', async () => {
    const t = setup();
    t.manager.push([added(PEER)]);
    await t.loop.firstSync;
    await until(() => t.runs.length === 1, 'the reconcile after subscribing', IN_PROCESS);
    for (let i = 0; i < 100; i++) t.emit({ kind: 'route', deleted: true, dev: 'flannel.1' });
    await until(() => t.runs.length === 2, 'one reconcile', IN_PROCESS);
    t.emit({ kind: 'neigh', deleted: true, dev: 'veth1234' });
    t.emit({ kind: 'resync' });
    await until(() => t.runs.length === 3, 'the resync reconcile', IN_PROCESS);
    await t.loop.idle();
    expect(t.runs).toEqual(['event', 'event', 'event']);
  });

  it('never interleaves a reconcile with a lease batch', async () => {
    const t = setup({ batchMs: 60 });
    t.manager.push([added(PEER)]);
    await t.loop.firstSync;
    await until(() => t.runs.length === 1, 'the reconcile after subscribing', IN_PROCESS);
    t.manager.push([added(PEER2)]);
    await new Promise((r) => setTimeout(r, 5));
    t.emit({ kind: 'fdb', deleted: true, dev: 'flannel.1' });
    await until(() => t.runs.length === 2, 'the reconcile', IN_PROCESS);
    expect(t.overlapped()).toBe(false);
  });

  it('runs periodically without a watch', async () => {
    const t = setup({ watch: false, everyMs: 15 });
    t.manager.push([added(PEER)]);
    await until(() => t.runs.length >= 2, 'two periodic rounds', IN_PROCESS);
    expect(t.runs.every((r) => r === 'periodic')).toBe(true);
  });
});

describe('the convergence SLI', () => {
  it('observes each lease event of a batch after the snapshot, once its handler finished', async () => {
    const name = 'flannel_lease_event_to_programmed_seconds';
    const t = setup();
    const before = await metricValue(name);
    t.manager.push([added(PEER)]); // the snapshot: startup, not an event
    await t.loop.firstSync;
    expect(await metricValue(name)).toBe(before);
    t.manager.push([added(PEER2), added(vxlanLease('10.10.64.0/20', '192.168.100.4', '0a:00:00:00:00:04'))]);
    await until(async () => (await metricValue(name)) === before + 2, 'two observations', IN_PROCESS);
  });
});
