// Timers that stop on an AbortSignal (Go's select on ctx.Done() and time.After).

/** Waits `ms`; resolves true when the time passed, false when `signal` aborted first. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(t);
      resolve(false);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Exponential back-off: 100 ms doubling up to `max` (flannel's watch reconnect: 100 ms → 5 s). */
export class Backoff {
  private next: number;
  constructor(
    private readonly initial = 100,
    private readonly max = 5000,
  ) {
    this.next = initial;
  }
  /** The delay to wait now; doubles the following one. */
  step(): number {
    const d = this.next;
    this.next = Math.min(this.max, this.next * 2);
    return d;
  }
  reset(): void {
    this.next = this.initial;
  }
}

/** `(ms, signal) → true when the time passed, false when aborted`: sleep's shape, for injecting a fake clock. */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<boolean>;
