#!/usr/bin/env node
// Benchmark: flanneld start-up with many existing leases in etcd, its memory, and the delay from a
// lease put to the daemon's event. Prints a table.
//
//   node scripts/bench/leases.mjs [counts...]      (default: 1000 5000; 0 is allowed; needs `etcd` and `npm run build`)
//
// The flanneld measured is the shipped one, dist/exe/flanneld (dist/bin/flanneld, the Node-script build,
// when there is no dist/exe). BENCH_FLANNELD="dist/exe/flanneld dist/bin/flanneld" measures each of
// these launchers, interleaved count by count; BENCH_ROUNDS=3 repeats the whole sequence and prints
// medians (each round's RSS listed). The table starts with the runtime floors, measured in the same
// run (scripts/bench/lib.mjs runtimeFloors: a bare bun-compiled program, an idle node with the
// launcher's flags), and splits every RSS into anonymous (what the process allocated) and file-backed
// (the executable's pages: the runtime's code, and for a compiled flanneld its embedded bundle).
//
// BENCH_MEMORY_LIMIT_MIB=50 runs each flanneld in a memory cgroup with that hard limit (what systemd's
// MemoryMax= sets; cgroup v2 memory.max, or v1 memory.limit_in_bytes), and reports how it ended: a
// SIGKILL from the kernel's OOM killer leaves no log line, a V8 heap limit below it (NODE_OPTIONS=
// --max-old-space-size=N) ends with "JavaScript heap out of memory" on stderr. The "cgroup peak" column
// is what the kernel charged (anonymous + page cache + kernel memory), the number a limit is held to.
// The kernel charges a file page to the cgroup that first read it: with node already in the page cache
// (warm, any other node process ran) flanneld is charged its anonymous memory only; at boot flanneld may
// be the first node process and is charged node's ~30 MiB of text too. BENCH_COLD_NODE=1 models that:
// flanneld runs on a private copy of the node binary whose pages were dropped from the cache.
//
// The whole bench re-runs itself inside a network namespace it creates (and deletes at the end): a
// private etcd on random loopback ports with a temp data dir, stopped by PID, and flanneld with the
// alloc backend (--iface lo), whose traffic manager adds its FORWARD rules there, never in the
// machine's root namespace. Each existing lease gets its own 24 h etcd lease, as real ones do.
// Targets at 5000 leases: peak RSS ≤ 96 MiB (half of conf/flanneld.service's MemoryMax=192M, whose
// comment explains the limits from this bench's numbers), snapshot ≤ 1 s.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { b64, closeHttp, launcherFlags, mapLimit, percentile, post, reexecInOwnNetns, ROOT, rssMiB, runtimeFloors, runtimeOf, sleep, startEtcd } from './lib.mjs';

reexecInOwnNetns(import.meta.url, 'BENCH_LEASES_NETNS', 'fl-bl');

const NODE_BUILD = join(ROOT, 'dist', 'bin', 'flanneld');
const SHIPPED = existsSync(join(ROOT, 'dist', 'exe', 'flanneld')) ? join(ROOT, 'dist', 'exe', 'flanneld') : NODE_BUILD;
const launchers = (process.env.BENCH_FLANNELD ?? '').split(/\s+/).filter(Boolean).map((l) => (l.startsWith('/') ? l : join(ROOT, l)));
if (launchers.length === 0) launchers.push(SHIPPED);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 1));
const counts = process.argv.slice(2).map(Number).filter((n) => Number.isInteger(n) && n >= 0);
if (counts.length === 0) counts.push(1000, 5000);
const PUT_SAMPLES = 20;

function subnetKey(i) {
  // 10.0.0.0/8 with /24 subnets, starting at 10.1.0.0; the daemon's own pick lands above them
  const v = (10 << 24) + (1 << 16) + i * 256;
  return `${v >>> 24}.${(v >> 16) & 255}.${(v >> 8) & 255}.0-24`;
}

