// The Kubernetes API-server double, standalone (spec kube.md §5–7; the code is in ./server.ts).
//
// In-process (tests, benches):
//   import { startApiServer } from '../kube-apiserver/index.js';
//   const api = await startApiServer({ auth: true, rbac: 'flannel', bookmarkPeriodMs: 500,
//     nodes: [{ name: 'node-a', podCIDRs: ['10.244.0.0/24'], internalIP: '192.168.77.1' }] });
//   api.url / api.caFile / api.tokens.{admin,flannel} / api.serviceAccountDir ({token,ca.crt,namespace})
//   api.setPodCIDRs('node-b', [...]); api.compact(); api.inject({ method: 'PATCH', code: 429, retryAfter: 1 });
//   api.stallWatches(); api.stop(); api.start(); await api.waitForRequest((r) => ...); await api.close();
//
// Standalone (the lab, scripts): build once with `node test/kube-apiserver/build.mjs` (→ dist/test/
// kube-apiserver.mjs), then
//   node dist/test/kube-apiserver.mjs [--host IP] [--port N] [--auth] [--tls] [--rbac flannel]
//     [--san IP]... [--dir DIR] [--bookmark-ms N] [--paginate-rv0] [--history-max-age-ms N]
//     [--nodes-file nodes.json]
// It prints one JSON line {url, caFile, tokens, serviceAccountDir, pid} on stdout when listening (also
// written to <dir>/ready.json) and runs until SIGTERM/SIGINT. Control: `POST <url>/_double/<method>` with
// a JSON array of arguments (the in-process method names: addNode, setPodCIDRs, setAnnotations,
// compact, dropWatches, inject, ...; inject's path may be "re:<regexp>"), `GET <url>/_double/requests`;
// with --auth send `Authorization: Bearer <tokens.admin>`. kubectl: `kubectl --server URL
// --certificate-authority CA --token ADMIN get nodes`.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startApiServer } from './server.js';
import type { NodeSpecInput } from './fixtures.js';

const { values: a } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    tls: { type: 'boolean', default: false },
    auth: { type: 'boolean', default: false },
    rbac: { type: 'string', default: 'off' },
    san: { type: 'string', multiple: true, default: [] },
    dir: { type: 'string' },
    'bookmark-ms': { type: 'string' },
    'paginate-rv0': { type: 'boolean', default: false },
    'nodes-file': { type: 'string' },
    'history-max-age-ms': { type: 'string' },
  },
});
if (a.rbac !== 'off' && a.rbac !== 'flannel') {
  console.error(`kube-apiserver double: --rbac must be off or flannel, not ${a.rbac}`);
  process.exit(2);
}
const nodes = a['nodes-file'] ? (JSON.parse(readFileSync(a['nodes-file'], 'utf8')) as NodeSpecInput[]) : [];
const api = await startApiServer({
  host: a.host,
  port: Number(a.port),
  tls: a.tls || a.auth,
  auth: a.auth,
  rbac: a.rbac,
  sans: a.san,
  dir: a.dir,
  bookmarkPeriodMs: a['bookmark-ms'] ? Number(a['bookmark-ms']) : undefined,
  paginateRV0: a['paginate-rv0'],
  historyMaxAgeMs: a['history-max-age-ms'] ? Number(a['history-max-age-ms']) : undefined,
  nodes,
});
const ready = JSON.stringify({ url: api.url, caFile: api.caFile, tokens: api.tokens, serviceAccountDir: api.serviceAccountDir, dir: api.dir, pid: process.pid });
if (a.dir) writeFileSync(`${a.dir}/ready.json`, `${ready}\n`);
process.stdout.write(`${ready}\n`);
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    void api.close().then(() => process.exit(0));
  });
}
