// The API-server double's list/watch contract (spec kube.md §5.3–5.4, §5.6–5.7) where kubectl does not
// reach: pagination and continue tokens, watch start points, bookmarks, timeouts, 410/504 ERROR events,
// watch-list refusal, faults, stalls, history by age, token rotation. Plain HTTP on loopback, in-process.
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { type ApiServerDouble, type ApiServerOptions, startApiServer } from '../../kube-apiserver/index.js';
import { until, IN_PROCESS } from '../../helpers/until.js';

type Res = { status: number; headers: http.IncomingHttpHeaders; body: string };
const open: ApiServerDouble[] = [];
afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
});
async function start(o: ApiServerOptions = {}): Promise<ApiServerDouble> {
  const a = await startApiServer(o);
  open.push(a);
  return a;
}

function get(api: ApiServerDouble, path: string, token?: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, api.url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(u, { headers: token ? { Authorization: `Bearer ${token}` } : {}, ca: api.caPem }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
  });
}
const json = (r: Res) => JSON.parse(r.body) as Record<string, any>;
const events = (r: Res) => r.body.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; object: Record<string, any> });

/** a live watch: collects events until stop() */
function watch(api: ApiServerDouble, query: string) {
  const got: { type: string; object: Record<string, any> }[] = [];
  let buf = '';
  let ended = false;
  const req = http.get(new URL(`/api/v1/nodes?watch=true&${query}`, api.url), (res) => {
    res.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        got.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
    });
    res.on('end', () => (ended = true));
    res.on('error', () => (ended = true));
  });
  req.on('error', () => (ended = true));
  return { got, ended: () => ended, stop: () => req.destroy() };
}

const nodes = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `n${String(i).padStart(3, '0')}`, podCIDRs: [`10.244.${i}.0/24`] }));

