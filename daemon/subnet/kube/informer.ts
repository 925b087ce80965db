// The node informer: client-go's reflector (list + watch) over KubeClient, with its rules (client-go tools/cache/reflector.go):
//   list `resourceVersion=0&limit=500` (following `continue`), then watch from the list's RV with
//   bookmarks and a 300–599 s timeout; every event, bookmarks included, moves the RV on; a normal end
//   re-watches at once; 410/Expired → relist (at the last RV, and then without one if that is 410 too);
//   connection refused / 429 / a stream broken after it opened → re-watch from the last RV after the
//   back-off; anything else → back-off, then relist.
//   Back-off 0.8 s doubling to 30 s, jitter ×(1..2), reset after 2 min without one.
// Beyond client-go: a watch silent for `watchIdleMs` (90 s; bookmarks come every ~60 s) is presumed
// dead and re-watched (client-go relies on HTTP/2 pings, which HTTP/1.1 lacks); it never stops for any error; a handler's exception is logged, not fatal; and
// `onHealth(false)` fires when no list or watch has been up for `downAfterMs`, `onHealth(true)` when
// one is again (for /readyz).
import type { Logger } from '../../../shared/log.js';
import { Backoff, sleep } from '../../sleep.js';
import { recordWatchResync } from '../../metrics/metrics.js';
import { type KubeClient, KubeApiError, isExpired } from './client.js';
import type { Node } from './node.js';

export interface NodeHandlers {
  /** the whole set after a list: (re)sync the cache to exactly these nodes */
  replace(nodes: Node[]): void;
  upsert(node: Node): void;
  remove(node: Node): void;
}

export interface InformerOptions {
  log: Logger;
  handlers: NodeHandlers;
  onHealth?: (up: boolean) => void;
  pageSize?: number;
  backoffInitialMs?: number;
  backoffCapMs?: number;
  backoffResetMs?: number;
  watchIdleMs?: number;
  downAfterMs?: number;
  /** the watch's timeoutSeconds, default 300 × (1 + rand) */
  watchTimeoutSeconds?: () => number;
  random?: () => number;
}

interface NodeList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: Node[];
}

const NODES = '/api/v1/nodes';

/** wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0): daemon/sleep's Backoff plus jitter and a reset after quiet. */
class JitterBackoff {
  private readonly inner: Backoff;
  private lastAt = 0;
  constructor(
    initial: number,
    cap: number,
    private readonly resetAfter: number,
    private readonly random: () => number,
  ) {
    this.inner = new Backoff(initial, cap);
  }
  step(): number {
    const now = Date.now();
    if (now - this.lastAt > this.resetAfter) this.inner.reset();
    this.lastAt = now;
    return Math.round(this.inner.step() * (1 + this.random()));
  }
}

