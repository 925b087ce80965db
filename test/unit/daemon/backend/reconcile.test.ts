// reconcile.ts on its own: the interval from FLANNELD_RECONCILE_INTERVAL, and the RepairLog's once-per-object rule.
import { describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../../shared/log.js';
import { EventTrigger, RepairLog, isEcho, reconcileIntervalFromEnv } from '../../../../daemon/backend/reconcile.js';
import type { KernelEvent } from '../../../../shared/kernel/kernel.js';
import { IN_PROCESS, until } from '../../../helpers/until.js';
import { metricValue } from '../../../../daemon/metrics/metrics.js';

describe('reconcileIntervalFromEnv', () => {
  it('reads ms, s, m and plain milliseconds; unset is undefined; 0 is off', () => {
    const of = (v?: string) => reconcileIntervalFromEnv(v === undefined ? {} : { FLANNELD_RECONCILE_INTERVAL: v });
    expect(of()).toBeUndefined();
    expect(of('')).toBeUndefined();
    expect(of('300ms')).toBe(300);
    expect(of('2s')).toBe(2000);
    expect(of('1.5s')).toBe(1500);
    expect(of('1m')).toBe(60_000);
    expect(of('250')).toBe(250);
    expect(of('0')).toBe(0);
  });

  it('refuses what it cannot read, naming the variable', () => {
    expect(() => reconcileIntervalFromEnv({ FLANNELD_RECONCILE_INTERVAL: '5 minutes' })).toThrow(/FLANNELD_RECONCILE_INTERVAL=5 minutes: expected a duration/);
    expect(() => reconcileIntervalFromEnv({ FLANNELD_RECONCILE_INTERVAL: '-1s' })).toThrow(/expected a duration/);
  });
});

describe('RepairLog', () => {
  it('logs an object once until a periodic round finds it healthy, counts every repair, says how often it flapped', async () => {
    const logger = memoryLogger();
    const log = new RepairLog(logger);
    const r = { kind: 'fdb' as const, action: 'restored' as const, key: 'fdb|flannel.1|0a:00:00:00:00:02', line: 'Repaired fdb X (was missing)' };
    const before = await metricValue('flannel_repairs_total', { kind: 'fdb', action: 'restored' });
    log.repaired(r);
    log.repaired(r);
    log.settle(new Set([r.key])); // still broken in this round: stays quiet
    log.repaired(r);
    expect(logger.lines).toEqual(['I Repaired fdb X (was missing)']);
    log.settle(new Set());
    expect(logger.lines.at(-1)).toBe('I fdb flannel.1 0a:00:00:00:00:02: repaired 2 more times after it was first logged; healthy again');
    log.repaired(r);
    expect(logger.lines.filter((l) => l === 'I Repaired fdb X (was missing)')).toHaveLength(2);
    expect(await metricValue('flannel_repairs_total', { kind: 'fdb', action: 'restored' })).toBe(before + 4);
  });

  it('a repair the kernel refuses is an error line, once', () => {
    const logger = memoryLogger();
    const log = new RepairLog(logger);
    const r = { kind: 'route' as const, action: 'removed' as const, key: 'route|flannel.1|10.10.80.0/20', line: 'Removed stale route 10.10.80.0/20' };
    log.failed(r, 'Operation not permitted');
    log.failed(r, 'Operation not permitted');
    expect(logger.lines).toEqual(['E Failed to remove stale route 10.10.80.0/20: Operation not permitted']);
  });
});

describe('EventTrigger: our own writes echoing back', () => {
  it('new/changed route, neighbour and FDB events while the loop writes (or just wrote) trigger nothing; deletions, link changes and resyncs do', async () => {
    let emit: (ev: KernelEvent) => void = () => {};
    const runs: string[] = [];
    let writing = true;
    const trigger = new EventTrigger(
      { watch: (f) => ((emit = f), { close: () => {} }), run: async (t) => void runs.push(t), everyMs: () => 0, debounceMs: 1 },
      async (f) => f(),
      () => writing,
    );
    trigger.start(); // the start-up reconcile
    await until(() => runs.length === 1, 'the start-up reconcile', IN_PROCESS);
    for (const kind of ['route', 'neigh', 'fdb'] as const) emit({ kind, deleted: false, dev: 'flannel.1' });
    await new Promise((r) => setTimeout(r, 20));
    expect(runs).toHaveLength(1);
    emit({ kind: 'neigh', deleted: true, dev: 'flannel.1' });
    await until(() => runs.length === 2, 'a reconcile for a deleted neighbour', IN_PROCESS);
    emit({ kind: 'link', deleted: false, dev: 'flannel.1' });
    await until(() => runs.length === 3, 'a reconcile for a link change', IN_PROCESS);
    writing = false; // quiet: a changed route is someone else's doing
    emit({ kind: 'route', deleted: false, dev: 'flannel.1' });
    await until(() => runs.length === 4, 'a reconcile for a foreign route change', IN_PROCESS);
    trigger.stop();
    expect(isEcho({ kind: 'resync' }, true)).toBe(false);
  });
});
