// A small etcd v3 client over etcd's JSON gateway (the `/v3/...` HTTP endpoints every etcd ≥ 3.3
// serves on its client port, the same API `etcdctl` uses over gRPC): range, put, delete, txn, lease
// grant/revoke/time-to-live, a streaming watch, user/password auth and TLS client certificates.
//
// Why not the etcd3 npm package: loading it (grpc-js + protobufjs parsing rpc.proto at start-up)
// adds hundreds of ms and over 20 MiB of RSS before a single key is read (compare `node -e
// "require('etcd3')"` with a bare node), which alone breaks kube-flannel's 50 MiB memory limit.
// node:http(s) is already in the runtime. The data written is the same: etcd's keys, values, leases.
//
// Errors: EtcdError carries the gRPC status code the gateway reports (14 = unavailable, ...) and a
// `recoverable` flag (transport failures, unavailable, deadline, leader changes) that callers use to
// decide to retry; every other error is final.
import http from 'node:http';
import https from 'node:https';
import { errorMessage } from '../../../shared/log.js';
import { streamLines } from '../stream-lines.js';

/** One watch response line (a batch of events); 5000 leases in one response are a few MiB. */
const MAX_WATCH_LINE = 64 * 1024 * 1024;

export interface EtcdTls {
  key: Buffer;
  cert: Buffer;
  ca?: Buffer;
}

export interface EtcdClientOptions {
  /** `http://127.0.0.1:2379`, `https://...`, or `host:port` (https if tls is set, else http) */
  endpoints: string[];
  tls?: EtcdTls;
  /** CA used for https endpoints when no client certificate is configured */
  ca?: Buffer;
  username?: string;
  password?: string;
  /** per unary request, default 5 s */
  requestTimeoutMs?: number;
  /**
   * How often an open watch checks that its endpoint still answers (a count-only range, default 30 s).
   * etcd's gateway offers no ping on an HTTP/1.1 watch stream, and TCP keepalive cannot see a hung or
   * partitioned etcd for ~11 min (75 s × 9 probes), or ever for a stopped one whose kernel still ACKs.
   */
  watchCheckMs?: number;
}

export class EtcdError extends Error {
  constructor(
    message: string,
    /** gRPC status code, or -1 for a transport failure */
    readonly code: number,
    readonly recoverable: boolean,
    opts?: ErrorOptions,
  ) {
    super(message, opts);
    this.name = 'EtcdError';
  }
}

export function isRecoverableError(err: unknown): boolean {
  return err instanceof EtcdError && err.recoverable;
}

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** etcd lease id as decimal text; "0" for a key without a lease */
  lease: string;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
}

export interface WatchResponse {
  revision: number;
  /** the header's cluster ID (a wiped or re-created cluster may change it) */
  clusterId?: string;
  created: boolean;
  events: WatchEvent[];
  /** set when the requested revision was compacted away (the watch is then cancelled) */
  compactRevision?: number;
  canceled: boolean;
  cancelReason?: string;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: unknown) => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : '');
const num = (v: unknown) => (v === undefined || v === null ? 0 : Number(v));

