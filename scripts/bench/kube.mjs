#!/usr/bin/env node
// Benchmark: flanneld --kube-subnet-mgr with N peer Nodes in the API-server double, beside the same
// flanneld with N peer leases in etcd, in the same run: start → all N peers programmed (vxlan routes
// seen by `ip monitor route`), one new peer → its route (p50/p99 over SAMPLES), and flanneld's RSS.
//
//   node scripts/bench/kube.mjs [counts...]     (default 5000; needs root, etcd, a built dist/bin/flanneld
//                                                wired for --kube-subnet-mgr; builds the double itself)
//
// The whole bench re-runs itself inside a network namespace it creates and deletes (as leases.mjs):
// an underlay NIC (one end of a veth pair), flanneld's flannel.1 and its routes and rules live there only. The double runs
// as its own process (plain HTTP on loopback: client-go, and our client, send no credentials over http)
// so its memory is not flanneld's; etcd on random loopback ports with a temp data dir, stopped by PID.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { b64, closeHttp, freePort, mapLimit, monitorRoutes, peerIP, peerMac, peerNet, percentile, post, reexecInOwnNetns, ROOT, rssMiB, sleep, startEtcd } from './lib.mjs';

reexecInOwnNetns(import.meta.url, 'BENCH_KUBE_NETNS', 'fl-bk', [
  ['link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1'],
  ['addr', 'add', '192.168.250.1/24', 'dev', 'ul0'],
  ['link', 'set', 'ul0', 'up'],
  ['link', 'set', 'ul1', 'up'],
]);

// BENCH_FLANNELD: another build of flanneld (default dist/bin/flanneld)
const FLANNELD = process.env.BENCH_FLANNELD ?? join(ROOT, 'dist', 'bin', 'flanneld');
const counts = process.argv.slice(2).map(Number).filter((n) => Number.isInteger(n) && n > 0);
if (counts.length === 0) counts.push(5000);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 100);
const NET_CONF = '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}';

/** our own node: 10.0.0.0/24; peers: lib's peerNet; samples: 10.200.k.0/24 */
const sampleNet = (k) => `10.200.${k}.0/24`;

function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLANNELD_') && !k.startsWith('KUBERNETES_')) env[k] = v;
  return { ...env, ...extra };
}

/**
 * One flanneld run: start it, wait for N peer routes, then SAMPLES single new peers (addPeer(k) makes
 * peer k appear in the store), each timed to its route. Returns the row.
 */
