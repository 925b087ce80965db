// The Kubernetes API-server double: what flanneld and kubectl need of a kube-apiserver (nodes, pods, the
// kinds of kube-flannel.yml; list/watch with resourceVersions, bookmarks and 410; strategic, merge and
// JSON patches; Status errors; bearer tokens and RBAC) over node:http(s), with a store of JSON objects,
// one global resourceVersion counter, an event history for watches, and a test-control API (in-process
// methods; the same methods over `POST /_double/<method>` for scripts and the lab).
// Usage: see ./main.ts (standalone) and startApiServer below (in-process).
// Over 450 lines on purpose: startApiServer is one closure whose handlers share the store, the watch
// fan-out and the fault queue; the stateless parts live beside it (patch.ts, status.ts, fixtures.ts).
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeServerCerts } from './certs.js';
import { makeNode, makePod, rfc3339, type NodeSpecInput } from './fixtures.js';
import { type Json, PatchError, jsonPatch, mergePatch, strategicMerge } from './patch.js';
import * as S from './status.js';

type Obj = { [k: string]: Json };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

// ---------------------------------------------------------------------------------------------------
// Resources served: the core ones flanneld and kubectl use, and the kinds of kube-flannel.yml (stored
// generically so that `kubectl apply -f deploy/kube-flannel.yml` works).

interface ResourceDef {
  kind: string;
  namespaced: boolean;
  verbs: string[];
  shortNames?: string[];
  subresources?: string[];
}
const RW = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
const GROUPS: Record<string, Record<string, ResourceDef>> = {
  v1: {
    nodes: { kind: 'Node', namespaced: false, verbs: RW, shortNames: ['no'], subresources: ['status'] },
    pods: { kind: 'Pod', namespaced: true, verbs: RW, shortNames: ['po'], subresources: ['status'] },
    namespaces: { kind: 'Namespace', namespaced: false, verbs: RW, shortNames: ['ns'] },
    serviceaccounts: { kind: 'ServiceAccount', namespaced: true, verbs: RW, shortNames: ['sa'] },
    configmaps: { kind: 'ConfigMap', namespaced: true, verbs: RW, shortNames: ['cm'] },
    secrets: { kind: 'Secret', namespaced: true, verbs: RW },
  },
  'apps/v1': {
    daemonsets: { kind: 'DaemonSet', namespaced: true, verbs: RW, shortNames: ['ds'], subresources: ['status'] },
  },
  'rbac.authorization.k8s.io/v1': {
    clusterroles: { kind: 'ClusterRole', namespaced: false, verbs: RW },
    clusterrolebindings: { kind: 'ClusterRoleBinding', namespaced: false, verbs: RW },
    roles: { kind: 'Role', namespaced: true, verbs: RW },
    rolebindings: { kind: 'RoleBinding', namespaced: true, verbs: RW },
  },
};

/** kube-flannel's ClusterRole (spec kube.md §2): group → resource → verbs */
const FLANNEL_ROLE: Record<string, string[]> = { pods: ['get'], nodes: ['get', 'list', 'watch'], 'nodes/status': ['patch'] };
export const FLANNEL_USER = 'system:serviceaccount:kube-flannel:flannel';

// ---------------------------------------------------------------------------------------------------

export interface Fault {
  /** HTTP method to match (any if absent) */
  method?: string;
  /** a path prefix (string) or a RegExp tested on path + query */
  path?: string | RegExp;
  /** only watch requests (true), only non-watch (false), both (absent) */
  watch?: boolean;
  /** how many matching requests fail (default 1) */
  count?: number;
  code: number;
  reason?: string;
  message?: string;
  /** Retry-After header, seconds */
  retryAfter?: number;
  /** a plain-text body (as priority-and-fairness 429s) instead of a Status */
  plain?: string;
  /** drop the connection instead of answering */
  drop?: boolean;
}

export interface RequestRecord {
  seq: number;
  time: number;
  method: string;
  url: string;
  path: string;
  query: Record<string, string>;
  accept: string;
  contentType: string;
  userAgent: string;
  authorization: boolean;
  user: string;
  body: string;
  /** response status (0 while a watch streams) */
  status: number;
}

export interface ApiServerOptions {
  /** listen address (default 127.0.0.1) */
  host?: string;
  /** default 0 (a free port) */
  port?: number;
  /** serve HTTPS with a test CA (default: true when auth is on) */
  tls?: boolean;
  /** extra SANs for the server certificate (the addresses clients dial) */
  sans?: string[];
  /** check bearer tokens (401 otherwise); implies tls unless tls is false */
  auth?: boolean;
  /** 'flannel': only kube-flannel's ClusterRole for non-admin users (spec §5.7) */
  rbac?: 'off' | 'flannel';
  /** default 60 s; tests use ~500 ms */
  bookmarkPeriodMs?: number;
  /** paginate lists with resourceVersion=0 too (a 1.34 watch cache can) */
  paginateRV0?: boolean;
  /** a directory for certs and token files (default: a new temp dir, removed by close()) */
  dir?: string;
  /** initial nodes */
  nodes?: NodeSpecInput[];
  /** keep at most this many events of watch history (default 10000); older ones are compacted */
  historyLimit?: number;
  /** forget events older than this (a real watch cache keeps ≥ 75 s); default: kept by count only */
  historyMaxAgeMs?: number;
}