async function populate(port, prefix, n) {
  await post(port, '/v3/kv/put', { key: b64(`${prefix}/config`), value: b64('{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"alloc"}}') });
  await mapLimit(n, 64, async (i) => {
    const g = await post(port, '/v3/lease/grant', { TTL: '86400' });
    const mac = `c6:d2:32:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const value = `{"PublicIP":"192.168.${(i >> 8) & 255}.${i & 255}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;
    await post(port, '/v3/kv/put', { key: b64(`${prefix}/subnets/${subnetKey(i)}`), value: b64(value), lease: g.ID });
  });
}

const LIMIT_MIB = Number(process.env.BENCH_MEMORY_LIMIT_MIB ?? 0);

/**
 * A fresh memory cgroup below our own, with a hard limit; v2 when its memory controller is ours, else v1.
 * `ip netns exec` gave us a fresh /sys without the cgroup mounts, so the hierarchy is mounted again in a
 * temp dir: the mount lives in exec's private mount namespace and goes away with it.
 */
let cgMount;
function makeCgroup(name, limitMiB) {
  const own = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  const v1 = own.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  const bytes = String(limitMiB * 1024 * 1024);
  if (!cgMount) {
    cgMount = mkdtempSync(join(tmpdir(), 'bench-cgroup-'));
    const args = v1 ? ['-t', 'cgroup', '-o', 'memory', 'cgroup', cgMount] : ['-t', 'cgroup2', 'cgroup2', cgMount];
    if (spawnSync('mount', args, { stdio: 'inherit' }).status !== 0) throw new Error('cannot mount the memory cgroup hierarchy');
  }
  if (!v1) {
    const dir = join(cgMount, own.find((l) => l.startsWith('0::')).slice(3), name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'memory.max'), bytes);
    writeFileSync(join(dir, 'memory.swap.max'), '0');
    return { dir, peak: () => readNum(join(dir, 'memory.peak')), oomKills: () => Number(readFileSync(join(dir, 'memory.events'), 'utf8').match(/oom_kill (\d+)/)?.[1] ?? 0) };
  }
  const dir = join(cgMount, v1.split(':')[2], name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'memory.limit_in_bytes'), bytes);
  return { dir, peak: () => readNum(join(dir, 'memory.max_usage_in_bytes')), oomKills: () => Number(readFileSync(join(dir, 'memory.oom_control'), 'utf8').match(/oom_kill (\d+)/)?.[1] ?? 0) };
}
const readNum = (f) => { try { return Number(readFileSync(f, 'utf8')) / 1024 / 1024; } catch { return NaN; } };