async function measure(label, n, args, env, addPeer) {
  const mon = monitorRoutes('flannel.1');
  await sleep(200); // the monitor is listening
  let err = '';
  const t0 = performance.now();
  const p = spawn(FLANNELD, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
  p.stderr.on('data', (c) => (err += c.toString()));
  const gone = () => p.exitCode !== null || p.signalCode !== null;
  try {
    const deadline = Date.now() + 180_000;
    while (mon.seen.size < n) {
      if (gone()) throw new Error(`${label}: flanneld exited:\n${err.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`${label}: ${mon.seen.size}/${n} peer routes after 180 s:\n${err.slice(-3000)}`);
      await sleep(20);
    }
    const allMs = Math.max(...mon.seen.values()) - t0;
    await sleep(1000);
    const mem = rssMiB(p.pid);
    const delays = [];
    for (let k = 0; k < SAMPLES; k++) {
      const dst = sampleNet(k);
      const t = performance.now();
      await addPeer(k);
      const d2 = Date.now() + 15_000;
      while (!mon.seen.has(dst)) {
        if (gone() || Date.now() > d2) throw new Error(`${label}: no route for ${dst}:\n${err.slice(-3000)}`);
        await new Promise((r) => setImmediate(r));
      }
      delays.push(mon.seen.get(dst) - t);
    }
    const memAfter = rssMiB(p.pid);
    return { label, n, allMs, p50: percentile(delays, 0.5), p99: percentile(delays, 0.99), rss: Math.max(mem.rss, memAfter.rss), hwm: memAfter.hwm };
  } finally {
    if (!gone()) {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
    mon.stop();
    // the next run starts from a clean device (flanneld leaves its routes on exit, as Go's does)
    spawnSync('ip', ['link', 'del', 'flannel.1'], { stdio: 'ignore' });
  }
}

async function kubeRun(dir, n) {
  const bundle = join(dir, 'kube-apiserver.mjs');
  if (spawnSync(process.execPath, [join(ROOT, 'test/kube-apiserver/build.mjs'), bundle], { stdio: 'inherit' }).status !== 0) throw new Error('building the double failed');
  const port = await freePort();
  const api = spawn(process.execPath, [bundle, '--port', String(port), '--dir', mkdtempSync(join(dir, 'kube-'))], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => {
      api.stdout.once('data', resolve);
      api.once('exit', () => reject(new Error('the double exited')));
    });
    const node = (name, cidr, i) => ({
      name,
      podCIDRs: [cidr],
      internalIP: peerIP(i),
      annotations: {
        'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
        'flannel.alpha.coreos.com/backend-type': 'vxlan',
        'flannel.alpha.coreos.com/backend-data': JSON.stringify({ VNI: 1, VtepMAC: peerMac(i) }),
        'flannel.alpha.coreos.com/public-ip': peerIP(i),
      },
    });
    await post(port, '/_double/addNode', [{ name: 'bench-self', podCIDRs: ['10.0.0.0/24'], internalIP: '192.168.250.1' }]);
    for (let i = 0; i < n; i += 500) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 500); j++) batch.push(node(`peer-${j}`, peerNet(j), j));
      await post(port, '/_double/addNodes', [batch]);
    }
    writeFileSync(join(dir, 'net-conf.json'), NET_CONF);
    const args = ['--kube-subnet-mgr', `--kube-api-url=http://127.0.0.1:${port}`, `--net-config-path=${join(dir, 'net-conf.json')}`, '--iface=ul0', `--subnet-file=${join(dir, 'kube-subnet.env')}`, `--data-dir=${join(dir, 'kube-data')}`];
    return await measure('kube (API-server double)', n, args, cleanEnv({ NODE_NAME: 'bench-self' }), (k) => post(port, '/_double/addNode', [node(`sample-${k}`, sampleNet(k), 60000 + k)]));
  } finally {
    api.kill('SIGTERM');
    await new Promise((r) => api.once('exit', r));
  }
}

async function etcdRun(dir, n) {
  const etcd = await startEtcd(dir);
  const { port } = etcd;
  try {
    await post(port, '/v3/kv/put', { key: b64('/coreos.com/network/config'), value: b64(NET_CONF) });
    const lease = (await post(port, '/v3/lease/grant', { TTL: '86400' })).ID;
    const put = (cidr, i) =>
      post(port, '/v3/kv/put', {
        key: b64(`/coreos.com/network/subnets/${cidr.replace('/', '-')}`),
        value: b64(JSON.stringify({ PublicIP: peerIP(i), PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: peerMac(i) } })),
        lease,
      });
    await mapLimit(n, 64, (i) => put(peerNet(i), i));
    const args = [`--etcd-endpoints=http://127.0.0.1:${port}`, '--iface=ul0', `--subnet-file=${join(dir, 'etcd-subnet.env')}`, `--data-dir=${join(dir, 'etcd-data')}`];
    return await measure('etcd', n, args, cleanEnv({}), (k) => put(sampleNet(k), 60000 + k));
  } finally {
    await etcd.stop();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'bench-kube-'));
const rows = [];
try {
  for (const n of counts) {
    rows.push(await kubeRun(dir, n));
    rows.push(await etcdRun(dir, n));
  }
} finally {
  closeHttp();
  rmSync(dir, { recursive: true, force: true });
}
const f = (x, d = 0) => x.toFixed(d);
console.log(`flanneld (vxlan) with N peers: kube subnet manager against the API-server double vs etcd, same run, ${SAMPLES} new-peer samples`);
console.log('| store | peers | start → all peer routes (ms) | new peer → route p50 / p99 (ms) | RSS (MiB) | peak RSS (MiB) |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.label} | ${r.n} | ${f(r.allMs)} | ${f(r.p50, 1)} / ${f(r.p99, 1)} | ${f(r.rss, 1)} | ${f(r.hwm, 1)} |`);