/** The range end that selects every key starting with `prefix` (clientv3.GetPrefixRangeEnd). */
export function prefixRangeEnd(prefix: string): string {
  const buf = Buffer.from(prefix, 'utf8');
  for (let i = buf.length - 1; i >= 0; i--) {
    if (buf[i]! < 0xff) {
      buf[i]! += 1;
      return buf.subarray(0, i + 1).toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64');
}

function toKV(raw: unknown): KeyValue {
  const r = (raw ?? {}) as Record<string, unknown>;
  return {
    key: unb64(r.key),
    value: unb64(r.value),
    createRevision: num(r.create_revision),
    modRevision: num(r.mod_revision),
    version: num(r.version),
    lease: r.lease === undefined ? '0' : String(r.lease),
  };
}

// gRPC codes worth a retry: DeadlineExceeded, ResourceExhausted, Aborted, Unavailable.
const RECOVERABLE_CODES = new Set([4, 8, 10, 14]);

function gatewayError(status: number, body: string): EtcdError {
  let msg = body.trim();
  let code = 2;
  try {
    const j = JSON.parse(body) as Record<string, unknown>;
    const e = (j.error && typeof j.error === 'object' ? j.error : j) as Record<string, unknown>;
    msg = String(e.message ?? e.error ?? msg);
    code = num(e.code ?? e.grpc_code ?? 2);
  } catch {
    /* not JSON */
  }
  if (/^CommonName of client sending a request against gateway/.test(msg)) {
    // etcd ≥ 3.4.2x with auth enabled refuses JSON-gateway requests whose client certificate has a
    // CommonName; Go flanneld talks gRPC and is not affected.
    msg += ': with etcd auth enabled, use a client certificate without a CommonName (SANs only)';
  }
  const recoverable =
    RECOVERABLE_CODES.has(code) || status === 503 || /leader changed|timed out|no leader|too many requests/.test(msg);
  return new EtcdError(msg || `etcd answered HTTP ${status}`, code, recoverable);
}

function isAuthTokenError(e: EtcdError): boolean {
  return e.code === 16 || /invalid auth token|user name is empty/.test(e.message);
}

export class EtcdClient {
  private readonly urls: URL[];
  private current = 0;
  private readonly agentHttp = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private readonly agentHttps: https.Agent;
  private token: string | undefined;
  private readonly timeout: number;
  private readonly watchCheckMs: number;

  constructor(private readonly opts: EtcdClientOptions) {
    if (opts.endpoints.length === 0) throw new TypeError('no etcd endpoints given');
    const dflt = opts.tls ? 'https' : 'http';
    this.urls = opts.endpoints.map((e) => new URL(/^[a-z]+:\/\//i.test(e) ? e : `${dflt}://${e}`));
    this.agentHttps = new https.Agent({
      keepAlive: true,
      maxSockets: 64,
      key: opts.tls?.key,
      cert: opts.tls?.cert,
      ca: opts.tls?.ca ?? opts.ca,
      minVersion: 'TLSv1.2',
    });
    this.timeout = opts.requestTimeoutMs ?? 5000;
    this.watchCheckMs = opts.watchCheckMs ?? 30_000;
  }

  close(): void {
    this.agentHttp.destroy();
    this.agentHttps.destroy();
  }

  private agentFor(u: URL): http.Agent {
    return u.protocol === 'https:' ? this.agentHttps : this.agentHttp;
  }

  private headers(): Record<string, string> {
    const h: Record<string, string> = { 'content-type': 'application/json' };
    if (this.token) h.authorization = this.token;
    return h;
  }

  /** One POST to one endpoint; transport failures become recoverable EtcdError(-1). */
  private postOnce(u: URL, path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const payload = JSON.stringify(body);
      const mod = u.protocol === 'https:' ? https : http;
      const req = mod.request(
        new URL(path, u),
        { method: 'POST', agent: this.agentFor(u), headers: this.headers(), timeout: this.timeout, signal },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => reject(new EtcdError(`etcd ${u.host}: ${e.message}`, -1, true, { cause: e })));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200) return reject(gatewayError(res.statusCode ?? 0, text));
            try {
              resolve(JSON.parse(text));
            } catch (e) {
              reject(new EtcdError(`etcd ${u.host}: bad response: ${text.slice(0, 200)}`, -1, true, { cause: e }));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request timed out after ${this.timeout} ms`)));
      req.on('error', (e) => {
        if (signal?.aborted) return reject(signal.reason ?? e);
        reject(new EtcdError(`etcd ${u.host}: ${e.message}`, -1, true, { cause: e }));
      });
      req.end(payload);
    });
  }

  private async authenticate(u: URL, signal?: AbortSignal): Promise<void> {
    this.token = undefined;
    const r = (await this.postOnce(
      u,
      '/v3/auth/authenticate',
      { name: this.opts.username, password: this.opts.password ?? '' },
      signal,
    )) as { token?: string };
    if (!r.token) throw new EtcdError('etcd authentication returned no token', 16, false);
    this.token = r.token;
  }

  /** POST with endpoint fail-over and (re-)authentication. */
  async call<T = Record<string, unknown>>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    let last: unknown;
    for (let i = 0; i < this.urls.length; i++) {
      const u = this.urls[(this.current + i) % this.urls.length]!;
      try {
        if (this.opts.username && !this.token) await this.authenticate(u, signal);
        try {
          const r = (await this.postOnce(u, path, body, signal)) as T;
          this.current = (this.current + i) % this.urls.length;
          return r;
        } catch (e) {
          if (e instanceof EtcdError && this.opts.username && isAuthTokenError(e)) {
            await this.authenticate(u, signal);
            return (await this.postOnce(u, path, body, signal)) as T;
          }
          throw e;
        }
      } catch (e) {
        if (signal?.aborted) throw e;
        if (!(e instanceof EtcdError) || e.code !== -1) throw e;
        last = e;
      }
    }
    throw new EtcdError(`etcd cluster is unavailable or misconfigured: ${errorMessage(last)}`, 14, true, { cause: last });
  }

  /**
   * `key`, or with `prefix` every key under it. A page of such a listing: `from` (a key under the
   * prefix) starts it there, `limit` caps it (`more` says there is a next page), `revision` reads the
   * store as it was then (the first page's revision keeps the pages one snapshot).
   */
  async range(
    key: string,
    o: { prefix?: boolean; countOnly?: boolean; from?: string; limit?: number; revision?: number } = {},
    signal?: AbortSignal,
  ) {
    const body: Record<string, unknown> = { key: b64(o.from ?? key) };
    if (o.prefix) body.range_end = prefixRangeEnd(key);
    if (o.countOnly) body.count_only = true;
    if (o.limit) body.limit = String(o.limit);
    if (o.revision) body.revision = String(o.revision);
    const r = await this.call<{ header?: { revision?: string; cluster_id?: string }; kvs?: unknown[]; count?: string; more?: boolean }>(
      '/v3/kv/range',
      body,
      signal,
    );
    const out: { revision: number; kvs: KeyValue[]; count: number; more: boolean; clusterId?: string } = {
      revision: num(r.header?.revision),
      kvs: (r.kvs ?? []).map(toKV),
      count: num(r.count),
      more: r.more === true,
    };
    if (r.header?.cluster_id !== undefined) out.clusterId = String(r.header.cluster_id);
    return out;
  }

  async put(key: string, value: string, lease = '0', signal?: AbortSignal): Promise<number> {
    const body: Record<string, unknown> = { key: b64(key), value: b64(value) };
    if (lease !== '0') body.lease = lease;
    const r = await this.call<{ header?: { revision?: string } }>('/v3/kv/put', body, signal);
    return num(r.header?.revision);
  }

  async deleteRange(key: string, o: { prefix?: boolean } = {}, signal?: AbortSignal): Promise<number> {
    const body: Record<string, unknown> = { key: b64(key) };
    if (o.prefix) body.range_end = prefixRangeEnd(key);
    const r = await this.call<{ deleted?: string }>('/v3/kv/deleterange', body, signal);
    return num(r.deleted);
  }

  /** Txn If(Version(key) == 0) Then(Put(key, value, lease)); true when it succeeded. */
  async putIfAbsent(key: string, value: string, lease: string, signal?: AbortSignal): Promise<boolean> {
    const put: Record<string, unknown> = { key: b64(key), value: b64(value) };
    if (lease !== '0') put.lease = lease;
    const r = await this.call<{ succeeded?: boolean }>(
      '/v3/kv/txn',
      {
        compare: [{ target: 'VERSION', result: 'EQUAL', key: b64(key), version: '0' }],
        success: [{ request_put: put }],
      },
      signal,
    );
    return r.succeeded === true;
  }

  async leaseGrant(ttlSec: number, signal?: AbortSignal): Promise<{ id: string; ttl: number }> {
    const r = await this.call<{ ID?: string; TTL?: string; error?: string }>('/v3/lease/grant', { TTL: String(ttlSec) }, signal);
    if (r.error) throw new EtcdError(r.error, 2, false);
    return { id: String(r.ID ?? '0'), ttl: num(r.TTL) };
  }

  async leaseRevoke(id: string, signal?: AbortSignal): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: id }, signal);
  }

  /** Remaining TTL in seconds; -1 for no lease or an expired one (as etcd answers). */
  async leaseTimeToLive(id: string, signal?: AbortSignal): Promise<number> {
    if (id === '0') return -1;
    const r = await this.call<{ TTL?: string }>('/v3/lease/timetolive', { ID: id }, signal);
    return r.TTL === undefined ? -1 : num(r.TTL);
  }

  /**
   * One watch stream on `key` (or every key under it with `prefix`) from `startRevision`. Yields each
   * response; returns when etcd ends the stream; throws a recoverable EtcdError on transport
   * failures. Callers re-watch from the last revision + 1.
   */
  async *watch(
    key: string,
    o: { prefix?: boolean; startRevision?: number },
    signal: AbortSignal,
  ): AsyncGenerator<WatchResponse> {
    const u = this.urls[this.current]!;
    if (this.opts.username && !this.token) {
      try {
        await this.authenticate(u, signal);
      } catch (e) {
        this.current = (this.current + 1) % this.urls.length;
        throw e;
      }
    }
    const create: Record<string, unknown> = { key: b64(key) };
    if (o.prefix) create.range_end = prefixRangeEnd(key);
    if (o.startRevision) create.start_revision = String(o.startRevision);
    const mod = u.protocol === 'https:' ? https : http;
    const local = new AbortController();
    const onAbort = () => local.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const req = mod.request(new URL('/v3/watch', u), {
      method: 'POST',
      agent: u.protocol === 'https:' ? this.agentHttps : false,
      headers: this.headers(),
      signal: local.signal,
    });
    req.on('socket', (s) => s.setKeepAlive(true, 10_000));
    const resP = new Promise<http.IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    req.end(JSON.stringify({ create_request: create }));
    try {
      let res: http.IncomingMessage;
      try {
        res = await resP;
      } catch (e) {
        if (signal.aborted) return;
        this.current = (this.current + 1) % this.urls.length;
        throw new EtcdError(`etcd ${u.host}: watch: ${(e as Error).message}`, -1, true, { cause: e });
      }
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        const err = gatewayError(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'));
        if (this.opts.username && isAuthTokenError(err)) this.token = undefined;
        throw err;
      }
      // liveness: a watch that sees nothing says nothing, so ask the same endpoint now and then; no
      // answer within the request timeout ends this stream and the caller re-watches (elsewhere)
      let dead: string | undefined;
      let probing = false;
      const check = setInterval(() => {
        if (probing) return;
        probing = true;
        this.postOnce(u, '/v3/kv/range', { key: b64(key), count_only: true }, local.signal)
          .catch((e: unknown) => {
            if (local.signal.aborted || (e instanceof EtcdError && !e.recoverable)) return;
            dead = errorMessage(e);
            local.abort();
          })
          .finally(() => (probing = false));
      }, this.watchCheckMs);
      check.unref();
      try {
        for await (const line of streamLines(res, MAX_WATCH_LINE, `etcd ${u.host}: watch`)) yield this.parseWatchLine(line);
      } catch (e) {
        if (signal.aborted) return;
        if (dead !== undefined) {
          this.current = (this.current + 1) % this.urls.length;
          throw new EtcdError(`etcd ${u.host}: watch dropped: the endpoint did not answer a liveness check (${dead})`, -1, true, { cause: e });
        }
        if (e instanceof EtcdError) throw e;
        throw new EtcdError(`etcd ${u.host}: watch stream: ${(e as Error).message}`, -1, true, { cause: e });
      } finally {
        clearInterval(check);
      }
      if (!signal.aborted) throw new EtcdError(`etcd ${u.host}: watch stream ended`, -1, true);
    } finally {
      signal.removeEventListener('abort', onAbort);
      local.abort();
    }
  }

  private parseWatchLine(line: string): WatchResponse {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(line) as Record<string, unknown>;
    } catch (e) {
      throw new EtcdError(`bad watch response: ${line.slice(0, 200)}`, -1, true, { cause: e });
    }
    if (j.error) {
      const err = gatewayError(0, JSON.stringify(j));
      if (this.opts.username && isAuthTokenError(err)) this.token = undefined;
      throw new EtcdError(err.message, err.code, err.recoverable || isAuthTokenError(err));
    }
    const r = (j.result ?? {}) as Record<string, unknown>;
    const header = (r.header ?? {}) as Record<string, unknown>;
    const events = ((r.events ?? []) as Record<string, unknown>[]).map((ev) => ({
      type: ev.type === 'DELETE' ? ('delete' as const) : ('put' as const),
      kv: toKV(ev.kv),
    }));
    const out: WatchResponse = {
      revision: num(header.revision),
      created: r.created === true,
      events,
      canceled: r.canceled === true,
    };
    if (header.cluster_id !== undefined) out.clusterId = String(header.cluster_id);
    if (r.compact_revision !== undefined && num(r.compact_revision) !== 0) out.compactRevision = num(r.compact_revision);
    if (typeof r.cancel_reason === 'string') out.cancelReason = r.cancel_reason;
    return out;
  }
}