async function runOne(etcd, dir, n, launcher, tag) {
  const prefix = `/bench${n}-${tag}`;
  const t0 = Date.now();
  await populate(etcd.port, prefix, n);
  const populateMs = Date.now() - t0;

  let err = '';
  const marks = {};
  const start = performance.now();
  // BENCH_NODE_FLAGS="--max-semi-space-size=1" runs the bundle under node with those flags instead
  const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  let [cmd, pre] = nodeFlags.length ? [process.execPath, [...nodeFlags, `${NODE_BUILD}.mjs`]] : [launcher, []];
  if (process.env.BENCH_COLD_NODE === '1') {
    [cmd, pre] = [coldNode(dir), [...(nodeFlags.length ? nodeFlags : launcherFlags(NODE_BUILD)), `${NODE_BUILD}.mjs`]];
  }
  // with a limit: a shell joins the cgroup, then execs flanneld, so every byte flanneld uses is charged
  const cg = LIMIT_MIB > 0 ? makeCgroup(`fl-bench-${process.pid}-${n}-${tag}`, LIMIT_MIB) : undefined;
  if (cg) [cmd, pre] = ['/bin/sh', ['-c', `echo $$ > ${cg.dir}/cgroup.procs && exec "$@"`, 'sh', cmd, ...pre]];
  // BENCH_FLANNELD_NODE_OPTIONS="--max-old-space-size=64": NODE_OPTIONS for flanneld only, not the bench
  const env = { ...process.env };
  if (process.env.BENCH_FLANNELD_NODE_OPTIONS) env.NODE_OPTIONS = process.env.BENCH_FLANNELD_NODE_OPTIONS;
  const p = spawn(
    cmd,
    [
      ...pre,'--etcd-endpoints', `http://127.0.0.1:${etcd.port}`, '--etcd-prefix', prefix, '--iface', 'lo', '--public-ip', '10.255.255.1', '--subnet-file', join(dir, `subnet-${n}-${tag}.env`), '--data-dir', join(dir, `data-${tag}`)],
    { stdio: ['ignore', 'ignore', 'pipe'], env },
  );
  p.stderr.on('data', (c) => {
    const now = performance.now();
    err += c.toString();
    if (marks.ready === undefined && err.includes('Running backend.')) marks.ready = now;
    if (marks.snapshot === undefined && err.includes('Lease snapshot:')) marks.snapshot = now;
  });
  const exited = new Promise((r) => p.once('exit', (code, signal) => r({ code, signal })));
  const gone = () => p.exitCode !== null || p.signalCode !== null;
  // under a memory limit, dying is a result (how it died is the point), not a bench failure
  const died = async (when) => {
    if (!cg) throw new Error(`flanneld exited ${when}:\n${err}`);
    const { code, signal } = await exited;
    // V8's own heap-limit line if there is one (a native stack trace follows it), else the last line
    const lines = err.trim().split('\n').filter(Boolean);
    const last = lines.find((l) => l.includes('FATAL ERROR')) ?? lines.slice(-1)[0] ?? '(nothing on stderr)';
    const row = { n, launcher, populateMs, died: `${when}: ${signal ?? `exit ${code}`}, OOM kills ${cg.oomKills()}, stderr: ${last.slice(0, 100)}`, cgPeak: cg.peak() };
    removeCgroup(cg);
    return row;
  };
  const deadline = Date.now() + 60_000;
  while (marks.snapshot === undefined) {
    if (gone()) return died('before the snapshot');
    if (Date.now() > deadline) throw new Error(`flanneld did not process the snapshot:\n${err}`);
    await sleep(5);
  }
  await sleep(1000); // settle
  if (gone()) return died('after the snapshot');
  const mem = rssMiB(p.pid);

  const delays = [];
  for (let i = 0; i < PUT_SAMPLES; i++) {
    const key = subnetKey(n + 1000 + i); // above the daemon's own pick range is fine: any free key
    const sn = key.replace('-24', '/24');
    const t = performance.now();
    await post(etcd.port, '/v3/kv/put', { key: b64(`${prefix}/subnets/${key}`), value: b64('{"PublicIP":"192.0.2.1","PublicIPv6":null}') });
    const d2 = Date.now() + 10_000;
    while (!err.includes(`Subnet added: ${sn}`)) {
      if (gone()) return died('during the puts');
      if (Date.now() > d2) {
        if (!cg) throw new Error(`no event for ${sn}`);
        p.kill('SIGKILL'); // alive but stalled (reclaiming its own text under the limit): a result too
        return died(`stalled: no event for a put within 10 s, killed by the bench`);
      }
      await new Promise((r) => setImmediate(r));
    }
    delays.push(performance.now() - t);
  }
  if (gone()) return died('during the puts');
  const memAfter = rssMiB(p.pid);
  const cgPeak = cg?.peak();
  p.kill('SIGTERM');
  const { code } = await exited;
  if (cg) removeCgroup(cg);
  delays.sort((a, b) => a - b);
  // the larger of the two readings, with its own parts (anon + file of one reading add up to its RSS)
  const m = memAfter.rss > mem.rss ? memAfter : mem;
  return {
    n,
    launcher,
    populateMs,
    readyMs: marks.ready - start,
    startToSnapshotMs: marks.snapshot - start,
    snapshotMs: marks.snapshot - marks.ready,
    rss: m.rss,
    anon: m.anon,
    file: m.file,
    hwm: memAfter.hwm,
    p50: delays[Math.floor(delays.length / 2)], // the upper median, as this table has always reported it
    p95: percentile(delays, 0.95),
    exit: code,
    cgPeak,
  };
}

