// Heartbeats of the daemon's long-running loops, for /healthz (liveness), kube-router style: each
// loop beats when it makes progress; a loop whose last beat is older than its period plus the stall
// allowance has stopped making progress, and only then is the daemon wedged (a restart may help).
// A loop that is legitimately idle (waiting on a watch that has nothing to say) is not wedged: it
// runs its wait inside `idleWhile`, which beats on a timer for as long as the wait lasts. So what is
// measured is the time a loop spends *working* on one step (a batch of lease events stuck behind a
// hung `ip` exec, a resync stuck on the xtables lock), never the quiet time between events.
//
// One registry per process, like the metrics registry: a loop anywhere calls `beat('traffic')`.

export interface LoopState {
  /** the longest a healthy loop goes between beats (its resync period, or 0 for event loops) */
  periodMs: number;
  lastBeat: number;
  /** waits in progress (idleWhile) */
  idle: number;
}

export class Heartbeats {
  private readonly loops = new Map<string, LoopState>();
  constructor(private readonly now: () => number = Date.now) {}

  /** Starts watching `name` (beaten now). Loops never registered are never reported. */
  register(name: string, periodMs = 0): void {
    this.loops.set(name, { periodMs, lastBeat: this.now(), idle: 0 });
  }

  unregister(name: string): void {
    this.loops.delete(name);
  }

  beat(name: string): void {
    const l = this.loops.get(name);
    if (l) l.lastBeat = this.now();
  }

  /** `wait`, during which `name` counts as idle (beating); a beat when the wait ends, too. */
  async idleWhile<T>(name: string, wait: Promise<T>): Promise<T> {
    const l = this.loops.get(name);
    if (!l) return wait;
    l.idle++;
    try {
      return await wait;
    } finally {
      l.idle--;
      l.lastBeat = this.now();
    }
  }

  /** Loops that have not beaten for their period plus `stallMs` while not idle: `name: no progress for Ns`. */
  stalled(stallMs: number): string[] {
    const now = this.now();
    const out: string[] = [];
    for (const [name, l] of this.loops) {
      if (l.idle > 0) continue;
      const quiet = now - l.lastBeat;
      if (quiet > l.periodMs + stallMs) out.push(`${name}: no progress for ${Math.round(quiet / 1000)}s`);
    }
    return out;
  }
}

/** The daemon's loops. */
export const heartbeats = new Heartbeats();

/** Progress of a loop in the daemon's registry (no-op when main did not register it). */
export function beat(name: string): void {
  heartbeats.beat(name);
}

/** Registers a periodic loop (`periodMs` between passes) for the time it runs: beat() after each pass, stop() when it ends. */
export function loopHeartbeat(name: string, periodMs: number): { beat(): void; stop(): void } {
  heartbeats.register(name, periodMs);
  return { beat: () => heartbeats.beat(name), stop: () => heartbeats.unregister(name) };
}
