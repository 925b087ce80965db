#!/usr/bin/env node
// Where flanneld's memory goes with many leases (the alloc backend, so no kernel work; vxlan-shaped
// lease values). For each runtime (node with the launcher's flags; bun running the same bundle, when
// node_modules/.bin/bun is there): VmRSS and its parts (anonymous, file-backed: the runtime's own
// code pages) idle, after N leases were put while it ran, and after a start with N existing leases,
// with what the runtime reports (JS heap used/committed, external buffers; leases-mem-probe.cjs).
// Under node, then, heap snapshots (each forces a full GC: live objects only) of a fresh idle daemon
// and of the one with N leases, diffed by what holds the bytes.
//
//   node scripts/bench/leases-heap.mjs [N]     (default 5000; needs `etcd` and a built dist/bin/flanneld)
//
// Like leases.mjs it re-runs itself in a network namespace of its own with a private etcd; the
// snapshots go to a temp dir, removed after.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { b64, closeHttp, launcherFlags, mapLimit, post, reexecInOwnNetns, ROOT, runtimeOf, sleep, startEtcd } from './lib.mjs';

reexecInOwnNetns(import.meta.url, 'BENCH_LEASES_HEAP_NETNS', 'fl-bh');

const FLANNELD = join(ROOT, 'dist', 'bin', 'flanneld');
const N = Number(process.argv[2] ?? 5000);
const PREFIX = '/benchheap';
const subnetKey = (i) => {
  const v = (10 << 24) + (1 << 16) + i * 256;
  return `${v >>> 24}.${(v >> 16) & 255}.${(v >> 8) & 255}.0-24`;
};
const hex = (n) => n.toString(16).padStart(2, '0');

async function populate(port, n, prefix = PREFIX) {
  await mapLimit(n, 64, async (i) => {
    const g = await post(port, '/v3/lease/grant', { TTL: '86400' });
    const value = `{"PublicIP":"192.168.${(i >> 8) & 255}.${i & 255}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}"}}`;
    await post(port, '/v3/kv/put', { key: b64(`${prefix}/subnets/${subnetKey(i)}`), value: b64(value), lease: g.ID });
  });
}

/** VmRSS and its parts (anonymous, file-backed) in MiB. */
function rss(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(s.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? 0) / 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') };
}

/** SIGUSR2 → the next .heapsnapshot in dir, once node has written it completely. */
async function snapshot(p, dir) {
  const before = new Set(readdirSync(dir));
  p.kill('SIGUSR2');
  for (let i = 0; i < 600; i++) {
    await sleep(100);
    const f = readdirSync(dir).find((x) => x.endsWith('.heapsnapshot') && !before.has(x));
    if (f) {
      try {
        const text = readFileSync(join(dir, f), 'utf8');
        return JSON.parse(text); // complete once it parses
      } catch {
        /* still being written */
      }
    }
  }
  throw new Error('no heap snapshot');
}

/** Self sizes summed by what holds them: `<type> <constructor or kind>` → {bytes, count}. */
function summarize(snap) {
  const { node_fields: fields, node_types: types } = snap.snapshot.meta;
  const nf = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const typeNames = types[0];
  const out = new Map();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += nf) {
    const type = typeNames[snap.nodes[i + iType]];
    const size = snap.nodes[i + iSize];
    total += size;
    // strings are grouped by kind, not by content; objects by constructor; the rest by type
    const name = type === 'object' || type === 'closure' || type === 'native' ? snap.strings[snap.nodes[i + iName]] : '';
    const k = `${type} ${name}`.trim();
    const e = out.get(k) ?? { bytes: 0, count: 0 };
    e.bytes += size;
    e.count++;
    out.set(k, e);
  }
  return { total, by: out };
}

const PROBE = join(ROOT, 'scripts', 'bench', 'leases-mem-probe.cjs');
const BUN = join(ROOT, 'node_modules', '.bin', 'bun');
// BENCH_NODE_FLAGS="--optimize-for-size ..." runs node with these flags instead of the launcher's;
// BENCH_RUNTIMES=node leaves bun out
const nodeFlags = process.env.BENCH_NODE_FLAGS !== undefined ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean) : launcherFlags(FLANNELD);
const nodeName = process.env.BENCH_NODE_FLAGS !== undefined ? `node ${process.version} ${nodeFlags.join(' ')}` : runtimeOf(FLANNELD);
const runtimes = [{ name: nodeName, argv: (extra = []) => [process.execPath, ...nodeFlags, '--require', PROBE, ...extra, `${FLANNELD}.mjs`] }];
// the self-contained flanneld (bun --compile) when built: VmRSS only (no preload for the probe)
const EXE = join(ROOT, 'dist', 'exe', 'flanneld');
if (existsSync(EXE) && process.env.BENCH_RUNTIMES !== 'node') runtimes.push({ name: `${runtimeOf(EXE)} (dist/exe/flanneld)`, argv: () => [EXE], noProbe: true });
if (existsSync(BUN) && process.env.BENCH_RUNTIMES !== 'node') runtimes.push({ name: `bun ${spawnSync(BUN, ['--version'], { encoding: 'utf8' }).stdout.trim()}`, argv: () => [BUN, '--preload', PROBE, `${FLANNELD}.mjs`] });

const dir = mkdtempSync(join(tmpdir(), 'bench-heap-'));
const etcd = await startEtcd(dir);
const running = new Set();

