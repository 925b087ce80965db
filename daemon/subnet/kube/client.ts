// A small Kubernetes REST client over node:http(s): JSON only, keep-alive, client-go's
// User-Agent, bearer tokens re-read from their file, Retry-After on 429/5xx, a token bucket (QPS 5,
// burst 10), `metav1.Status` errors, and a watch stream with an idle watchdog (HTTP/1.1 has no
// HTTP/2 ping, so a half-open connection is noticed by silence instead).
//
// Accept is always JSON: client-go's typed calls ask for protobuf first, which we could not decode.
import http from 'node:http';
import https from 'node:https';
import { basename } from 'node:path';
import { readFileBounded } from '../../../shared/fs/read-bounded.js';
import type { Logger } from '../../../shared/log.js';
import { sleep } from '../../sleep.js';
import type { KubeClientConfig } from './kubeconfig.js';
import { streamLines } from '../stream-lines.js';

export const ACCEPT_JSON = 'application/json, */*';
export const STRATEGIC_MERGE = 'application/strategic-merge-patch+json';
const MAX_RETRY_AFTER = 10; // client-go's maxRetries for Retry-After answers
const MAX_BODY = 64 * 1024 * 1024; // a 5000-node list is ~25 MB

/** An API error: the server's `Status` (or one derived from the HTTP code), or a transport error. */
export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly reason: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

/** 410, or reason Expired/Gone: the resourceVersion is no longer served. */
export function isExpired(err: unknown): boolean {
  return err instanceof KubeApiError && (err.code === 410 || err.reason === 'Expired' || err.reason === 'Gone');
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  410: 'Expired',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** A Status body, or (client-go's newUnstructuredResponseError) one made up from the code and text. */
export function statusError(code: number, body: string, retryAfter?: number): KubeApiError {
  try {
    const s = JSON.parse(body) as { kind?: string; message?: string; reason?: string; code?: number; details?: { retryAfterSeconds?: number } };
    if (s && s.kind === 'Status') {
      return new KubeApiError(s.message || `the server responded with the status code ${code}`, s.code || code, s.reason || REASONS[code] || 'Unknown', retryAfter ?? s.details?.retryAfterSeconds);
    }
  } catch {
    /* not JSON: below */
  }
  const text = body.trim().slice(0, 500);
  const what = code === 401 ? 'Unauthorized' : text || `the server responded with the status code ${code} but did not return more information`;
  return new KubeApiError(what, code, REASONS[code] ?? 'Unknown', retryAfter);
}

/**
 * A bearer token from a file as client-go's cachingTokenSource: cached ~50 s (expiry 1 min, refreshed 10 s
 * before), trimmed, an empty file keeps the old token, and a 401 drops the cache.
 */
export class FileTokenSource {
  private token: string | undefined;
  private readAt = 0;
  constructor(
    private readonly path: string,
    private readonly log: Logger,
    private readonly ttlMs = 50_000,
    private readonly now: () => number = Date.now,
  ) {}
  get(): string | undefined {
    if (this.token === undefined || this.now() - this.readAt >= this.ttlMs) {
      try {
        const t = readFileBounded(this.path, 1024 * 1024).toString('utf8').trim();
        if (t === '') this.log.error(`read empty token from file ${JSON.stringify(this.path)}`);
        else this.token = t;
      } catch (err) {
        this.log.error(`failed to read token file ${JSON.stringify(this.path)}: ${(err as Error).message}`);
      }
      this.readAt = this.now();
    }
    return this.token;
  }
  invalidate(): void {
    this.readAt = 0;
  }
}

/** client-go's token bucket (flowcontrol.NewTokenBucketRateLimiter): QPS 5, burst 10. */
class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly qps: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
    this.last = Date.now();
  }
  async take(signal?: AbortSignal): Promise<void> {
    if (this.qps <= 0) return;
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      if (!(await sleep(((1 - this.tokens) / this.qps) * 1000, signal))) return;
    }
  }
}

/** Go's GOOS/GOARCH names for the User-Agent. */
function goArch(): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
}

