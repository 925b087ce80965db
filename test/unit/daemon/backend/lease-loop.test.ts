// The shared lease loop: serial, never dies on a throwing handler, firstSync always settles, retries.
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../../shared/log.js';
import { parseNet } from '../../../../shared/net/ip.js';
import type { Lease, LeaseEvent } from '../../../../daemon/lease.js';
import { LeaseLoop, type LeaseHandler } from '../../../../daemon/backend/lease-loop.js';
import { PeerGuard } from '../../../../daemon/backend/peer-guard.js';
import { FakeSubnetManager, vxlanLease } from '../../../helpers/fake-subnet-manager.js';
import { until } from '../../../helpers/until.js';

const OWN = vxlanLease('10.10.16.0/20', '192.168.100.1', '0a:00:00:00:00:01');
const PEER = vxlanLease('10.10.32.0/20', '192.168.100.2', '0a:00:00:00:00:02');
const PEER2 = vxlanLease('10.10.48.0/20', '192.168.100.3', '0a:00:00:00:00:03');
const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });

const controllers: AbortController[] = [];
afterEach(() => {
  for (const ac of controllers.splice(0)) ac.abort();
});

function setup(handler: LeaseHandler, retryDelay = 5) {
  const logger = memoryLogger();
  const manager = new FakeSubnetManager('10.10.16.0/20');
  const guard = new PeerGuard({ own: OWN, enableIPv4: true, enableIPv6: false, network: parseNet('10.10.0.0/16'), ownAddrs: [], log: (m) => logger.warn(m) });
  const loop = new LeaseLoop({ name: 'test', subnetManager: manager, logger, guard, retryDelay: () => retryDelay });
  const ac = new AbortController();
  controllers.push(ac);
  const run = loop.run(ac.signal, handler);
  return { logger, manager, loop, run, ac };
}

describe('LeaseLoop', () => {
  it('a handler that throws is logged at error level and the loop goes on; firstSync settles anyway', async () => {
    const seen: string[][] = [];
    let sweeps = 0;
    const { logger, manager, loop } = setup({
      async handleBatch(events) {
        seen.push([...events.keys()]);
        if (seen.length === 1) throw new Error('a bug');
      },
      async removeStale() {
        sweeps++;
      },
    });
    manager.push([added(PEER)]);
    await loop.firstSync;
    manager.push([added(PEER2)]);
    await until(() => seen.length === 2, 'the second batch');
    expect(seen).toEqual([['10.10.32.0/20'], ['10.10.48.0/20']]);
    expect(logger.lines).toContain('E test: unexpected error: a bug');
    // the sweep is skipped when the snapshot failed: what to keep is not known
    expect(sweeps).toBe(0);
  });

  it('hands the raw snapshot once, leaves our own lease out and runs the sweep after it', async () => {
    const calls: Array<{ keys: string[]; snapshot?: number }> = [];
    const order: string[] = [];
    const { manager, loop } = setup({
      async handleBatch(events, ctx) {
        order.push('batch');
        calls.push({ keys: [...events.keys()], ...(ctx.snapshot ? { snapshot: ctx.snapshot.length } : {}) });
      },
      async removeStale() {
        order.push('sweep');
      },
    });
    manager.push([added(OWN), added(PEER)]);
    await loop.firstSync;
    manager.push([added(PEER2)]);
    await until(() => calls.length === 2, 'the second batch');
    expect(calls).toEqual([{ keys: ['10.10.32.0/20'], snapshot: 2 }, { keys: ['10.10.48.0/20'] }]);
    expect(order).toEqual(['batch', 'sweep', 'batch']);
  });

  it('retries with back-off until cancelled; a new event for the lease cancels its retry', async () => {
    const due: string[] = [];
    let loop!: LeaseLoop;
    const h: LeaseHandler = {
      async handleBatch(events) {
        for (const [k, ev] of events) loop.scheduleRetry(k, ev.lease);
      },
      async retry(leases) {
        for (const [k, l] of leases) {
          due.push(k);
          if (due.length < 3) loop.scheduleRetry(k, l);
          else loop.cancelRetry(k);
        }
      },
    };
    const s = setup(h);
    loop = s.loop;
    s.manager.push([added(PEER)]);
    await until(() => due.length === 3, 'three retries');
    expect(loop.pendingRetries().size).toBe(0);
    // doubled each time: 5, 10, 20 ms
    loop.scheduleRetry('x', PEER);
    loop.scheduleRetry('x', PEER);
    expect(loop.pendingRetries().get('x')?.delay).toBe(10);
    loop.cancelRetry('x');
  });

  it('runs periodic work serialized with the batches, and stops with the signal', async () => {
    let rounds = 0;
    const { run, ac } = setup({
      async handleBatch() {},
      periodic: [{ everyMs: () => 2, run: async () => void rounds++ }],
    });
    await until(() => rounds >= 3, 'three rounds');
    ac.abort();
    await run;
    const after = rounds;
    await new Promise((r) => setTimeout(r, 20));
    expect(rounds).toBe(after);
  });
});