export interface ApiServerDouble {
  url: string;
  port: number;
  dir: string;
  /** PEM file and text of the CA (https only) */
  caFile?: string;
  caPem?: string;
  /** tokens: admin bypasses RBAC; flannel is kube-flannel's service account */
  tokens: { admin: string; flannel: string };
  /** token files written in dir (serviceaccount layout: <dir>/serviceaccount/{token,ca.crt,namespace}) */
  serviceAccountDir: string;
  requests: RequestRecord[];

  resourceVersion(): number;
  addNode(n: NodeSpecInput | Obj): Obj;
  /** many nodes at once (benches); returns how many */
  addNodes(ns: (NodeSpecInput | Obj)[]): number;
  putObject(resource: string, obj: Obj): Obj;
  getNode(name: string): Obj | undefined;
  getObject(resource: string, name: string, namespace?: string): Obj | undefined;
  listNodes(): Obj[];
  deleteNode(name: string): boolean;
  deleteObject(resource: string, name: string, namespace?: string): boolean;
  /** as the node-ipam controller: sets spec.podCIDR(s) */
  setPodCIDRs(name: string, cidrs: string[]): Obj;
  /** merges annotations (null deletes one), as `kubectl annotate` */
  setAnnotations(name: string, annotations: Record<string, string | null>): Obj;
  /** a strategic merge patch on a node as an admin client would send (no subresource rules) */
  patchNode(name: string, patch: Obj): Obj;
  addPod(namespace: string, name: string, nodeName: string): Obj;

  /** forget history up to rv (default: all): a watch or continue from an older RV gets 410 */
  compact(rv?: number): void;
  /** close every open watch stream (cleanly: the client sees the end of the response) */
  endWatches(): void;
  /** destroy every open watch connection (a TCP reset) */
  dropWatches(): void;
  /** destroy every connection, watches or not */
  dropConnections(): void;
  /** stop delivering anything (events, bookmarks) to the watches open now, without closing them */
  stallWatches(): void;
  /** the next watch request gets one ERROR event with this Status (default 410 Expired) and ends */
  failNextWatch(status?: Obj): void;
  inject(fault: Fault): void;
  clearFaults(): void;
  setBookmarkPeriod(ms: number): void;
  setRbac(mode: 'off' | 'flannel'): void;
  setAuth(on: boolean): void;
  setPaginateRV0(on: boolean): void;
  /** replaces the flannel token (the old one answers 401 from now); rewrites the token file; returns it */
  rotateFlannelToken(): string;
  /** number of open watch streams */
  watchCount(): number;
  waitForRequest(pred: (r: RequestRecord) => boolean, opts?: { timeoutMs?: number; since?: number }): Promise<RequestRecord>;
  /** stop listening, keeping the state and the port (an API server outage) */
  stop(): Promise<void>;
  /** listen again on the same port */
  start(): Promise<void>;
  close(): Promise<void>;
}

interface Watcher {
  resource: string;
  namespace?: string;
  match: (o: Obj) => boolean;
  res: http.ServerResponse;
  stalled: boolean;
  timers: NodeJS.Timeout[];
  bookmarks: boolean;
  done: boolean;
}

interface HistoryEvent {
  rv: number;
  at: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: string;
  namespace: string;
  obj: Obj;
}

const key = (resource: string, ns: string, name: string) => `${resource}/${ns}/${name}`;
const metaOf = (o: Obj): Obj => (isObj(o.metadata) ? o.metadata : (o.metadata = {}));

function defOf(resource: string): { group: string; gv: string; def: ResourceDef } | undefined {
  for (const [gv, rs] of Object.entries(GROUPS)) {
    const def = rs[resource];
    if (def) return { gv, group: gv.includes('/') ? gv.split('/')[0]! : '', def };
  }
  return undefined;
}
const apiVersionOf = (resource: string) => defOf(resource)!.gv;
/** `v1` → `api/v1`, `apps/v1` → `apis/apps/v1` */
const gvPath = (gv: string) => (gv.includes('/') ? `apis/${gv}` : `api/${gv}`);