function transient(err: unknown): boolean {
  if (err instanceof KubeApiError) return err.code === 429;
  return (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
}

function describe(err: unknown): string {
  if (err instanceof KubeApiError) return `${err.message} (HTTP ${err.code}${err.reason ? ` ${err.reason}` : ''})`;
  return (err as Error).message ?? String(err);
}

export class NodeInformer {
  private rv = '';
  private paginated = false;
  private hasSynced = false;
  private syncedResolve!: () => void;
  /** resolves once the first list has been handed to `replace` */
  readonly synced: Promise<void> = new Promise((r) => (this.syncedResolve = r));
  private up = true;
  /** the current watch got its 200 */
  private opened = false;
  private downSince: number | undefined;
  private downTimer: NodeJS.Timeout | undefined;
  private reportedDown = false;
  /** what happened, for tests and logs: 'list', 'watch', 'relist-expired' … */
  readonly stats = { lists: 0, watches: 0, events: 0, bookmarks: 0, errors: 0 };

  constructor(
    private readonly client: KubeClient,
    private readonly o: InformerOptions,
  ) {}

  get resourceVersion(): string {
    return this.rv;
  }

  isSynced(): boolean {
    return this.hasSynced;
  }

  async run(signal: AbortSignal): Promise<void> {
    const random = this.o.random ?? Math.random;
    const backoff = new JitterBackoff(this.o.backoffInitialMs ?? 800, this.o.backoffCapMs ?? 30_000, this.o.backoffResetMs ?? 120_000, random);
    let needList = true;
    try {
      while (!signal.aborted) {
        if (needList) {
          try {
            const relist = this.hasSynced;
            await this.list(signal);
            if (relist) recordWatchResync(); // flannel_datastore_watch_resyncs_total
            needList = false;
          } catch (err) {
            if (signal.aborted) return;
            this.markDown();
            if (isExpired(err) && this.rv !== '') {
              // the RV we relisted at is gone too: a quorum read at once (client-go's fallback)
              this.o.log.warn(`node list at resourceVersion ${this.rv}: ${describe(err)}; listing afresh`);
              this.rv = '';
              continue;
            }
            const d = backoff.step();
            this.o.log.error(`failed to list nodes (retrying in ${(d / 1000).toFixed(1)} s): ${describe(err)}`);
            await sleep(d, signal);
            continue;
          }
        }
        const started = Date.now();
        let events = 0;
        this.opened = false;
        try {
          events = await this.watchOnce(signal);
          if (signal.aborted) return;
          if (events === 0 && Date.now() - started < 1000) {
            // client-go's "very short watch": a server closing at once would make us spin; relist
            this.opened = false;
            throw new Error('very short watch: the server closed the watch at once without an event');
          }
          // the server's timeout: re-watch at once from the last RV
        } catch (err) {
          if (signal.aborted) return;
          this.stats.errors++;
          this.markDown();
          const d = backoff.step();
          if (isExpired(err)) {
            this.o.log.info(`node watch: ${describe(err)}; relisting in ${(d / 1000).toFixed(1)} s`);
            needList = true;
          } else if (transient(err) || (this.opened && !(err instanceof KubeApiError))) {
            // refused, 429, or a stream that broke or went silent after it opened (client-go ends such a
            // stream like a normal one): the events up to the last RV arrived, so re-watch from there
            this.o.log.warn(`node watch failed (re-watching from resourceVersion ${this.rv} in ${(d / 1000).toFixed(1)} s): ${describe(err)}`);
          } else {
            this.o.log.warn(`node watch failed (relisting in ${(d / 1000).toFixed(1)} s): ${describe(err)}`);
            needList = true;
          }
          await sleep(d, signal);
        }
      }
    } finally {
      clearTimeout(this.downTimer);
    }
  }

  /** Lists every node (following `continue`) and hands the set to `replace`. */
  private async list(signal: AbortSignal): Promise<void> {
    const items: Node[] = [];
    const first = !this.hasSynced;
    // RV 0 and a page size first; a relist at a concrete RV asks for everything at once unless the
    // first answer showed that this server paginates even there (as client-go's pager does)
    const limit = first || this.paginated ? String(this.o.pageSize ?? 500) : undefined;
    let query: Record<string, string | undefined> = { resourceVersion: first ? '0' : this.rv || undefined, limit };
    let listRV = '';
    for (;;) {
      const page = await this.client.request<NodeList>('GET', NODES, { query, signal });
      this.stats.lists++;
      for (const n of page.items ?? []) if (n?.metadata?.name) items.push(n);
      listRV = page.metadata?.resourceVersion ?? listRV;
      const cont = page.metadata?.continue;
      if (!cont) break;
      if (first) this.paginated = true;
      query = { limit: String(this.o.pageSize ?? 500), continue: cont };
    }
    this.rv = listRV;
    this.markUp();
    this.safely('replace', () => this.o.handlers.replace(items));
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.syncedResolve();
    }
  }

  /** One watch from the current RV; returns the number of events when the server ends it. */
  private async watchOnce(signal: AbortSignal): Promise<number> {
    const timeout = this.o.watchTimeoutSeconds?.() ?? Math.floor(300 * (1 + (this.o.random ?? Math.random)()));
    const query = { allowWatchBookmarks: 'true', resourceVersion: this.rv, timeoutSeconds: String(timeout), watch: 'true' };
    this.stats.watches++;
    let n = 0;
    for await (const ev of this.client.watch<Node & { kind?: string; code?: number; reason?: string; message?: string }>(NODES, query, {
      signal,
      idleMs: this.o.watchIdleMs ?? 90_000,
      onOpen: () => {
        this.opened = true;
        this.markUp();
      },
    })) {
      n++;
      if (ev.type === 'ERROR') {
        const s = ev.object;
        throw new KubeApiError(s.message ?? 'watch error', s.code ?? 500, s.reason ?? '');
      }
      const rv = ev.object.metadata?.resourceVersion;
      if (ev.type === 'BOOKMARK') {
        this.stats.bookmarks++;
        if (rv) this.rv = rv;
        continue;
      }
      if (!ev.object.metadata?.name) continue;
      this.stats.events++;
      if (ev.type === 'ADDED' || ev.type === 'MODIFIED') this.safely(ev.type, () => this.o.handlers.upsert(ev.object));
      else if (ev.type === 'DELETED') this.safely(ev.type, () => this.o.handlers.remove(ev.object));
      if (rv) this.rv = rv;
    }
    return n;
  }

  private safely(what: string, f: () => void): void {
    try {
      f();
    } catch (err) {
      this.o.log.error(`node informer: the ${what} handler failed (the informer goes on): ${(err as Error).stack ?? String(err)}`);
    }
  }

  private markUp(): void {
    clearTimeout(this.downTimer);
    this.downTimer = undefined;
    this.downSince = undefined;
    if (this.reportedDown) {
      this.reportedDown = false;
      this.o.log.info('node watch is up again');
      this.o.onHealth?.(true);
    }
    this.up = true;
  }

  private markDown(): void {
    if (this.downSince !== undefined) return;
    this.up = false;
    this.downSince = Date.now();
    const after = this.o.downAfterMs ?? 30_000;
    this.downTimer = setTimeout(() => {
      if (this.up) return;
      this.reportedDown = true;
      this.o.log.error(`node watch has been down for ${Math.round(after / 1000)} s: peers' changes are not seen (not ready)`);
      this.o.onHealth?.(false);
    }, after);
    this.downTimer.unref?.();
  }
}
