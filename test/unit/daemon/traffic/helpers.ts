// Shared by the traffic manager's unit tests: a sleep whose periods end when the test says so.
import { vi } from 'vitest';
import type { Sleep } from '../../../../daemon/sleep.js';

export interface ManualClock {
  sleep: Sleep;
  /** the periods (ms) of the sleeps pending now */
  pending(): number[];
  /** waits until `n` sleeps are pending (the loops reached their next period) */
  settle(n: number): Promise<void>;
  /** ends every pending sleep, then waits until `n` (default: as many) are pending again */
  tick(n?: number): Promise<void>;
}

export function manualClock(): ManualClock {
  let waiters: Array<{ ms: number; resolve: (v: boolean) => void }> = [];
  const sleep: Sleep = (ms, signal) =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve(false);
      const w = { ms, resolve };
      waiters.push(w);
      signal.addEventListener(
        'abort',
        () => {
          waiters = waiters.filter((x) => x !== w);
          resolve(false);
        },
        { once: true },
      );
    });
  const settle = (n: number) => vi.waitFor(() => {
    if (waiters.length < n) throw new Error(`${waiters.length} of ${n} loops waiting`);
  }, { timeout: 2000, interval: 1 });
  return {
    sleep,
    pending: () => waiters.map((w) => w.ms),
    settle,
    async tick(n?: number) {
      const ws = waiters;
      waiters = [];
      for (const w of ws) w.resolve(true);
      await settle(n ?? ws.length);
    },
  };
}