/** flanneld on `prefix` (its config put first), with helpers to wait for log lines and probe memory. */
async function start(rt, prefix, extra) {
  await post(etcd.port, '/v3/kv/put', { key: b64(`${prefix}/config`), value: b64('{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"alloc"}}') });
  const [cmd, ...args] = rt.argv(extra);
  const p = spawn(
    cmd,
    [...args, '--etcd-endpoints', `http://127.0.0.1:${etcd.port}`, '--etcd-prefix', prefix, '--iface', 'lo', '--public-ip', '10.255.255.1',
      '--subnet-file', join(dir, `subnet${prefix.replace(/\//g, '-')}.env`), '--data-dir', join(dir, `data${prefix.replace(/\//g, '-')}`)],
    { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir },
  );
  running.add(p);
  let err = '';
  p.stderr.on('data', (c) => (err += c.toString()));
  const wait = async (f, what) => {
    const deadline = Date.now() + 60_000;
    while (!f(err)) {
      if (p.exitCode !== null) throw new Error(`flanneld exited:\n${err.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`no ${what}:\n${err.slice(-3000)}`);
      await sleep(20);
    }
  };
  const probe = async () => {
    if (rt.noProbe) return { ...rss(p.pid), runtime: undefined };
    const at = err.length;
    p.kill('SIGURG');
    await wait((e) => e.indexOf('MEMPROBE ', at) >= 0 && e.indexOf('\n', e.indexOf('MEMPROBE ', at)) >= 0, 'memory probe');
    const line = err.slice(err.indexOf('MEMPROBE ', at) + 9);
    return { ...rss(p.pid), runtime: JSON.parse(line.slice(0, line.indexOf('\n'))) };
  };
  const stop = async () => {
    if (p.exitCode === null) {
      p.kill('SIGTERM');
      await new Promise((r) => p.once('exit', r));
    }
    running.delete(p);
  };
  await wait((e) => e.includes('Lease snapshot:'), 'start');
  return { p, wait, probe, stop };
}

const lastAdded = (e) => e.includes(`Subnet added: ${subnetKey(N - 1).replace('-24', '/24')}`);
const mib = (b) => (b / 1024 / 1024).toFixed(1);
const rows = [];
let heapRows;
try {
  for (const [k, rt] of runtimes.entries()) {
    const prefix = `${PREFIX}${k}`;
    const a = await start(rt, prefix);
    await sleep(2000);
    rows.push({ rt: rt.name, phase: 'idle (0 peers)', ...(await a.probe()) });
    await populate(etcd.port, N, prefix);
    await a.wait(lastAdded, `event for lease ${N}`);
    await sleep(2000);
    rows.push({ rt: rt.name, phase: `${N} leases put while running`, ...(await a.probe()) });
    await a.stop();
    const b = await start(rt, prefix, k === 0 ? ['--heapsnapshot-signal=SIGUSR2'] : []);
    await sleep(2000);
    rows.push({ rt: rt.name, phase: `start with ${N} existing`, ...(await b.probe()) });
    if (k === 0) {
      // where the live heap goes: a fresh idle daemon vs this one (snapshots inflate RSS: taken last)
      const full = summarize(await snapshot(b.p, dir));
      await b.stop();
      const c = await start(rt, `${PREFIX}idle`, ['--heapsnapshot-signal=SIGUSR2']);
      await sleep(2000);
      const idle = summarize(await snapshot(c.p, dir));
      await c.stop();
      heapRows = { idle, full };
    } else {
      await b.stop();
    }
  }
} finally {
  for (const p of running) {
    p.kill('SIGTERM');
    await new Promise((r) => p.once('exit', r));
  }
  await etcd.stop();
  closeHttp();
  rmSync(dir, { recursive: true, force: true });
}

console.log(`flanneld (alloc backend), ${N} vxlan-shaped peer leases`);
console.log('| runtime | phase | VmRSS (MiB) | anonymous | file (runtime code) | JS heap used | JS heap committed | external (buffers) |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const m = (k) => (r.runtime ? mib(r.runtime[k]) : '-');
  console.log(`| ${r.rt} | ${r.phase} | ${r.rss.toFixed(1)} | ${r.anon.toFixed(1)} | ${r.file.toFixed(1)} | ${m('heapUsed')} | ${m('heapTotal')} | ${m('external')} |`);
}
if (process.env.BENCH_HEAP_SPACES) for (const r of rows.filter((x) => x.runtime)) console.log(r.rt, r.phase, JSON.stringify(r.runtime.spaces));
if (heapRows) {
  const { idle, full } = heapRows;
  console.log(`\nnode, live JS heap after a full GC: idle ${(idle.total / 1048576).toFixed(2)} MiB, with ${N} leases ${(full.total / 1048576).toFixed(2)} MiB; growth by holder (top 15)`);
  console.log('| holder | + MiB | + count | bytes per lease |');
  console.log('|---|---:|---:|---:|');
  const diff = [...full.by].map(([k, e]) => {
    const i = idle.by.get(k) ?? { bytes: 0, count: 0 };
    return { k, bytes: e.bytes - i.bytes, count: e.count - i.count };
  });
  diff.sort((a, b) => b.bytes - a.bytes);
  for (const r of diff.slice(0, 15)) console.log(`| ${r.k} | ${(r.bytes / 1048576).toFixed(2)} | ${r.count} | ${(r.bytes / N).toFixed(0)} |`);
}