export async function startApiServer(opts: ApiServerOptions = {}): Promise<ApiServerDouble> {
  const ownDir = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'kube-apiserver-double-'));
  let authOn = opts.auth ?? false;
  const tlsOn = opts.tls ?? authOn;
  let rbac = opts.rbac ?? 'off';
  let bookmarkPeriodMs = opts.bookmarkPeriodMs ?? 60_000;
  let paginateRV0 = opts.paginateRV0 ?? false;
  const historyLimit = opts.historyLimit ?? 10_000;
  const historyMaxAgeMs = opts.historyMaxAgeMs;
  const host = opts.host ?? '127.0.0.1';

  const certs = tlsOn ? makeServerCerts(dir, [host, ...(opts.sans ?? [])]) : undefined;
  const tokens = { admin: `admin-${randomBytes(12).toString('hex')}`, flannel: `flannel-${randomBytes(12).toString('hex')}` };
  const saDir = join(dir, 'serviceaccount');
  const writeSa = () => {
    rmSync(saDir, { recursive: true, force: true });
    mkdirSync(saDir, { recursive: true });
    writeFileSync(join(saDir, 'token'), tokens.flannel);
    writeFileSync(join(saDir, 'namespace'), 'kube-flannel');
    if (certs) writeFileSync(join(saDir, 'ca.crt'), readFileSync(certs.ca));
  };
  writeSa();

  // --- store ---------------------------------------------------------------------------------------
  let rv = 1000;
  let compactRev = rv; // history holds every event with rv > compactRev
  const objects = new Map<string, Obj>();
  const history: HistoryEvent[] = [];
  const snapshots = new Map<number, { key: string; obj: Obj }[]>(); // paginated list state by list RV
  const watchers = new Set<Watcher>();
  const faults: Fault[] = [];
  let nextWatchError: Obj | undefined;
  const requests: RequestRecord[] = [];
  const requestWaiters = new Set<() => void>();

  const write = (resource: string, ns: string, name: string, obj: Obj | null): Obj | undefined => {
    const k = key(resource, ns, name);
    const old = objects.get(k);
    rv++;
    let type: HistoryEvent['type'];
    let ev: Obj;
    if (obj === null) {
      if (!old) return undefined;
      objects.delete(k);
      type = 'DELETED';
      ev = clone(old);
      metaOf(ev).resourceVersion = String(rv);
    } else {
      const stored = clone(obj);
      stored.apiVersion = apiVersionOf(resource);
      stored.kind = defOf(resource)!.def.kind;
      const m = metaOf(stored);
      m.name = name;
      if (ns) m.namespace = ns;
      m.uid = (old && (metaOf(old).uid as string)) || (m.uid as string) || randomUUID();
      m.creationTimestamp = (old && (metaOf(old).creationTimestamp as string)) || (m.creationTimestamp as string) || rfc3339();
      m.resourceVersion = String(rv);
      // kind and apiVersion first, as the server serialises them
      const { kind, apiVersion, ...rest } = stored;
      const ordered: Obj = { kind: kind!, apiVersion: apiVersion!, ...rest };
      objects.set(k, ordered);
      type = old ? 'MODIFIED' : 'ADDED';
      ev = ordered;
    }
    history.push({ rv, at: Date.now(), type, resource, namespace: ns, obj: clone(ev) });
    expireHistory();
    for (const w of watchers) {
      if (w.resource !== resource || (w.namespace !== undefined && w.namespace !== ns) || !w.match(ev)) continue;
      send(w, type, ev);
    }
    return obj === null ? ev : objects.get(k);
  };

  /** a watch cache's window: by count, and by age when asked */
  const expireHistory = () => {
    while (history.length > historyLimit) compactRev = history.shift()!.rv;
    if (historyMaxAgeMs !== undefined) {
      const old = Date.now() - historyMaxAgeMs;
      // the newest event stays: a watch from the current RV is always possible
      while (history.length > 1 && history[0]!.at < old) compactRev = history.shift()!.rv;
    }
  };

  const send = (w: Watcher, type: string, obj: Obj) => {
    if (w.done || w.stalled) return;
    w.res.write(`${JSON.stringify({ type, object: obj })}\n`);
  };
  const endWatch = (w: Watcher) => {
    if (w.done) return;
    w.done = true;
    for (const t of w.timers) clearTimeout(t);
    watchers.delete(w);
    w.res.end();
  };

  // --- HTTP ----------------------------------------------------------------------------------------
  const sockets = new Set<Socket>();
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        handle(req, res, Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        if (!res.headersSent) reply(res, 500, S.internalError(err instanceof Error ? err.message : String(err)));
        else res.destroy();
      }
    });
  };
  const server = certs ? https.createServer({ cert: readFileSync(certs.cert), key: readFileSync(certs.key) }, handler) : http.createServer(handler);
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  server.on(certs ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  const reply = (res: http.ServerResponse, code: number, body: Obj, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', ...headers });
    res.end(text);
  };

  const userOf = (req: http.IncomingMessage): string | null => {
    const h = req.headers.authorization;
    const tok = h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
    if (tok === tokens.admin) return 'admin';
    if (tok === tokens.flannel) return FLANNEL_USER;
    if (!authOn) return FLANNEL_USER; // over plain http client-go sends no credentials at all
    return null;
  };

  function handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const u = new URL(req.url ?? '/', 'http://x');
    const query: Record<string, string> = {};
    for (const [k, v] of u.searchParams) query[k] = v;
    const method = req.method ?? 'GET';
    const user = userOf(req);
    const rec: RequestRecord = {
      seq: requests.length,
      time: Date.now(),
      method,
      url: req.url ?? '/',
      path: u.pathname,
      query,
      accept: req.headers.accept ?? '',
      contentType: req.headers['content-type'] ?? '',
      userAgent: req.headers['user-agent'] ?? '',
      authorization: req.headers.authorization !== undefined,
      user: user ?? '',
      body: body.slice(0, 65536),
      status: 0,
    };
    requests.push(rec);
    res.on('finish', () => {
      if (rec.status === 0) rec.status = res.statusCode;
    });
    const origWriteHead = res.writeHead.bind(res);
    res.writeHead = ((code: number, ...rest: never[]) => {
      rec.status = code;
      return origWriteHead(code, ...rest);
    }) as typeof res.writeHead;
    for (const w of requestWaiters) w();

    if (u.pathname.startsWith('/_double/')) return control(req, res, u.pathname.slice('/_double/'.length), body, user);

    const isWatch = isTrue(query.watch);
    const fi = faults.findIndex(
      (f) =>
        (!f.method || f.method.toUpperCase() === method) &&
        (f.watch === undefined || f.watch === isWatch) &&
        (f.path === undefined || (typeof f.path === 'string' ? u.pathname.startsWith(f.path) : f.path.test(u.pathname + u.search))),
    );
    if (fi >= 0) {
      const f = faults[fi]!;
      f.count = (f.count ?? 1) - 1;
      if (f.count <= 0) faults.splice(fi, 1);
      if (f.drop) {
        req.socket.destroy();
        return;
      }
      const headers: Record<string, string> = f.retryAfter !== undefined ? { 'Retry-After': String(f.retryAfter) } : {};
      if (f.plain !== undefined) {
        res.writeHead(f.code, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', ...headers });
        res.end(f.plain);
        return;
      }
      const details: Obj | undefined = f.retryAfter !== undefined ? { retryAfterSeconds: f.retryAfter } : undefined;
      reply(res, f.code, S.status(f.code, f.reason ?? defaultReason(f.code), f.message ?? defaultMessage(f.code), details), headers);
      return;
    }

    if (user === null) return reply(res, 401, S.unauthorized());

    // discovery (spec §7)
    if (method === 'GET') {
      const d = discovery(u.pathname, req);
      if (d) return reply(res, 200, d);
    }
    const route = parsePath(u.pathname);
    if (!route) return reply(res, 404, S.pathNotFound());
    const { resource, namespace, name, sub, group } = route;

    const verb = method === 'GET' ? (name ? 'get' : isWatch ? 'watch' : 'list') : ({ PATCH: 'patch', POST: 'create', DELETE: 'delete', PUT: 'update' } as Record<string, string>)[method];
    if (!verb || (!name && ['patch', 'update', 'delete'].includes(verb))) return reply(res, 405, S.methodNotAllowed(method, resource));
    if (user !== 'admin' && rbac === 'flannel') {
      const allowed = group === '' && (FLANNEL_ROLE[sub ? `${resource}/${sub}` : resource] ?? []).includes(verb);
      if (!allowed) return reply(res, 403, S.forbidden(user, verb, resource, sub, group, name, namespace));
    }
    if (sub && !(defOf(resource)!.def.subresources ?? []).includes(sub)) return reply(res, 404, S.pathNotFound());

    switch (verb) {
      case 'get': {
        const o = objects.get(key(resource, namespace ?? '', name!));
        return o ? reply(res, 200, o) : reply(res, 404, S.notFound(resource, name!));
      }
      case 'list':
        return list(res, resource, namespace, query);
      case 'watch':
        return watch(req, res, resource, namespace, query);
      case 'patch':
        return patch(req, res, resource, namespace ?? '', name!, sub, body);
      case 'create':
        return create(res, resource, namespace ?? '', body, name);
      case 'update':
        return update(res, resource, namespace ?? '', name!, sub, body);
      case 'delete': {
        const gone = write(resource, namespace ?? '', name!, null);
        return gone ? reply(res, 200, gone) : reply(res, 404, S.notFound(resource, name!));
      }
    }
  }

  function discovery(path: string, req: http.IncomingMessage): Obj | undefined {
    // OpenAPI v3, only as much as kubectl's field-validation check reads (QueryParamVerifierV3: a PATCH
    // operation tagged with the kind that takes `fieldValidation`): kubectl then leaves validation to
    // the server (which this double does not do) and `kubectl apply` needs no --validate=false.
    if (path === '/openapi/v3')
      return { paths: Object.fromEntries(Object.keys(GROUPS).map((gv) => [gvPath(gv), { serverRelativeURL: `/openapi/v3/${gvPath(gv)}?hash=double` }])) };
    if (path.startsWith('/openapi/v3/')) {
      const gv = Object.keys(GROUPS).find((g) => `/openapi/v3/${gvPath(g)}` === path);
      if (!gv) return undefined;
      const [group, version] = gv.includes('/') ? (gv.split('/') as [string, string]) : ['', gv];
      const paths: Obj = {};
      for (const [name, def] of Object.entries(GROUPS[gv]!)) {
        paths[`/${gvPath(gv)}/${def.namespaced ? 'namespaces/{namespace}/' : ''}${name}/{name}`] = {
          patch: {
            'x-kubernetes-group-version-kind': { group, kind: def.kind, version },
            parameters: ['dryRun', 'fieldManager', 'fieldValidation', 'force'].map((n) => ({ name: n, in: 'query', schema: { type: n === 'force' ? 'boolean' : 'string' } })),
          },
        };
      }
      return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.34.0' }, paths };
    }
    if (path === '/version')
      return { major: '1', minor: '34', gitVersion: 'v1.34.0', gitCommit: 'kube-apiserver-double', gitTreeState: 'clean', buildDate: '2026-01-01T00:00:00Z', goVersion: 'go1.24.0', compiler: 'gc', platform: 'linux/amd64' };
    if (path === '/api')
      return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: req.socket.localAddress + ':' + String(req.socket.localPort) }] };
    if (path === '/apis') {
      const groups = Object.keys(GROUPS)
        .filter((gv) => gv.includes('/'))
        .map((gv) => {
          const [name, version] = gv.split('/') as [string, string];
          return { name, versions: [{ groupVersion: gv, version }], preferredVersion: { groupVersion: gv, version } };
        });
      return { kind: 'APIGroupList', apiVersion: 'v1', groups };
    }
    const gv = path === '/api/v1' ? 'v1' : path.startsWith('/apis/') ? path.slice(6) : undefined;
    const rs = gv ? GROUPS[gv] : undefined;
    if (!gv || !rs) return undefined;
    const resources: Obj[] = [];
    for (const [name, def] of Object.entries(rs)) {
      const r: Obj = { name, singularName: def.kind.toLowerCase(), namespaced: def.namespaced, kind: def.kind, verbs: def.verbs };
      if (def.shortNames) r.shortNames = def.shortNames;
      resources.push(r);
      for (const s of def.subresources ?? []) resources.push({ name: `${name}/${s}`, singularName: '', namespaced: def.namespaced, kind: def.kind, verbs: ['get', 'patch', 'update'] });
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources };
  }

  function parsePath(path: string): { resource: string; namespace?: string; name?: string; sub?: string; group: string } | undefined {
    let rest: string[];
    let gv: string;
    const segs = path.split('/').filter((s) => s !== '').map(decodeURIComponent);
    if (segs[0] === 'api' && segs[1] === 'v1') {
      gv = 'v1';
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 3) {
      gv = `${segs[1]}/${segs[2]}`;
      rest = segs.slice(3);
    } else return undefined;
    const rs = GROUPS[gv];
    if (!rs) return undefined;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && rs[rest[2]!]) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [resource, name, sub, extra] = rest;
    if (!resource || !rs[resource] || extra !== undefined) return undefined;
    const def = rs[resource];
    if (def.namespaced && namespace === undefined && name !== undefined) return undefined;
    if (!def.namespaced && namespace !== undefined) return undefined;
    return { resource, namespace, name, sub, group: gv.includes('/') ? gv.split('/')[0]! : '' };
  }

  function matcher(query: Record<string, string>): ((o: Obj) => boolean) | string {
    const tests: ((o: Obj) => boolean)[] = [];
    for (const term of (query.fieldSelector ?? '').split(',').filter(Boolean)) {
      const m = /^([\w.]+)(==?|!=)(.*)$/.exec(term);
      if (!m) return `invalid field selector: ${term}`;
      const [, field, op, val] = m as unknown as [string, string, string, string];
      const get = (o: Obj): string => {
        if (field === 'metadata.name') return String(metaOf(o).name ?? '');
        if (field === 'metadata.namespace') return String(metaOf(o).namespace ?? '');
        if (field === 'spec.nodeName' && isObj(o.spec)) return String(o.spec.nodeName ?? '');
        return '';
      };
      if (!['metadata.name', 'metadata.namespace', 'spec.nodeName'].includes(field)) return `field label not supported: ${field}`;
      tests.push(op === '!=' ? (o) => get(o) !== val : (o) => get(o) === val);
    }
    for (const term of (query.labelSelector ?? '').split(',').filter(Boolean)) {
      const m = /^([\w./-]+)\s*(==?|!=)?\s*([\w.-]*)$/.exec(term);
      if (!m) return `unable to parse requirement: ${term}`;
      const [, lk, op, val] = m as unknown as [string, string, string | undefined, string];
      const labels = (o: Obj): Obj => (isObj(metaOf(o).labels) ? (metaOf(o).labels as Obj) : {});
      if (!op) tests.push((o) => lk in labels(o));
      else tests.push(op === '!=' ? (o) => labels(o)[lk] !== val : (o) => labels(o)[lk] === val);
    }
    return (o) => tests.every((t) => t(o));
  }

  const current = (resource: string, namespace: string | undefined, match: (o: Obj) => boolean) =>
    [...objects.entries()]
      .filter(([k, o]) => k.startsWith(`${resource}/${namespace === undefined ? '' : `${namespace}/`}`) && match(o))
      .map(([k, o]) => ({ key: k.slice(resource.length + 1), obj: o }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  function list(res: http.ServerResponse, resource: string, namespace: string | undefined, q: Record<string, string>): void {
    if (isTrue(q.sendInitialEvents)) return reply(res, 422, watchListForbidden());
    const match = matcher(q);
    if (typeof match === 'string') return reply(res, 400, S.badRequest(match));
    const limit = q.limit ? Number(q.limit) : 0;
    const rvq = q.resourceVersion;
    if (rvq !== undefined && rvq !== '' && !/^\d+$/.test(rvq)) return reply(res, 400, S.badRequest(`invalid resource version: ${rvq}`));
    let items: { key: string; obj: Obj }[];
    let listRV = rv;
    if (q.continue) {
      if (rvq !== undefined && rvq !== '' && rvq !== '0') return reply(res, 400, S.badRequest('specifying resource version is not allowed when using continue'));
      let tok: { rv: number; start: string };
      try {
        tok = JSON.parse(Buffer.from(q.continue, 'base64url').toString('utf8')) as { rv: number; start: string };
        if (typeof tok.rv !== 'number' || typeof tok.start !== 'string') throw new Error('bad fields');
      } catch (e) {
        return reply(res, 400, S.badRequest(`invalid continue token: ${e instanceof Error ? e.message : String(e)}`));
      }
      if (tok.rv <= compactRev && tok.rv !== rv)
        return reply(res, 410, S.expired('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.'));
      listRV = tok.rv;
      const start = tok.start.replace(/\u0000$/, '');
      items = (snapshots.get(tok.rv) ?? current(resource, namespace, match)).filter((i) => i.key > start);
    } else {
      if (rvq && rvq !== '0' && Number(rvq) > rv) return reply(res, 504, S.tooLargeRV(rvq, rv));
      items = current(resource, namespace, match);
    }
    const paginate = limit > 0 && (q.continue || rvq === undefined || rvq === '' || (rvq === '0' && paginateRV0));
    const meta: Obj = { resourceVersion: String(listRV) };
    let page = items;
    if (paginate && items.length > limit) {
      page = items.slice(0, limit);
      if (!q.continue) {
        snapshots.set(listRV, items.map((i) => ({ key: i.key, obj: i.obj })));
        while (snapshots.size > 16) snapshots.delete(snapshots.keys().next().value!);
      }
      meta.continue = Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: listRV, start: `${page[page.length - 1]!.key}\u0000` })).toString('base64url');
      meta.remainingItemCount = items.length - limit;
    }
    const def = defOf(resource)!;
    reply(res, 200, {
      kind: `${def.def.kind}List`,
      apiVersion: def.gv,
      metadata: meta,
      items: page.map(({ obj }) => {
        const { kind: _k, apiVersion: _a, ...rest } = obj;
        return rest;
      }),
    });
  }

  function watch(req: http.IncomingMessage, res: http.ServerResponse, resource: string, namespace: string | undefined, q: Record<string, string>): void {
    if (isTrue(q.sendInitialEvents)) return reply(res, 422, watchListForbidden());
    const match = matcher(q);
    if (typeof match === 'string') return reply(res, 400, S.badRequest(match));
    const rvq = q.resourceVersion ?? '';
    if (rvq !== '' && !/^\d+$/.test(rvq)) return reply(res, 400, S.badRequest(`resourceVersion: Invalid value: "${rvq}": must be a non-negative integer`));
    const timeout = q.timeoutSeconds ? Number(q.timeoutSeconds) : 1800 + Math.floor(Math.random() * 1800);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = { resource, namespace, match, res, stalled: false, timers: [], bookmarks: isTrue(q.allowWatchBookmarks), done: false };
    req.socket.setNoDelay(true);
    res.on('close', () => endWatch(w));
    if (nextWatchError) {
      const e = nextWatchError;
      nextWatchError = undefined;
      res.write(`${JSON.stringify({ type: 'ERROR', object: e })}\n`);
      res.end();
      return;
    }
    const start = (from: number | undefined) => {
      if (w.done) return;
      expireHistory();
      if (from === undefined) {
        for (const { obj } of current(resource, namespace, match)) send(w, 'ADDED', obj);
      } else {
        if (from < compactRev) {
          res.write(`${JSON.stringify({ type: 'ERROR', object: S.expired(`too old resource version: ${from} (${compactRev})`) })}\n`);
          res.end();
          return;
        }
        for (const ev of history) {
          if (ev.rv > from && ev.resource === resource && (namespace === undefined || ev.namespace === namespace) && match(ev.obj)) send(w, ev.type, ev.obj);
        }
      }
      watchers.add(w);
      w.timers.push(setTimeout(() => endWatch(w), timeout * 1000));
      if (w.bookmarks) {
        const bookmark = () => send(w, 'BOOKMARK', { kind: defOf(resource)!.def.kind, apiVersion: apiVersionOf(resource), metadata: { resourceVersion: String(rv) } });
        const tick = () => {
          bookmark();
          w.timers.push(setTimeout(tick, bookmarkPeriodMs));
        };
        w.timers.push(setTimeout(tick, bookmarkPeriodMs));
        if (timeout > 3) w.timers.push(setTimeout(bookmark, (timeout - 2) * 1000));
      }
    };
    if (rvq === '' || rvq === '0') return start(undefined);
    const from = Number(rvq);
    if (from <= rv) return start(from);
    // newer than current: a real server waits ~3 s for it, then answers the Timeout ERROR event
    const deadline = Date.now() + 3000;
    const poll = () => {
      if (w.done) return;
      if (from <= rv) return start(from);
      if (Date.now() > deadline) {
        res.write(`${JSON.stringify({ type: 'ERROR', object: S.tooLargeRV(rvq, rv) })}\n`);
        res.end();
        return;
      }
      setTimeout(poll, 50);
    };
    poll();
  }

  function parseBody(res: http.ServerResponse, body: string, what: string): Json | undefined {
    try {
      return JSON.parse(body) as Json;
    } catch (e) {
      reply(res, 400, S.badRequest(`${what}${e instanceof Error ? e.message : String(e)}`));
      return undefined;
    }
  }

  /** the node registry's rules shared by PATCH and PUT; returns an error Status or the object to store */
  function admit(resource: string, name: string, sub: string | undefined, old: Obj, next: Obj): Obj | S.StatusBody {
    if (!isObj(next)) return S.badRequest('the object is not a JSON object');
    const nm = metaOf(next);
    const om = metaOf(old);
    if (nm.resourceVersion !== undefined && nm.resourceVersion !== om.resourceVersion) return S.conflict(resource, name);
    nm.name = om.name!;
    nm.uid = om.uid!;
    nm.creationTimestamp = om.creationTimestamp!;
    if (om.namespace !== undefined) nm.namespace = om.namespace;
    const subs = defOf(resource)!.def.subresources ?? [];
    if (subs.includes('status')) {
      if (sub === 'status') {
        if (old.spec === undefined) delete next.spec;
        else next.spec = clone(old.spec);
      } else if (old.status === undefined) delete next.status;
      else next.status = clone(old.status);
    }
    if (resource === 'nodes') {
      const cidrs = (o: Obj): string[] => {
        const s = isObj(o.spec) ? o.spec : {};
        return Array.isArray(s.podCIDRs) ? s.podCIDRs.map(String) : s.podCIDR ? [String(s.podCIDR)] : [];
      };
      const before = cidrs(old);
      const after = cidrs(next);
      if (before.length > 0 && JSON.stringify(before) !== JSON.stringify(after))
        return S.invalid('Node', name, 'spec.podCIDRs', 'FieldValueForbidden', 'node updates may not change podCIDR except from "" to valid', 'Forbidden');
    }
    return next;
  }

  const sameContent = (a: Obj, b: Obj) => {
    const strip = (o: Obj) => {
      const c = clone(o);
      delete metaOf(c).resourceVersion;
      return JSON.stringify(sortKeys(c));
    };
    return strip(a) === strip(b);
  };

  function patch(req: http.IncomingMessage, res: http.ServerResponse, resource: string, ns: string, name: string, sub: string | undefined, body: string): void {
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
    const kinds = ['application/strategic-merge-patch+json', 'application/merge-patch+json', 'application/json-patch+json'];
    if (!kinds.includes(ct)) return reply(res, 415, S.unsupportedMediaType());
    const old = objects.get(key(resource, ns, name));
    const p = parseBody(res, body, ct === 'application/strategic-merge-patch+json' ? '' : 'error decoding patch: ');
    if (p === undefined) return;
    if (!old) return reply(res, 404, S.notFound(resource, name));
    let next: Json;
    try {
      next = ct === 'application/strategic-merge-patch+json' ? strategicMerge(old, p) : ct === 'application/merge-patch+json' ? mergePatch(old, p) : jsonPatch(old, p);
    } catch (e) {
      return reply(res, e instanceof PatchError ? 400 : 500, e instanceof PatchError ? S.badRequest(e.message) : S.internalError(String(e)));
    }
    const admitted = admit(resource, name, sub, old, next as Obj);
    if (admitted.kind === 'Status') return reply(res, Number(admitted.code), admitted);
    if (sameContent(old, admitted)) return reply(res, 200, old);
    reply(res, 200, write(resource, ns, name, admitted)!);
  }

  function update(res: http.ServerResponse, resource: string, ns: string, name: string, sub: string | undefined, body: string): void {
    const next = parseBody(res, body, '');
    if (next === undefined) return;
    const old = objects.get(key(resource, ns, name));
    if (!old) return reply(res, 404, S.notFound(resource, name));
    if (!isObj(next) || metaOf(next).name !== name) return reply(res, 400, S.badRequest('the name of the object does not match the name on the URL'));
    const admitted = admit(resource, name, sub, old, next);
    if (admitted.kind === 'Status') return reply(res, Number(admitted.code), admitted);
    if (sameContent(old, admitted)) return reply(res, 200, old);
    reply(res, 200, write(resource, ns, name, admitted)!);
  }

  function create(res: http.ServerResponse, resource: string, ns: string, body: string, pathName: string | undefined): void {
    if (pathName) return reply(res, 405, S.methodNotAllowed('POST', resource));
    const obj = parseBody(res, body, '');
    if (obj === undefined) return;
    if (!isObj(obj)) return reply(res, 400, S.badRequest('the object is not a JSON object'));
    const m = metaOf(obj);
    if (!m.name && typeof m.generateName === 'string') m.name = `${m.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
    const name = typeof m.name === 'string' ? m.name : '';
    if (!name) return reply(res, 422, S.invalid(defOf(resource)!.def.kind, '', 'metadata.name', 'FieldValueRequired', 'name or generateName is required', 'Required value'));
    if (m.namespace !== undefined && ns && m.namespace !== ns)
      return reply(res, 400, S.badRequest('the namespace of the provided object does not match the namespace sent on the request'));
    if (objects.has(key(resource, ns, name))) return reply(res, 409, S.alreadyExists(resource, name));
    delete m.resourceVersion;
    delete m.uid;
    if (resource === 'nodes' && obj.status === undefined) obj.status = {};
    res.statusCode = 201;
    reply(res, 201, write(resource, ns, name, obj)!);
  }

  // --- test control --------------------------------------------------------------------------------
  const mustNode = (name: string): Obj => {
    const o = objects.get(key('nodes', '', name));
    if (!o) throw new Error(`node ${name} not found`);
    return o;
  };
  const api: Omit<ApiServerDouble, 'url' | 'port' | 'dir' | 'caFile' | 'caPem' | 'tokens' | 'serviceAccountDir' | 'requests'> = {
    resourceVersion: () => rv,
    addNode(n) {
      const obj = 'kind' in n ? clone(n as Obj) : makeNode(n as NodeSpecInput);
      return write('nodes', '', String(metaOf(obj).name), obj)!;
    },
    addNodes(ns) {
      for (const n of ns) api.addNode(n);
      return ns.length;
    },
    putObject(resource, obj) {
      if (!defOf(resource)) throw new Error(`unknown resource ${resource}`);
      const m = metaOf(obj);
      return write(resource, String(m.namespace ?? ''), String(m.name), obj)!;
    },
    getNode: (name) => {
      const o = objects.get(key('nodes', '', name));
      return o && clone(o);
    },
    getObject: (resource, name, namespace = '') => {
      const o = objects.get(key(resource, namespace, name));
      return o && clone(o);
    },
    listNodes: () => current('nodes', undefined, () => true).map((i) => clone(i.obj)),
    deleteNode: (name) => write('nodes', '', name, null) !== undefined,
    deleteObject: (resource, name, namespace = '') => write(resource, namespace, name, null) !== undefined,
    setPodCIDRs(name, cidrs) {
      const o = clone(mustNode(name));
      o.spec = { ...(isObj(o.spec) ? o.spec : {}), podCIDR: cidrs[0] ?? '', podCIDRs: cidrs };
      if (cidrs.length === 0) o.spec = {};
      return write('nodes', '', name, o)!;
    },
    setAnnotations(name, annotations) {
      return write('nodes', '', name, mergePatch(mustNode(name), { metadata: { annotations } }) as Obj)!;
    },
    patchNode(name, p) {
      return write('nodes', '', name, strategicMerge(mustNode(name), p) as Obj)!;
    },
    addPod(namespace, name, nodeName) {
      return write('pods', namespace, name, makePod(namespace, name, nodeName))!;
    },
    compact(upTo) {
      compactRev = Math.min(upTo ?? rv, rv);
      while (history.length > 0 && history[0]!.rv <= compactRev) history.shift();
      for (const k of snapshots.keys()) if (k <= compactRev) snapshots.delete(k);
    },
    endWatches() {
      for (const w of [...watchers]) endWatch(w);
    },
    dropWatches() {
      for (const w of [...watchers]) {
        w.done = true;
        for (const t of w.timers) clearTimeout(t);
        watchers.delete(w);
        w.res.socket?.destroy();
      }
    },
    dropConnections() {
      api.dropWatches();
      for (const s of sockets) s.destroy();
    },
    stallWatches() {
      for (const w of watchers) w.stalled = true;
    },
    failNextWatch(st) {
      nextWatchError = st ?? S.expired(`too old resource version: ${compactRev} (${compactRev})`);
    },
    inject(f) {
      faults.push({ count: 1, ...f });
    },
    clearFaults() {
      faults.length = 0;
    },
    setBookmarkPeriod(ms) {
      bookmarkPeriodMs = ms;
    },
    setRbac(mode) {
      rbac = mode;
    },
    setAuth(on) {
      authOn = on;
    },
    setPaginateRV0(on) {
      paginateRV0 = on;
    },
    rotateFlannelToken() {
      tokens.flannel = `flannel-${randomBytes(12).toString('hex')}`;
      const tmp = join(saDir, `.token-${process.pid}`);
      writeFileSync(tmp, tokens.flannel);
      renameSync(tmp, join(saDir, 'token'));
      return tokens.flannel;
    },
    watchCount: () => watchers.size,
    waitForRequest(pred, o = {}) {
      const deadline = Date.now() + (o.timeoutMs ?? 10_000);
      let from = o.since ?? 0;
      return new Promise((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const check = () => {
          for (; from < requests.length; from++) {
            if (pred(requests[from]!)) {
              requestWaiters.delete(check);
              clearTimeout(timer);
              resolve(requests[from]!);
              return;
            }
          }
        };
        requestWaiters.add(check);
        timer = setTimeout(() => {
          requestWaiters.delete(check);
          reject(new Error(`no matching request within ${o.timeoutMs ?? 10_000} ms`));
        }, Math.max(0, deadline - Date.now()));
        check();
      });
    },
    async stop() {
      api.dropConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    },
    async close() {
      if (server.listening) await api.stop();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };

  /** `POST /_double/<method>` with a JSON array of arguments (admin token when auth is on) */
  const CONTROL = new Set([
    'resourceVersion', 'addNode', 'addNodes', 'putObject', 'getNode', 'getObject', 'listNodes', 'deleteNode', 'deleteObject', 'setPodCIDRs', 'setAnnotations', 'patchNode', 'addPod',
    'compact', 'endWatches', 'dropWatches', 'stallWatches', 'failNextWatch', 'inject', 'clearFaults', 'setBookmarkPeriod', 'setRbac', 'setAuth', 'setPaginateRV0',
    'rotateFlannelToken', 'watchCount',
  ]);
  function control(req: http.IncomingMessage, res: http.ServerResponse, method: string, body: string, user: string | null): void {
    if (authOn && user !== 'admin') return reply(res, 401, S.unauthorized());
    if (method === 'requests' && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(requests));
      return;
    }
    if (req.method !== 'POST' || !CONTROL.has(method)) return reply(res, 404, S.pathNotFound());
    try {
      const args = body.trim() === '' ? [] : (JSON.parse(body) as unknown[]);
      if (!Array.isArray(args)) throw new Error('the body must be a JSON array of arguments');
      if (method === 'inject' && isObj(args[0]) && typeof args[0].path === 'string' && args[0].path.startsWith('re:')) args[0].path = new RegExp(args[0].path.slice(3)) as never;
      const out = (api as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(out ?? null));
    } catch (e) {
      reply(res, 400, S.badRequest(e instanceof Error ? e.message : String(e)));
    }
  }

  for (const n of opts.nodes ?? []) api.addNode(n);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  return {
    ...api,
    url: `${certs ? 'https' : 'http'}://${hostInUrl}:${port}`,
    port,
    dir,
    caFile: certs?.ca,
    caPem: certs ? readFileSync(certs.ca, 'utf8') : undefined,
    tokens,
    serviceAccountDir: saDir,
    requests,
  };
}

// ---------------------------------------------------------------------------------------------------

/** a boolean query parameter is false only when absent, `0` or `false` (pkg/runtime/conversion.go) */
function isTrue(v: string | undefined): boolean {
  return v !== undefined && v !== '0' && v.toLowerCase() !== 'false';
}

function watchListForbidden(): S.StatusBody {
  return S.status(422, 'Invalid', 'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled', {
    group: 'meta.k8s.io',
    kind: 'ListOptions',
    causes: [{ reason: 'FieldValueForbidden', message: 'Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled', field: 'sendInitialEvents' }],
  });
}

function defaultReason(code: number): string | undefined {
  return ({ 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 410: 'Expired', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout' } as Record<number, string>)[code];
}
function defaultMessage(code: number): string {
  return (
    ({ 429: 'Too many requests, please try again later.', 500: 'Internal error occurred: injected fault', 503: 'the server is currently unable to handle the request', 504: 'Timeout: request did not complete within the allowed duration' } as Record<number, string>)[code] ??
    `injected fault ${code}`
  );
}

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (isObj(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k]!)]));
  return v;
}

