// The informer's state machine and the client's error handling against a scripted HTTP stub: each
// request gets the next answer of the script (the API-server double covers whole scenarios).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../../../shared/log.js';
import { KubeApiError, KubeClient, statusError } from '../../../../../daemon/subnet/kube/client.js';
import { NodeInformer } from '../../../../../daemon/subnet/kube/informer.js';
import type { Node } from '../../../../../daemon/subnet/kube/node.js';
import { until } from '../../../../helpers/until.js';

type Answer = (req: http.IncomingMessage, res: http.ServerResponse) => void;
const json = (code: number, body: unknown, headers: Record<string, string> = {}): Answer => (_q, res) => {
  res.writeHead(code, { 'Content-Type': 'application/json', ...headers }).end(JSON.stringify(body));
};
const list = (rv: string, names: string[], cont?: string): Answer => json(200, { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: rv, ...(cont ? { continue: cont } : {}) }, items: names.map((n) => ({ metadata: { name: n, resourceVersion: rv } })) });
const expired = (msg = 'too old resource version: 5 (10)') => ({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: msg, reason: 'Expired', code: 410 });
/** a watch stream with these events, then kept open (`hold`) or ended */
const watch = (events: unknown[], hold = false): Answer => (_q, res) => {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  for (const e of events) res.write(`${JSON.stringify(e)}\n`);
  if (!hold) setTimeout(() => res.end(), 1100); // not a "very short watch"
};

const stops: (() => unknown)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function stub(script: Answer[]) {
  const seen: { url: string; method: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ url: req.url!, method: req.method!, body });
      const next = script.shift();
      if (next) next(req, res);
      else {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.flushHeaders(); // an idle watch
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  stops.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const log = memoryLogger();
  const client = new KubeClient({ server: url, source: 'test' }, { log, qps: 0 });
  stops.push(() => client.close());
  return { seen, client, log };
}

function informer(client: KubeClient, log: ReturnType<typeof memoryLogger>, handlers: Partial<ConstructorParameters<typeof NodeInformer>[1]['handlers']> = {}) {
  const names = new Set<string>();
  const inf = new NodeInformer(client, {
    log,
    backoffInitialMs: 10,
    backoffCapMs: 20,
    watchTimeoutSeconds: () => 300,
    handlers: {
      replace: (l: Node[]) => {
        names.clear();
        for (const n of l) names.add(n.metadata.name);
      },
      upsert: (n: Node) => names.add(n.metadata.name),
      remove: (n: Node) => names.delete(n.metadata.name),
      ...handlers,
    },
  });
  const ac = new AbortController();
  void inf.run(ac.signal);
  stops.push(() => ac.abort());
  return { inf, names };
}