describe('list', () => {
  it('pages with limit/continue at the first page\'s RV, items without kind, remainingItemCount; RV=0 pages only when asked', async () => {
    const api = await start({ nodes: nodes(5) });
    const p1 = json(await get(api, '/api/v1/nodes?limit=2'));
    expect(p1.kind).toBe('NodeList');
    expect(p1.items.map((i: any) => i.metadata.name)).toEqual(['n000', 'n001']);
    expect(p1.items[0].kind).toBeUndefined();
    expect(p1.metadata.remainingItemCount).toBe(3);
    api.addNode({ name: 'n001a' }); // after the list's RV: not in its pages
    const p2 = json(await get(api, `/api/v1/nodes?limit=2&continue=${p1.metadata.continue}`));
    expect(p2.items.map((i: any) => i.metadata.name)).toEqual(['n002', 'n003']);
    expect(p2.metadata.resourceVersion).toBe(p1.metadata.resourceVersion);
    const p3 = json(await get(api, `/api/v1/nodes?limit=2&continue=${p2.metadata.continue}`));
    expect(p3.items.map((i: any) => i.metadata.name)).toEqual(['n004']);
    expect(p3.metadata.continue).toBeUndefined();
    expect(json(await get(api, '/api/v1/nodes?limit=2&resourceVersion=0')).items).toHaveLength(6);
    api.setPaginateRV0(true);
    expect(json(await get(api, '/api/v1/nodes?limit=2&resourceVersion=0')).items).toHaveLength(2);
  });

  it('answers 400 for continue with a resourceVersion or a bad token, 410 for a compacted continue', async () => {
    const api = await start({ nodes: nodes(3) });
    const p1 = json(await get(api, '/api/v1/nodes?limit=1'));
    const bad = await get(api, `/api/v1/nodes?limit=1&continue=${p1.metadata.continue}&resourceVersion=5`);
    expect([bad.status, json(bad).message]).toEqual([400, 'specifying resource version is not allowed when using continue']);
    expect(json(await get(api, '/api/v1/nodes?limit=1&continue=garbage')).message).toMatch(/^invalid continue token: /);
    api.addNode({ name: 'x' });
    api.compact();
    const gone = await get(api, `/api/v1/nodes?limit=1&continue=${p1.metadata.continue}`);
    expect(gone.status).toBe(410);
    expect(json(gone)).toMatchObject({ kind: 'Status', reason: 'Expired', code: 410, message: 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.' });
  });

  it('refuses watch-list (sendInitialEvents) with 422 rather than ignoring it', async () => {
    const api = await start();
    const r = await get(api, '/api/v1/nodes?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true');
    expect(r.status).toBe(422);
    expect(json(r).message).toBe('ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled');
  });
});

describe('watch', () => {
  it('RV 0 → synthetic ADDED then live; RV n → only later events; DELETED carries the deletion RV', async () => {
    const api = await start({ nodes: nodes(2) });
    const rv = api.resourceVersion();
    const w0 = watch(api, 'resourceVersion=0');
    const wn = watch(api, `resourceVersion=${rv}`);
    await until(() => w0.got.length === 2 && api.watchCount() === 2, 'w0.got.length === 2 && api.watchCount() === 2', IN_PROCESS);
    api.setAnnotations('n000', { a: 'b' });
    api.deleteNode('n001');
    await until(() => w0.got.length === 4 && wn.got.length === 2, 'w0.got.length === 4 && wn.got.length === 2', IN_PROCESS);
    expect(w0.got.map((e) => [e.type, e.object.metadata.name])).toEqual([['ADDED', 'n000'], ['ADDED', 'n001'], ['MODIFIED', 'n000'], ['DELETED', 'n001']]);
    expect(wn.got.map((e) => e.type)).toEqual(['MODIFIED', 'DELETED']);
    expect(wn.got[1]!.object.metadata.resourceVersion).toBe(String(api.resourceVersion()));
    expect(wn.got[0]!.object.kind).toBe('Node');
    w0.stop();
    wn.stop();
  });

  it('sends bookmarks only when asked, ends cleanly at timeoutSeconds', async () => {
    const api = await start({ bookmarkPeriodMs: 100 });
    const t0 = Date.now();
    const r = await get(api, '/api/v1/nodes?watch=true&allowWatchBookmarks=true&timeoutSeconds=1');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(r.headers['content-type']).toBe('application/json');
    const ev = events(r);
    expect(ev.length).toBeGreaterThanOrEqual(3);
    expect(ev.every((e) => e.type === 'BOOKMARK' && e.object.metadata.resourceVersion === String(api.resourceVersion()))).toBe(true);
    expect(events(await get(api, '/api/v1/nodes?watch=true&timeoutSeconds=1'))).toEqual([]);
  });

  it('410 Expired ERROR for a compacted RV (also by age), 504 ERROR for a future one; failNextWatch', async () => {
    const api = await start({ nodes: nodes(1), historyMaxAgeMs: 100 });
    const rv = api.resourceVersion();
    api.addNode({ name: 'late' });
    await new Promise((r) => setTimeout(r, 150));
    api.addNode({ name: 'later' }); // expires 'late' by age
    const e410 = events(await get(api, `/api/v1/nodes?watch=true&resourceVersion=${rv}`));
    expect(e410).toEqual([{ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${rv} (${rv + 1})`, reason: 'Expired', code: 410 } }]);
    const future = api.resourceVersion() + 10;
    const e504 = events(await get(api, `/api/v1/nodes?watch=true&resourceVersion=${future}`));
    expect(e504[0]!.object).toMatchObject({ reason: 'Timeout', code: 504, message: `Timeout: Too large resource version: ${future}, current: ${api.resourceVersion()}` });
    api.failNextWatch({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'boom', reason: 'InternalError', code: 500 });
    expect(events(await get(api, '/api/v1/nodes?watch=true'))[0]!.object.message).toBe('boom');
  });

  it('a stalled watch stays open and silent; dropWatches cuts it; endWatches ends it cleanly', async () => {
    const api = await start({ nodes: nodes(1), bookmarkPeriodMs: 50 });
    const w = watch(api, 'resourceVersion=0&allowWatchBookmarks=true');
    await until(() => w.got.length >= 2, 'w.got.length >= 2', IN_PROCESS);
    api.stallWatches();
    const n = w.got.length;
    api.addNode({ name: 'unseen' });
    await new Promise((r) => setTimeout(r, 200));
    expect(w.got.length).toBe(n);
    expect(w.ended()).toBe(false);
    api.dropWatches();
    await until(() => w.ended(), 'w.ended()', IN_PROCESS);
    const w2 = watch(api, `resourceVersion=${api.resourceVersion()}`);
    await until(() => api.watchCount() === 1, 'api.watchCount() === 1', IN_PROCESS);
    api.endWatches();
    await until(() => w2.ended(), 'w2.ended()', IN_PROCESS);
  });
});

describe('faults, auth, patch rules', () => {
  it('injects N faults on matching requests with Retry-After, plain or Status bodies, then serves normally', async () => {
    const api = await start({ nodes: nodes(1) });
    api.inject({ path: '/api/v1/nodes', method: 'GET', code: 503, retryAfter: 2, count: 2 });
    const a = await get(api, '/api/v1/nodes');
    expect([a.status, a.headers['retry-after'], json(a).details]).toEqual([503, '2', { retryAfterSeconds: 2 }]);
    expect((await get(api, '/api/v1/nodes')).status).toBe(503);
    expect((await get(api, '/api/v1/nodes')).status).toBe(200);
    api.inject({ path: /watch=true/, code: 429, plain: 'Too many requests, please try again later.\n' });
    const p = await get(api, '/api/v1/nodes?watch=true');
    expect([p.status, p.headers['content-type'], p.body]).toEqual([429, 'text/plain; charset=utf-8', 'Too many requests, please try again later.\n']);
  });

  it('over HTTPS: 401 without a valid token, a rotated token replaces the old one and the token file', async () => {
    const api = await start({ auth: true, rbac: 'flannel', nodes: nodes(1) });
    expect((await get(api, '/api/v1/nodes')).status).toBe(401);
    expect(json(await get(api, '/api/v1/nodes', 'nope'))).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    const old = api.tokens.flannel;
    expect((await get(api, '/api/v1/nodes', old)).status).toBe(200);
    const fresh = api.rotateFlannelToken();
    expect(readFileSync(`${api.serviceAccountDir}/token`, 'utf8')).toBe(fresh);
    expect((await get(api, '/api/v1/nodes', old)).status).toBe(401);
    expect((await get(api, '/api/v1/nodes/n000', fresh)).status).toBe(200);
    expect((await get(api, '/api/v1/nodes/n000/status', fresh)).status).toBe(403);
    expect((await get(api, '/api/v1/nodes/n000/status', api.tokens.admin)).status).toBe(200);
  });
});

describe('methods', () => {
  it('PATCH on the node collection is 405 MethodNotAllowed, an unknown path 404', async () => {
    const api = await start({ nodes: nodes(1) });
    const r = await new Promise<Res>((resolve, reject) => {
      const req = http.request(new URL('/api/v1/nodes', api.url), { method: 'PATCH', headers: { 'Content-Type': 'application/merge-patch+json' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end('{}');
    });
    expect([r.status, json(r).reason, json(r).message]).toEqual([405, 'MethodNotAllowed', 'PATCH is not supported on resources of kind "nodes"']);
    expect(json(await get(api, '/api/v1/widgets'))).toMatchObject({ code: 404, message: 'the server could not find the requested resource' });
  });
});
