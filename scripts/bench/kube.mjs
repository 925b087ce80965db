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
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
if (!process.env.BENCH_KUBE_NETNS) {
  const ns = `fl-bk-${process.pid}`;
  const ip = (...a) => spawnSync('ip', a, { stdio: 'inherit' }).status === 0;
  let status = 1;
  if (ip('netns', 'add', ns)) {
    try {
      if (ip('-n', ns, 'link', 'set', 'lo', 'up') && ip('-n', ns, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul1') && ip('-n', ns, 'addr', 'add', '192.168.250.1/24', 'dev', 'ul0') && ip('-n', ns, 'link', 'set', 'ul0', 'up') && ip('-n', ns, 'link', 'set', 'ul1', 'up')) {
        const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, self, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, BENCH_KUBE_NETNS: ns } });
        status = r.status ?? 1;
      }
    } finally {
      ip('netns', 'del', ns);
    }
  }
  process.exit(status);
}

const ROOT = join(dirname(self), '..', '..');
// BENCH_FLANNELD: another build of flanneld (default dist/bin/flanneld)
const FLANNELD = process.env.BENCH_FLANNELD ?? join(ROOT, 'dist', 'bin', 'flanneld');
const counts = process.argv.slice(2).map(Number).filter((n) => Number.isInteger(n) && n > 0);
if (counts.length === 0) counts.push(5000);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 100);
const NET_CONF = '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function post(port, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(t)) : reject(new Error(`${path}: ${res.statusCode} ${t}`))));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}
async function mapLimit(n, limit, fn) {
  let i = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (i < n) await fn(i++);
  }));
}

const hex = (n) => n.toString(16).padStart(2, '0');
/** peer i: 10.(1 + i/256).(i%256).0/24 (our own node: 10.0.0.0/24; samples: 10.200.k.0/24) */
const peerNet = (i) => `10.${1 + (i >> 8)}.${i & 0xff}.0/24`;
const peerIP = (i) => `172.16.${i >> 8}.${i & 0xff}`;
const peerMac = (i) => `0a:02:00:00:${hex((i >> 8) & 0xff)}:${hex(i & 0xff)}`;
const sampleNet = (k) => `10.200.${k}.0/24`;

/** `ip monitor route`: time at which a route to each dst on flannel.1 first appeared */
function monitorRoutes() {
  const child = spawn('ip', ['monitor', 'route'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const seen = new Map();
  let buf = '';
  child.stdout.on('data', (d) => {
    const now = performance.now();
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('Deleted') || !line.includes('dev flannel.1')) continue;
      const dst = line.split(' ')[0];
      if (!seen.has(dst)) seen.set(dst, now);
    }
  });
  return { seen, stop: () => child.kill('SIGTERM') };
}

function rssMiB(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(s.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

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
  const mon = monitorRoutes();
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
    delays.sort((a, b) => a - b);
    const q = (x) => delays[Math.min(delays.length - 1, Math.ceil(delays.length * x) - 1)];
    return { label, n, allMs, p50: q(0.5), p99: q(0.99), rss: Math.max(mem.rss, memAfter.rss), hwm: memAfter.hwm };
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
  const port = await freePort();
  const peer = await freePort();
  const etcd = spawn('etcd', ['--name', 'bench', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', `http://127.0.0.1:${port}`, '--advertise-client-urls', `http://127.0.0.1:${port}`, '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`, '--initial-cluster', `bench=http://127.0.0.1:${peer}`], { stdio: 'ignore' });
  const b64 = (s) => Buffer.from(s).toString('base64');
  try {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await post(port, '/v3/kv/range', { key: b64('x') });
        break;
      } catch {
        if (Date.now() > deadline) throw new Error('etcd did not start');
        await sleep(100);
      }
    }
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
    etcd.kill('SIGTERM');
    await new Promise((r) => etcd.once('exit', r));
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
  agent.destroy();
  rmSync(dir, { recursive: true, force: true });
}
const f = (x, d = 0) => x.toFixed(d);
console.log(`flanneld (vxlan) with N peers: kube subnet manager against the API-server double vs etcd, same run, ${SAMPLES} new-peer samples`);
console.log('| store | peers | start → all peer routes (ms) | new peer → route p50 / p99 (ms) | RSS (MiB) | peak RSS (MiB) |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(`| ${r.label} | ${r.n} | ${f(r.allMs)} | ${f(r.p50, 1)} / ${f(r.p99, 1)} | ${f(r.rss, 1)} | ${f(r.hwm, 1)} |`);