describe('node informer state machine', () => {
  it('follows continue; a 410 ERROR event relists at the last (bookmark) RV, keeping the page size of a paginating server, and a 410 there lists afresh at once', async () => {
    const { seen, client, log } = await stub([
      list('10', ['a'], 'tok'),
      list('10', ['b']),
      watch([{ type: 'ADDED', object: { metadata: { name: 'c', resourceVersion: '11' } } }, { type: 'BOOKMARK', object: { metadata: { resourceVersion: '15' } } }, { type: 'ERROR', object: expired() }], true),
      json(410, expired('The resourceVersion for the provided list is too old.')),
      list('20', ['a', 'z']),
    ]);
    const { names } = informer(client, log);
    await until(() => seen.length >= 6, 'the relists and the next watch');
    const urls = seen.map((s) => s.url);
    expect(urls[0]).toBe('/api/v1/nodes?limit=500&resourceVersion=0');
    expect(urls[1]).toBe('/api/v1/nodes?continue=tok&limit=500');
    expect(urls[2]).toBe('/api/v1/nodes?allowWatchBookmarks=true&resourceVersion=10&timeoutSeconds=300&watch=true');
    // paginated at RV 0, so relists keep the page size (client-go's pager); at the bookmark's RV
    expect(urls[3]).toBe('/api/v1/nodes?limit=500&resourceVersion=15');
    expect(urls[4]).toBe('/api/v1/nodes?limit=500');
    expect(urls[5]).toContain('resourceVersion=20&');
    expect([...names].sort()).toEqual(['a', 'z']);
  });

  it('a watch the server closes at once without an event is a "very short watch": back-off and relist', async () => {
    const { seen, client, log } = await stub([list('10', ['a']), (_q, res) => res.writeHead(200).end(), list('11', ['a'])]);
    informer(client, log);
    await until(() => seen.length >= 4, 'the relist and a watch');
    expect(seen[2]!.url).toBe('/api/v1/nodes?resourceVersion=10');
    expect(log.lines.join('\n')).toContain('very short watch');
  });

  it('a throwing handler is logged and the informer goes on', async () => {
    const { seen, client, log } = await stub([
      list('10', []),
      watch([{ type: 'ADDED', object: { metadata: { name: 'boom', resourceVersion: '11' } } }, { type: 'ADDED', object: { metadata: { name: 'ok', resourceVersion: '12' } } }], true),
    ]);
    const got: string[] = [];
    informer(client, log, {
      upsert: (n: Node) => {
        if (n.metadata.name === 'boom') throw new Error('handler bug');
        got.push(n.metadata.name);
      },
    });
    await until(() => got.includes('ok'), 'the event after the throwing one');
    expect(log.lines.join('\n')).toContain('the ADDED handler failed (the informer goes on)');
    expect(seen.length).toBe(2);
  });

  it('a watch connection dropped mid-stream or gone silent (watchdog) re-watches from the last RV, no relist', async () => {
    const { seen, client, log } = await stub([
      list('10', ['a']),
      (_q, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'b', resourceVersion: '11' } } })}\n`);
        setTimeout(() => res.socket!.destroy(), 50);
      },
      watch([{ type: 'BOOKMARK', object: { metadata: { resourceVersion: '12' } } }], true), // then silence
    ]);
    const names = new Set<string>();
    const inf = new NodeInformer(client, {
      log,
      backoffInitialMs: 10,
      backoffCapMs: 20,
      watchIdleMs: 300,
      handlers: { replace: () => {}, upsert: (n: Node) => names.add(n.metadata.name), remove: () => {} },
    });
    const ac = new AbortController();
    void inf.run(ac.signal);
    stops.push(() => ac.abort());
    await until(() => seen.length >= 4, 'two re-watches');
    expect(seen.slice(1, 4).map((s) => new URL(s.url, 'http://x').searchParams.get('resourceVersion'))).toEqual(['10', '11', '12']);
    expect(seen.slice(1, 4).every((s) => s.url.includes('watch=true'))).toBe(true);
    expect(names.has('b')).toBe(true);
    expect(log.lines.join('\n')).toContain('nothing received for');
  });

  it('a 429 on the watch re-watches from the same RV (no relist)', async () => {
    const { seen, client, log } = await stub([list('10', ['a']), (_q, res) => res.writeHead(429, { 'Content-Type': 'text/plain' }).end('Too many requests, please try again later.')]);
    informer(client, log);
    await until(() => seen.length >= 3, 'the re-watch');
    expect(seen[2]!.url).toContain('watch=true');
    expect(seen[2]!.url).toContain('resourceVersion=10');
  });
});

describe('client errors and retries', () => {
  it('Retry-After on 429/5xx is honoured, at most 10 retries; a 500 without it is not retried', async () => {
    const { seen, client } = await stub([json(503, { kind: 'Status', message: 'busy', reason: 'ServiceUnavailable', code: 503 }, { 'Retry-After': '0' }), json(200, { ok: 1 })]);
    expect(await client.request('GET', '/x')).toEqual({ ok: 1 });
    expect(seen.length).toBe(2);
    const s2 = await stub([json(500, { kind: 'Status', message: 'Internal error occurred: boom', reason: 'InternalError', code: 500 })]);
    await expect(s2.client.request('GET', '/x')).rejects.toMatchObject({ code: 500, reason: 'InternalError', message: 'Internal error occurred: boom' });
    const many = Array.from({ length: 12 }, () => json(429, {}, { 'Retry-After': '0' }));
    const s3 = await stub(many);
    await expect(s3.client.request('GET', '/x')).rejects.toBeInstanceOf(KubeApiError);
    expect(s3.seen.length).toBe(11);
  });

  it('a non-JSON error body gets a reason from the code (client-go newUnstructuredResponseError)', () => {
    expect(statusError(429, 'Too many requests, please try again later.')).toMatchObject({ code: 429, reason: 'TooManyRequests', message: 'Too many requests, please try again later.' });
    expect(statusError(401, '')).toMatchObject({ reason: 'Unauthorized', message: 'Unauthorized' });
    expect(statusError(502, '')).toMatchObject({ reason: 'Unknown' });
  });
});
