// The idle collector: bun's full GC once the daemon is idle after a burst that grew the heap; never
// while work runs, never for a small growth, never under Node (no Bun global). And the lease loop
// reports each of its serial jobs to it.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IdleCollector } from '../../../../daemon/memory/idle-collect.js';
import { LeaseLoop } from '../../../../daemon/backend/lease-loop.js';
import { PeerGuard } from '../../../../daemon/backend/peer-guard.js';
import { memoryLogger } from '../../../../shared/log.js';
import { parseNet } from '../../../../shared/net/ip.js';
import { FakeSubnetManager, vxlanLease } from '../../../helpers/fake-subnet-manager.js';
import { until, IN_PROCESS } from '../../../helpers/until.js';

const MIB = 1024 * 1024;

function fakeBun() {
  let heap = 10 * MIB;
  const calls: string[] = [];
  const bun = {
    gc: (force: boolean) => {
      calls.push(`gc(${force})`);
      heap = 10 * MIB; // the burst's garbage is gone
    },
    shrink: () => calls.push('shrink'),
  };
  return { bun, calls, grow: (mib: number) => (heap += mib * MIB), heapUsed: () => heap };
}

describe('IdleCollector', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('after a burst that grew the heap by 4 MiB or more: one full GC and a shrink, once idle for delayMs', () => {
    const f = fakeBun();
    const c = new IdleCollector({ bun: f.bun, heapUsed: f.heapUsed, delayMs: 100 });
    c.busy();
    f.grow(20);
    c.idle();
    vi.advanceTimersByTime(99);
    expect(f.calls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(f.calls).toEqual(['gc(true)', 'shrink']);
    // the heap is back at its base: the next small job does not collect again
    c.busy();
    f.grow(1);
    c.idle();
    vi.advanceTimersByTime(10_000);
    expect(c.collections).toBe(1);
  });

  it('a job that grew the heap a little (one lease event) never collects, however many follow until they add up', () => {
    const f = fakeBun();
    const c = new IdleCollector({ bun: f.bun, heapUsed: f.heapUsed });
    for (let i = 0; i < 3; i++) {
      c.busy();
      f.grow(1);
      c.idle();
      vi.advanceTimersByTime(1000);
    }
    expect(f.calls).toEqual([]);
    c.busy();
    f.grow(1); // 4 MiB since the last collection
    c.idle();
    vi.advanceTimersByTime(1000);
    expect(f.calls).toEqual(['gc(true)', 'shrink']);
  });

  it('work that starts before the delay is over postpones the collection to the next idle', () => {
    const f = fakeBun();
    const c = new IdleCollector({ bun: f.bun, heapUsed: f.heapUsed, delayMs: 100 });
    c.busy();
    f.grow(8);
    c.idle();
    vi.advanceTimersByTime(50);
    c.busy();
    vi.advanceTimersByTime(1000);
    expect(f.calls).toEqual([]);
    c.idle();
    vi.advanceTimersByTime(100);
    expect(f.calls).toEqual(['gc(true)', 'shrink']);
  });

  it('under Node (no Bun global) it is a no-op', () => {
    const c = new IdleCollector({ bun: undefined, heapUsed: () => 1000 * MIB });
    c.busy();
    c.idle();
    vi.advanceTimersByTime(10_000);
    expect(c.collections).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('LeaseLoop and the idle collector', () => {
  it('each serial job (a lease batch, periodic work) is bracketed by busy() and idle()', async () => {
    const log: string[] = [];
    const collector = { busy: () => log.push('busy'), idle: () => log.push('idle') };
    const own = vxlanLease('10.10.16.0/20', '192.168.100.1', '0a:00:00:00:00:01');
    const peer = vxlanLease('10.10.32.0/20', '192.168.100.2', '0a:00:00:00:00:02');
    const logger = memoryLogger();
    const manager = new FakeSubnetManager('10.10.16.0/20');
    const guard = new PeerGuard({ own, enableIPv4: true, enableIPv6: false, network: parseNet('10.10.0.0/16'), ownAddrs: [], log: (m) => logger.warn(m) });
    const loop = new LeaseLoop({ name: 'test', subnetManager: manager, logger, guard, collector });
    const ac = new AbortController();
    const run = loop.run(ac.signal, {
      async handleBatch() {
        log.push('batch');
      },
    });
    manager.push([{ type: 'added', lease: peer }]);
    await loop.firstSync;
    await loop.serial(async () => {
      log.push('job');
    });
    await until(() => log.length >= 6, 'two jobs reported', IN_PROCESS);
    expect(log).toEqual(['busy', 'batch', 'idle', 'busy', 'job', 'idle']);
    ac.abort();
    await run;
  });
});