export function defaultUserAgent(argv0 = process.argv[1] ?? 'flanneld'): string {
  const name = basename(argv0).replace(/\.(m?js|ts)$/, '') || 'flanneld';
  return `${name === 'main' ? 'flanneld' : name}/v0.0.0 (${process.platform}/${goArch()}) kubernetes/$Format`;
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: string;
  contentType?: string;
  signal?: AbortSignal;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface KubeClientOptions {
  log: Logger;
  userAgent?: string;
  /** 0 turns the rate limit off (tests) */
  qps?: number;
  burst?: number;
  /** idle socket timeout of a plain request, default 60 s */
  requestIdleMs?: number;
}

export class KubeClient {
  private readonly agent: http.Agent;
  private readonly tokens?: FileTokenSource;
  private readonly limiter: TokenBucket;
  private readonly userAgent: string;
  private readonly log: Logger;
  private readonly requestIdleMs: number;

  constructor(
    readonly config: KubeClientConfig,
    o: KubeClientOptions,
  ) {
    this.log = o.log;
    this.userAgent = o.userAgent ?? defaultUserAgent();
    this.limiter = new TokenBucket(o.qps ?? 5, o.burst ?? 10);
    this.requestIdleMs = o.requestIdleMs ?? 60_000;
    const tls = config.server.protocol === 'https:';
    this.agent = tls
      ? new https.Agent({
          keepAlive: true,
          keepAliveMsecs: 30_000,
          ...(config.ca ? { ca: config.ca } : {}),
          ...(config.cert ? { cert: config.cert, key: config.key } : {}),
          rejectUnauthorized: !config.insecureSkipTLSVerify,
          ...(config.tlsServerName ? { servername: config.tlsServerName } : {}),
        })
      : new http.Agent({ keepAlive: true, keepAliveMsecs: 30_000 });
    if (config.tokenFile) this.tokens = new FileTokenSource(config.tokenFile, o.log);
  }

  close(): void {
    this.agent.destroy();
  }

  private url(path: string, query?: Record<string, string | undefined>): URL {
    const u = new URL(this.config.server.href.replace(/\/+$/, '') + path);
    // Go's url.Values.Encode: sorted by key
    for (const k of Object.keys(query ?? {}).sort()) {
      const v = query![k];
      if (v !== undefined) u.searchParams.append(k, v);
    }
    return u;
  }

  private headers(contentType?: string): Record<string, string> {
    const h: Record<string, string> = { Accept: ACCEPT_JSON, 'User-Agent': this.userAgent };
    if (contentType) h['Content-Type'] = contentType;
    if (this.config.server.protocol === 'https:') {
      const token = this.config.token ?? this.tokens?.get();
      if (token) h.Authorization = `Bearer ${token}`;
      else if (this.config.username !== undefined) h.Authorization = `Basic ${Buffer.from(`${this.config.username}:${this.config.password ?? ''}`).toString('base64')}`;
    }
    return h;
  }

  /** One request and its response (status, headers, body). Transport errors reject. */
  private send(method: string, u: URL, o: RequestOptions): Promise<{ status: number; retryAfter?: number; body: string }> {
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(u, { method, agent: this.agent, headers: this.headers(o.contentType), signal: o.signal }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) req.destroy(new Error(`response to ${method} ${u.pathname} larger than ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: retryAfterOf(res.headers['retry-after']), body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.setTimeout(this.requestIdleMs, () => req.destroy(new Error(`no answer to ${method} ${u.pathname} for ${this.requestIdleMs / 1000} s`)));
      req.on('error', reject);
      req.end(o.body);
    });
  }

  /**
   * A JSON request. 429/5xx with Retry-After are retried after that delay (up to 10 times, as client-go);
   * a 401 drops the cached token so the next request re-reads its file.
   */
  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const u = this.url(path, o.query);
    for (let attempt = 0; ; attempt++) {
      await this.limiter.take(o.signal);
      const res = await this.send(method, u, o);
      if (res.status >= 200 && res.status < 300) {
        try {
          return JSON.parse(res.body) as T;
        } catch {
          throw new KubeApiError(`${method} ${u.pathname}: the server answered ${res.status} with a body that is not JSON`, res.status, 'InternalError');
        }
      }
      if (res.status === 401) this.tokens?.invalidate();
      const err = statusError(res.status, res.body, res.retryAfter);
      if ((res.status === 429 || res.status >= 500) && res.retryAfter !== undefined && attempt < MAX_RETRY_AFTER) {
        this.log.warn(`${method} ${u.pathname}: ${err.message} (HTTP ${res.status}); retrying in ${res.retryAfter} s as the server asked`);
        if (!(await sleep(res.retryAfter * 1000, o.signal))) throw err;
        continue;
      }
      throw err;
    }
  }

  /**
   * A watch: yields each event of the stream; ends when the server ends the response (its timeout).
   * Rejects on a non-200 answer (KubeApiError), a broken connection, or `idleMs` without a byte
   * (the watchdog). `onOpen` runs once the 200 headers arrived.
   */
  async *watch<T>(path: string, query: Record<string, string | undefined>, o: { signal: AbortSignal; idleMs: number; onOpen?: () => void }): AsyncGenerator<WatchEvent<T>> {
    const u = this.url(path, query);
    await this.limiter.take(o.signal);
    const mod = u.protocol === 'https:' ? https : http;
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    o.signal.addEventListener('abort', onAbort, { once: true });
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = mod.request(u, { method: 'GET', agent: this.agent, headers: this.headers(), signal: ac.signal }, resolve);
      req.setTimeout(o.idleMs, () => req.destroy(new Error(`watch ${u.pathname}: no answer for ${Math.round(o.idleMs / 1000)} s`)));
      req.on('error', reject);
      req.end();
    }).catch((err) => {
      o.signal.removeEventListener('abort', onAbort);
      throw err;
    });
    try {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        if (res.statusCode === 401) this.tokens?.invalidate();
        throw statusError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), retryAfterOf(res.headers['retry-after']));
      }
      o.onOpen?.();
      // the watchdog: silence for idleMs (no event, no bookmark) means a dead connection
      res.setTimeout(o.idleMs, () => res.destroy(new Error(`watch ${u.pathname}: nothing received for ${Math.round(o.idleMs / 1000)} s (connection presumed dead)`)));
      for await (const line of streamLines(res, MAX_BODY, `watch ${u.pathname}`)) yield parseEvent<T>(line);
      if (!res.complete && !o.signal.aborted) throw new Error(`watch ${u.pathname}: the connection was closed mid-stream`);
    } finally {
      o.signal.removeEventListener('abort', onAbort);
      ac.abort();
      res.destroy();
    }
  }
}

function parseEvent<T>(line: string): WatchEvent<T> {
  let ev: WatchEvent<T>;
  try {
    ev = JSON.parse(line) as WatchEvent<T>;
  } catch {
    throw new Error(`watch: a line that is not JSON: ${line.slice(0, 200)}`);
  }
  if (!ev || typeof ev.type !== 'string' || typeof ev.object !== 'object' || ev.object === null) throw new Error(`watch: not an event: ${line.slice(0, 200)}`);
  return ev;
}

function retryAfterOf(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v.trim());
}