/** A copy of the node binary with none of its pages in the page cache (the first reader is charged them). */
function coldNode(dir) {
  const copy = join(dir, 'node-cold');
  if (!existsSync(copy)) copyFileSync(process.execPath, copy);
  // fdatasync, then drop the copy's (now clean) pages: dd's documented "drop cache for the whole file"
  if (spawnSync('dd', [`if=${copy}`, 'iflag=nocache', 'oflag=nocache', 'conv=fdatasync,notrunc', `of=${copy}`, 'count=0'], { stdio: 'ignore' }).status !== 0
    || spawnSync('dd', [`if=${copy}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('could not drop the node copy from the page cache');
  }
  return copy;
}

function removeCgroup(cg) {
  for (let i = 0; i < 50; i++) {
    try { rmdirSync(cg.dir); return; } catch { spawnSync('sleep', ['0.1']); }
  }
  console.error(`could not remove cgroup ${cg.dir}`);
}

if (spawnSync('etcd', ['--version']).status !== 0) {
  console.error('etcd not found (apt-get install etcd-server)');
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'bench-leases-'));
const etcd = await startEtcd(dir);
const rows = [];
let floors;
try {
  // the floors first, on a machine as loaded as it is for flanneld
  floors = await runtimeFloors({ nodeFlags: launcherFlags(NODE_BUILD) });
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of counts) {
      for (const [i, l] of launchers.entries()) rows.push(await runOne(etcd, dir, n, l, `${round}-${i}`));
    }
  }
} finally {
  await etcd.stop();
  closeHttp();
  rmSync(dir, { recursive: true, force: true });
  if (cgMount && spawnSync('umount', [cgMount]).status === 0) rmdirSync(cgMount);
}

const f = (x, d = 0) => (x === undefined || Number.isNaN(x) ? '' : x.toFixed(d));
const median = (xs) => {
  const s = xs.filter((x) => x !== undefined).sort((a, b) => a - b);
  return s.length === 0 ? undefined : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const limitNote = LIMIT_MIB > 0 ? `, in a memory cgroup limited to ${LIMIT_MIB} MiB` : '';
const coldNote = process.env.BENCH_COLD_NODE === '1' ? ', node binary cold (not in the page cache)' : '';
const runtimeName = (l) => (process.env.BENCH_NODE_FLAGS ? `node ${process.version} ${process.env.BENCH_NODE_FLAGS}` : runtimeOf(l));
const loadNote = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`flanneld (alloc backend) with existing leases in etcd${limitNote}${coldNote}${process.env.BENCH_FLANNELD_NODE_OPTIONS ? `, NODE_OPTIONS=${process.env.BENCH_FLANNELD_NODE_OPTIONS}` : ''}; ${ROUNDS > 1 ? `medians of ${ROUNDS} rounds, ` : ''}load average at the end ${loadNote}`);
for (const l of launchers) console.log(`- ${l.replace(`${ROOT}/`, '')}: ${runtimeName(l)}`);
console.log('\n| flanneld | leases | start→lease+subnet.env (ms) | snapshot processed (ms) | start→snapshot (ms) | RSS (MiB) | anon / file | above its runtime floor | peak RSS (MiB) | cgroup peak (MiB) | put→event p50 / p95 (ms) | exit on SIGTERM |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const fl of floors) {
  if (fl.missing) console.log(`| ${fl.label} | | | | | ${fl.missing} | | | | | | |`);
  else console.log(`| ${fl.label} | | | | | ${f(fl.rss, 1)} | ${f(fl.anon, 1)} / ${f(fl.file, 1)} | | ${f(fl.hwm, 1)} | | | |`);
}
/** the floor of the runtime that runs launcher l: bun's for a compiled executable, node's for a script */
const floorOf = (l) => floors.find((x) => !x.missing && (runtimeName(l).startsWith('self-contained') ? x.label.startsWith('bare bun') : x.label.startsWith('idle node')));
const summary = [];
for (const n of counts) {
  for (const l of launchers) {
    const rs = rows.filter((r) => r.n === n && r.launcher === l);
    const name = l.replace(`${ROOT}/`, '');
    for (const r of rs.filter((x) => x.died)) console.log(`| ${name} | ${n} | died ${r.died} | | | | | | | ${r.cgPeak === undefined ? '' : f(r.cgPeak, 1)} | | |`);
    const ok = rs.filter((r) => !r.died);
    if (ok.length === 0) continue;
    const md = (k) => median(ok.map((r) => r[k]));
    const rss = md('rss');
    const floor = floorOf(l);
    const each = ok.length > 1 ? ` (${ok.map((r) => f(r.rss, 1)).join(', ')})` : '';
    console.log(`| ${name} | ${n} | ${f(md('readyMs'))} | ${f(md('snapshotMs'))} | ${f(md('startToSnapshotMs'))} | ${f(rss, 1)}${each} | ${f(md('anon'), 1)} / ${f(md('file'), 1)} | ${floor ? `+${f(rss - floor.rss, 1)}` : ''} | ${f(md('hwm'), 1)} | ${f(md('cgPeak'), 1)} | ${f(md('p50'), 1)} / ${f(md('p95'), 1)} | ${ok.map((r) => r.exit).join(',')} |`);
    summary.push({ name, n, rss, hwm: md('hwm'), snapshotMs: md('snapshotMs') });
  }
}
console.log('');
for (const s of summary) {
  if (s.n === 0) console.log(`${s.name}: idle target (issue 13): RSS ≤ 35 MiB → ${f(s.rss, 1)} MiB ${s.rss <= 35 ? 'ok' : 'MISSED'}`);
  if (s.n === 5000) {
    console.log(`${s.name}: 5000-peer target (issue 13): RSS ≤ 50 MiB → ${f(s.rss, 1)} MiB ${s.rss <= 50 ? 'ok' : 'MISSED'}`);
    console.log(`${s.name}: targets at 5000: peak RSS ≤ 96 MiB → ${f(s.hwm, 1)} MiB ${s.hwm <= 96 ? 'ok' : 'MISSED'}; snapshot ≤ 1000 ms → ${f(s.snapshotMs)} ms ${s.snapshotMs <= 1000 ? 'ok' : 'MISSED'}`);
  }
}
