// A full garbage collection once a burst of work is over: under bun (the shipped flanneld) only.
//
// JavaScriptCore collects by allocation volume. After a burst (the first lease snapshot of 5000
// peers; a reconcile reading 15000 kernel entries, which allocates ~450k short strings and objects;
// a large lease batch) the daemon goes idle with the burst's garbage in its heap, and nothing
// allocates any more to trigger the collection that would free it: measured at 5000 vxlan peers, the
// JS heap sat at 24–35 MiB used with 13 MiB live. Node (dist/bin, --max-semi-space-size=1) has no GC
// callable without --expose-gc, so there this is a no-op.
//
// The lease loop brackets each piece of work with busy()/idle(). Once the JS heap has grown by
// `growth` (4 MiB) since the last collection, a full collection (Bun.gc(true), then Bun.shrink() to
// hand freed pages back) runs `delayMs` (100 ms) after the work ended, unless more work started
// meanwhile: then it waits for the next idle. One lease event allocates some KiB, so it neither
// triggers a collection nor waits behind one; a collection costs 30–60 ms at 5000 peers here.
//
// Measured on 2026-12-04, dist/exe/flanneld before / after, interleaved, medians (load 1–2, 2 vCPU):
// - scripts/bench/converge, 5000 vxlan peers, netlink, RSS after start + 100–300 events, 10 runs each:
//   VmRSS 135.7 → 120.5 MiB (anonymous 86.3 → 71.0); one event p50 4.6 → 5.0 ms, p99 12.6 → 12.2 ms
//   (run-to-run spread of p50: 3.2–6.4 ms); start → all routes unchanged.
// - scripts/bench/leases, alloc backend, 3 rounds: 5000 leases 94.7 → 81.5 MiB; idle 60.9 → 61.0.
// Left out, measured the same way: a GC on lease batches only (after the snapshot, batches ≥ 256):
// −10 MiB with alloc, nothing with vxlan (the reconcile after the snapshot regrows the heap); a GC
// without Bun.shrink(): converge 124.0 MiB against 112.9 with it (the same 7 runs; before: 135.3); bun --smol
// (--compile-exec-argv=--smol): 93.4 → 92.0 MiB with alloc at 5000, no change idle.

/** What this needs of bun's global (Bun.gc, Bun.shrink). */
export interface BunCollector {
  gc(force: boolean): void;
  shrink?(): void;
}

export interface IdleCollectorOptions {
  /** heap growth since the last collection that makes a burst, bytes (default 4 MiB) */
  growth?: number;
  /** how long the daemon must stay idle before the collection, ms (default 100) */
  delayMs?: number;
  /** the collector to call; default bun's global `Bun` (undefined under Node: a no-op) */
  bun?: BunCollector | undefined;
  /** the JS heap in use, bytes; default process.memoryUsage().heapUsed (~14 µs under bun) */
  heapUsed?: () => number;
}

const MIB = 1024 * 1024;

export class IdleCollector {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = 0;
  private base: number;
  private readonly bun: BunCollector | undefined;
  /** full collections run so far (metrics, tests) */
  collections = 0;

  constructor(private readonly o: IdleCollectorOptions = {}) {
    this.bun = 'bun' in o ? o.bun : (globalThis as { Bun?: BunCollector }).Bun;
    this.base = this.bun ? this.heapUsed() : 0;
  }

  private heapUsed(): number {
    return this.o.heapUsed ? this.o.heapUsed() : process.memoryUsage().heapUsed;
  }

  /** Work starts: a collection waiting for idleness waits for the next idle(). */
  busy(): void {
    this.running++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Work ended: after a burst, collect once nothing else ran for delayMs. */
  idle(): void {
    this.running = Math.max(0, this.running - 1);
    if (!this.bun || this.running > 0 || this.timer) return;
    if (this.heapUsed() - this.base < (this.o.growth ?? 4 * MIB)) return;
    this.timer = setTimeout(() => this.collect(), this.o.delayMs ?? 100);
    // never the reason the daemon stays up
    this.timer.unref?.();
  }

  private collect(): void {
    this.timer = undefined;
    if (!this.bun || this.running > 0) return;
    this.bun.gc(true);
    this.bun.shrink?.();
    this.collections++;
    this.base = this.heapUsed();
  }
}

/** The daemon's one collector: every lease loop reports its work to it. */
export const idleCollector = new IdleCollector();
