// /healthz, /readyz and /metrics (flanneld main.go mustRunHealthz), only when --healthz-port > 0.
//   GET /healthz → 200 "flanneld is running", or 500 "flanneld is wedged: …" when a loop stopped
//                  making progress (metrics/heartbeat.ts). Go's is always 200.
//   GET /readyz  → 200 "flanneld is ready" while every readiness condition holds, else 503
//                  "flanneld is not ready yet: <reasons>". Go's turns 200 once subnet.env is written
//                  and never goes back; ours also waits for the first programming of the peers, and
//                  goes back to 503 while the datastore is unreachable beyond a grace or the own
//                  lease is overdue for renewal (main.ts registers the conditions).
//   GET /metrics → the Prometheus text format (metrics/metrics.ts).
// Each change of readiness or liveness is logged once, with the reasons; HealthState.watch also
// evaluates every second so that a change is logged (and flannel_ready set) without a probe asking.
import http from 'node:http';
import type { Logger } from '../shared/log.js';
import { METRICS_CONTENT_TYPE, recordReady, renderMetrics } from './metrics/metrics.js';
import { sleep } from './sleep.js';

/** A condition: the reason it fails now, or undefined when it holds. */
export type Check = () => string | undefined;

export interface Verdict {
  ok: boolean;
  reasons: string[];
}

export class HealthState {
  private readonly readiness = new Map<string, Check>();
  private readonly liveness = new Map<string, Check>();
  private wasReady = false;
  private wasLive = true;

  constructor(private readonly log: Logger) {}

  /** A readiness condition; replaces one of the same name. */
  addReadiness(name: string, check: Check): void {
    this.readiness.set(name, check);
  }

  /** A liveness condition (fails only when the daemon is wedged); replaces one of the same name. */
  addLiveness(name: string, check: Check): void {
    this.liveness.set(name, check);
  }

  ready(): Verdict {
    const v = evaluate(this.readiness);
    recordReady(v.ok);
    if (v.ok !== this.wasReady) {
      this.wasReady = v.ok;
      if (v.ok) this.log.info('flanneld is ready');
      else this.log.warn(`flanneld is not ready: ${v.reasons.join('; ')}`);
    }
    return v;
  }

  live(): Verdict {
    const v = evaluate(this.liveness);
    if (v.ok !== this.wasLive) {
      this.wasLive = v.ok;
      if (v.ok) this.log.info('flanneld is making progress again');
      else this.log.error(`flanneld is wedged (/healthz fails, a restart may help): ${v.reasons.join('; ')}`);
    }
    return v;
  }

  /** Evaluates both every `everyMs` until `signal` aborts (transitions logged, flannel_ready kept current). */
  async watch(signal: AbortSignal, everyMs = 1000): Promise<void> {
    do {
      this.ready();
      this.live();
    } while (await sleep(everyMs, signal));
  }
}

function evaluate(checks: Map<string, Check>): Verdict {
  const reasons: string[] = [];
  for (const c of checks.values()) {
    const r = c();
    if (r !== undefined) reasons.push(r);
  }
  return { ok: reasons.length === 0, reasons };
}

export interface HealthServer {
  /** the bound port (useful with port 0 in tests) */
  port(): number;
  close(): Promise<void>;
}

const TEXT = { 'content-type': 'text/plain; charset=utf-8' };

export async function startHealthServer(ip: string, port: number, state: HealthState): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      const v = state.live();
      if (v.ok) res.writeHead(200, TEXT).end('flanneld is running');
      else res.writeHead(500, TEXT).end(`flanneld is wedged: ${v.reasons.join('; ')}`);
    } else if (path === '/readyz') {
      const v = state.ready();
      if (v.ok) res.writeHead(200, TEXT).end('flanneld is ready');
      else res.writeHead(503, TEXT).end(`flanneld is not ready yet: ${v.reasons.join('; ')}`);
    } else if (path === '/metrics') {
      renderMetrics().then(
        (text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(text),
        (err: unknown) => res.writeHead(500, TEXT).end(`metrics: ${String(err)}\n`),
      );
    } else {
      res.writeHead(404, TEXT).end('404 page not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  return {
    port: () => (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        // 3 s grace, as Go's Shutdown with a timeout
        const t = setTimeout(() => server.closeAllConnections(), 3000);
        server.close(() => {
          clearTimeout(t);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
