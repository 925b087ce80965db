// CNI plugin latency: ADD and DEL wall time of whole plugin processes, ours vs the Go reference,
// exec'd as a runtime does (clean environment: PATH + CNI_*; config on stdin), interleaved in random
// order every round, after warm-up rounds. Prints a markdown table (median, p90, ratio to Go).
//
//   scripts/bench/cni-latency [--runs 40] [--warmup 3] [--suite host-local] [--no-build]
//
// Suites are entries of SUITES: {name, setup(), variants[], add(variant, id), del(variant, id), teardown()}.
// A suite that needs namespaces (bridge, flannel → bridge → host-local) creates them in setup() with
// unique names and removes them in teardown(); add() returns the argv/env/stdin of one exec.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = (name) => join(root, 'dist', 'bin', name);
const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

const opts = { runs: 40, warmup: 3, suite: undefined, build: true };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--runs') opts.runs = Number(process.argv[++i]);
  else if (a === '--warmup') opts.warmup = Number(process.argv[++i]);
  else if (a === '--suite') opts.suite = process.argv[++i];
  else if (a === '--no-build') opts.build = false;
  else {
    console.error(`usage: cni-latency [--runs N] [--warmup N] [--suite NAME] [--no-build]`);
    process.exit(2);
  }
}

const cniEnv = (command, id) => ({
  PATH,
  CNI_COMMAND: command,
  CNI_CONTAINERID: id,
  CNI_NETNS: '/var/run/netns/bench-none',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
});

// ---- suites ------------------------------------------------------------------------------------

/** host-local IPAM alone: one v4 range set, a private dataDir per variant. */
function hostLocalSuite() {
  let work;
  const conf = (dataDir) => JSON.stringify({ cniVersion: '1.0.0', name: 'bench', ipam: { type: 'host-local', subnet: '10.200.0.0/16', dataDir } });
  return {
    name: 'host-local',
    variants: [],
    setup() {
      work = mkdtempSync(join(tmpdir(), 'cni-latency-'));
      // ours without the addon: a copy of the bundle in a directory that has no flock.node
      const plain = join(work, 'bin-flock1');
      spawnSync('mkdir', ['-p', plain]);
      copyFileSync(bin('host-local'), join(plain, 'host-local'));
      copyFileSync(bin('package.json'), join(plain, 'package.json'));
      this.variants = [
        { label: 'go /usr/lib/cni/host-local', file: '/usr/lib/cni/host-local', go: true },
        { label: `ours (flock ${existsSync(bin('flock.node')) ? 'addon' : 'flock(1)'})`, file: bin('host-local') },
        ...(existsSync(bin('flock.node')) ? [{ label: 'ours (flock(1) fallback)', file: join(plain, 'host-local') }] : []),
      ].filter((v) => existsSync(v.file));
      for (const v of this.variants) v.dataDir = mkdtempSync(join(work, 'data-'));
    },
    add: (v, id) => ({ file: v.file, env: cniEnv('ADD', id), stdin: conf(v.dataDir), check: (out) => out.includes('"ips"') }),
    del: (v, id) => ({ file: v.file, env: cniEnv('DEL', id), stdin: conf(v.dataDir), check: (out) => out === '' }),
    teardown() {
      if (work) rmSync(work, { recursive: true, force: true });
    },
  };
}

/** Process-start floors: what any exec costs here. */
function floorSuite() {
  return {
    name: 'floor',
    variants: [
      { label: '/bin/true', file: '/bin/true' },
      { label: 'node -e 0 (clean env)', file: process.execPath, args: ['-e', '0'] },
    ],
    setup() {},
    add: (v) => ({ file: v.file, args: v.args, env: { PATH }, check: () => true }),
    del: undefined,
    teardown() {},
  };
}

const SUITES = [floorSuite, hostLocalSuite];

// ---- runner ------------------------------------------------------------------------------------

function shuffle(a) {
  const b = [...a];
  for (let i = b.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [b[i], b[j]] = [b[j], b[i]];
  }
  return b;
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function exec(spec) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(spec.file, spec.args ?? [], { env: spec.env, input: spec.stdin ?? '', encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 || !spec.check(r.stdout)) {
    throw new Error(`${spec.file} ${spec.env.CNI_COMMAND ?? ''} failed (status ${r.status}): ${r.stdout}${r.stderr}`);
  }
  return ms;
}

function runSuite(suite) {
  suite.setup();
  const times = new Map(suite.variants.map((v) => [v, { add: [], del: [] }]));
  try {
    for (let round = 0; round < opts.warmup + opts.runs; round++) {
      const id = `bench-${process.pid}-${round}`;
      const record = round >= opts.warmup;
      for (const v of shuffle(suite.variants)) {
        const ms = exec(suite.add(v, id));
        if (record) times.get(v).add.push(ms);
      }
      if (suite.del) {
        for (const v of shuffle(suite.variants)) {
          const ms = exec(suite.del(v, id));
          if (record) times.get(v).del.push(ms);
        }
      }
    }
  } finally {
    suite.teardown();
  }
  return times;
}

const fmt = (x) => (Number.isFinite(x) ? x.toFixed(2) : '—');

if (opts.build) {
  const b = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), 'host-local', 'loopback'], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(1);
  spawnSync(process.execPath, [join(root, 'plugins', 'host-local', 'native', 'build.mjs')], { stdio: 'inherit' });
}

const envNote = process.env.NODE_EXTRA_CA_CERTS ? ' (note: plugins run WITHOUT the NODE_EXTRA_CA_CERTS set in this shell)' : '';
console.log(`# CNI plugin latency: ${opts.runs} interleaved rounds after ${opts.warmup} warm-up, ms of wall time per exec${envNote}`);
console.log(`node ${process.version}, ${new Date().toISOString()}\n`);
console.log('| suite | variant | ADD median | ADD p90 | DEL median | DEL p90 | ADD ×Go | DEL ×Go |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const make of SUITES) {
  const suite = make();
  if (opts.suite && suite.name !== opts.suite && suite.name !== 'floor') continue;
  const times = runSuite(suite);
  const stats = new Map();
  for (const [v, t] of times) {
    const add = [...t.add].sort((a, b) => a - b);
    const del = [...t.del].sort((a, b) => a - b);
    stats.set(v, { addMed: quantile(add, 0.5), addP90: quantile(add, 0.9), delMed: quantile(del, 0.5), delP90: quantile(del, 0.9) });
  }
  const go = [...stats].find(([v]) => v.go)?.[1];
  for (const [v, s] of stats) {
    const ratio = (a, b) => (go && !v.go && Number.isFinite(a) ? `${(a / b).toFixed(2)}` : '');
    console.log(
      `| ${suite.name} | ${v.label} | ${fmt(s.addMed)} | ${fmt(s.addP90)} | ${fmt(s.delMed)} | ${fmt(s.delP90)} | ${ratio(s.addMed, go?.addMed)} | ${ratio(s.delMed, go?.delMed)} |`,
    );
  }
}
