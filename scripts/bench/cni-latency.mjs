// CNI plugin latency: ADD and DEL wall time of whole plugin processes, ours vs the Go reference,
// exec'd as a runtime does (clean environment: PATH + CNI_*; config on stdin), interleaved in random
// order every round, after warm-up rounds. Prints a markdown table (median, p90, ratio to Go).
// "ours" is the self-contained executable (dist/exe, what ships); "ours node" the Node-script build
// (dist/bin), for comparison. Then the parallel suite: 200 pods ADDed at once into one host netns, then
// DELeted at once, ours vs Go: wall time, and 0 duplicate or leaked addresses (or it fails).
//
//   scripts/bench/cni-latency [--runs 40] [--warmup 3] [--suite host-local] [--pods 200] [--no-build]
//
// Suites are entries of SUITES: {name, setup(), variants[], add(variant, id), del(variant, id), teardown()}.
// A suite that needs namespaces (chain: flannel → bridge → host-local) creates them in setup() with
// unique names and removes them in teardown() (optional beforeAdd/afterDel run outside the timing);
// add() returns the argv/env/stdin of one exec. Needs root for the chain suite.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUN, compileBunProgram } from './lib.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const exeDir = join(root, 'dist', 'exe');
const nodeDir = join(root, 'dist', 'bin');
/** the self-contained executable `name` (dist/exe), what ships */
const bin = (name) => join(exeDir, name);
/** the Node-script build's `name` (dist/bin), the development build */
const nodeBin = (name) => join(nodeDir, name);
const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

const opts = { runs: 40, warmup: 3, suite: undefined, build: true, pods: 200 };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--runs') opts.runs = Number(process.argv[++i]);
  else if (a === '--warmup') opts.warmup = Number(process.argv[++i]);
  else if (a === '--suite') opts.suite = process.argv[++i];
  else if (a === '--no-build') opts.build = false;
  else if (a === '--pods') opts.pods = Number(process.argv[++i]);
  else {
    console.error(`usage: cni-latency [--runs N] [--warmup N] [--suite NAME] [--pods N] [--no-build]`);
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
      this.variants = [
        { label: 'go /usr/lib/cni/host-local', file: '/usr/lib/cni/host-local', go: true },
        { label: 'ours (dist/exe)', file: bin('host-local') },
        { label: 'ours node (dist/bin)', file: nodeBin('host-local') },
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

/**
 * The whole pod ADD/DEL chain in network namespaces the suite creates: ours (flannel → bridge →
 * host-local, the kube-flannel conflist's first plugin) vs the Go chain (bridge → host-local with the
 * delegate config the flannel plugin writes; Debian does not package the Go flannel plugin) and our
 * bridge → host-local alone. Each variant has its own "host" netns (its own cni0); every round
 * creates a fresh pod netns per variant outside the timed exec. Plugins run in the host netns through
 * `nsenter --net=` for every variant alike (about 1 ms of the figures, see the floor rows).
 */
function chainSuite() {
  let work;
  const tag = `clb-${process.pid}`;
  const hostNs = (v) => `${tag}-${v.key}`;
  const podNs = (v, id) => `${tag}-${v.key}-${id.split('-').pop()}`;
  const ip = (...a) => {
    const r = spawnSync('ip', a, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`);
  };
  const flannelConf = (v) =>
    JSON.stringify({
      cniVersion: '0.3.1',
      name: 'cbr0',
      type: 'flannel',
      subnetFile: join(v.dir, 'subnet.env'),
      dataDir: join(v.dir, 'flannel'),
      ipam: { dataDir: join(v.dir, 'ipam') },
      delegate: { hairpinMode: true, isDefaultGateway: true },
    });
  // exactly what our flannel plugin hands its delegate for that subnet.env (see the lab's pN.stderr)
  const bridgeConf = (v) =>
    JSON.stringify({
      cniVersion: '0.3.1',
      hairpinMode: true,
      ipMasq: true,
      ipam: { dataDir: join(v.dir, 'ipam'), ranges: [[{ subnet: '10.244.1.0/24' }]], routes: [{ dst: '10.244.0.0/16' }], type: 'host-local' },
      isDefaultGateway: true,
      isGateway: true,
      mtu: 1450,
      name: 'cbr0',
      type: 'bridge',
    });
  const spec = (v, command, id) => ({
    file: 'nsenter',
    args: [`--net=/var/run/netns/${hostNs(v)}`, '--', v.file],
    env: { ...cniEnv(command, id), CNI_NETNS: `/var/run/netns/${podNs(v, id)}`, CNI_PATH: v.cniPath, ...v.env },
    stdin: v.conf(v),
  });
  return {
    name: 'chain',
    confs: { flannel: flannelConf, bridge: bridgeConf },
    variants: [],
    setup() {
      work = mkdtempSync(join(tmpdir(), 'cni-latency-chain-'));
      this.variants = [
        { key: 'go', label: 'go bridge → host-local', file: '/usr/lib/cni/bridge', cniPath: '/usr/lib/cni', conf: bridgeConf, go: true },
        { key: 'ours', label: 'ours flannel → bridge → host-local', file: bin('flannel'), cniPath: exeDir, conf: flannelConf },
        { key: 'br', label: 'ours bridge → host-local', file: bin('bridge'), cniPath: exeDir, conf: bridgeConf },
        // the same chain with every delegate exec'd (no in-process fast path): what the fast path saves
        { key: 'oursx', label: "ours flannel → bridge → host-local, delegates exec'd", file: bin('flannel'), cniPath: exeDir, conf: flannelConf, env: { CNI_TS_EXEC_DELEGATES: '1' } },
        { key: 'node', label: 'ours node flannel → bridge → host-local', file: nodeBin('flannel'), cniPath: nodeDir, conf: flannelConf },
      ].filter((v) => existsSync(v.file));
      for (const v of this.variants) {
        v.dir = mkdtempSync(join(work, `${v.key}-`));
        writeFileSync(join(v.dir, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
        ip('netns', 'add', hostNs(v));
        ip('-n', hostNs(v), 'link', 'set', 'lo', 'up');
      }
    },
    beforeAdd(v, id) {
      ip('netns', 'add', podNs(v, id));
    },
    afterDel(v, id) {
      ip('netns', 'del', podNs(v, id));
    },
    add: (v, id) => ({ ...spec(v, 'ADD', id), check: (out) => out.includes('"ips"') }),
    del: (v, id) => ({ ...spec(v, 'DEL', id), check: (out) => out === '' }),
    teardown() {
      for (const v of this.variants) {
        spawnSync('sh', ['-c', `for n in $(ip netns list | awk '{print $1}' | grep '^${hostNs(v)}'); do ip netns del $n; done`]);
      }
      if (work) rmSync(work, { recursive: true, force: true });
    },
  };
}

/**
 * The runtime's own floor: an empty program (`process.exitCode = 0`) compiled exactly as ours are
 * (lib.mjs compileBunProgram), into a temp dir. What its start costs here no code of ours can go
 * below. Undefined when bun is not installed or the compile fails.
 */
function compileEmptyBun() {
  if (!existsSync(BUN)) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'cni-latency-bun-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return compileBunProgram(dir, 'empty', 'process.exitCode = 0;\n').file;
}

/** Process-start floors: what any exec costs here, and the bare start of each executable (VERSION). */
function floorSuite() {
  const version = { CNI_COMMAND: 'VERSION' };
  const emptyBun = compileEmptyBun();
  return {
    name: 'floor',
    variants: [
      { label: '/bin/true', file: '/bin/true' },
      { label: 'go bridge VERSION (bare Go start)', file: '/usr/lib/cni/bridge', env: version, key: 'go-start' },
      ...(emptyBun ? [{ label: 'empty program, bun --compile --bytecode (the runtime floor)', file: emptyBun }] : []),
      { label: 'ours loopback VERSION (bare start, dist/exe)', file: bin('loopback'), env: version },
      { label: 'ours flannel VERSION (dist/exe)', file: bin('flannel'), env: version },
      { label: 'node -e 0 (clean env)', file: process.execPath, args: ['-e', '0'] },
      { label: 'ours node loopback VERSION (dist/bin)', file: nodeBin('loopback'), env: version },
      { label: 'nsenter --net= /bin/true', file: 'nsenter', args: ['--net=/proc/self/ns/net', '--', '/bin/true'] },
    ].filter((v) => existsSync(v.file) || !v.file.startsWith('/')),
    setup() {},
    add: (v) => ({ file: v.file, args: v.args, env: { PATH, ...v.env }, check: () => true }),
    del: undefined,
    teardown() {},
  };
}

/** loopback alone, in one pod netns per variant (ADD sets lo up, DEL down). */
function loopbackSuite() {
  const tag = `cll-${process.pid}`;
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'lo', type: 'loopback' });
  const spec = (v, command, id) => ({ file: v.file, env: { ...cniEnv(command, id), CNI_NETNS: `/var/run/netns/${tag}-${v.key}`, CNI_IFNAME: 'lo' }, stdin: conf });
  return {
    name: 'loopback',
    variants: [
      { key: 'go', label: 'go /usr/lib/cni/loopback', file: '/usr/lib/cni/loopback', go: true },
      { key: 'exe', label: 'ours (dist/exe)', file: bin('loopback') },
      { key: 'node', label: 'ours node (dist/bin)', file: nodeBin('loopback') },
    ].filter((v) => existsSync(v.file)),
    setup() {
      for (const v of this.variants) spawnSync('ip', ['netns', 'add', `${tag}-${v.key}`]);
    },
    add: (v, id) => ({ ...spec(v, 'ADD', id), check: (out) => out.includes('"interfaces"') }),
    del: (v, id) => ({ ...spec(v, 'DEL', id), check: (out) => out === '' }),
    teardown() {
      for (const v of this.variants) spawnSync('ip', ['netns', 'del', `${tag}-${v.key}`]);
    },
  };
}

const SUITES = [floorSuite, hostLocalSuite, loopbackSuite, chainSuite];

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
        suite.beforeAdd?.(v, id);
        const ms = exec(suite.add(v, id));
        if (record) times.get(v).add.push(ms);
      }
      if (suite.del) {
        for (const v of shuffle(suite.variants)) {
          const ms = exec(suite.del(v, id));
          suite.afterDel?.(v, id);
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
/** the floor suite's bare Go start (median ms), for the chain's Go-flannel model */
let goStart;

if (opts.build) {
  // both builds of the plugins, the native shim included (scripts/build.mjs)
  const b = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), 'host-local', 'loopback', 'bridge', 'flannel'], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(1);
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
  if (suite.name === 'floor') goStart = [...stats].find(([v]) => v.key === 'go-start')?.[1]?.addMed;
  if (suite.name === 'chain' && go && goStart !== undefined) {
    // Debian packages no Go flannel plugin: the Go chain a kubelet runs is one more Go process (flannel
    // reads subnet.env, writes its saved config, execs bridge) ahead of these two. A model, not a
    // measurement: the measured Go chain plus the measured bare Go start of this run.
    const m = (x) => x + goStart;
    console.log(`| chain | model: Go flannel → bridge → host-local (Go chain + one bare Go start) | ${fmt(m(go.addMed))} | — | ${fmt(m(go.delMed))} | — |  |  |`);
    for (const [v, s] of stats) {
      if (v.key === 'ours') console.log(`| chain | ${v.label}, ×the model | | | | | ${(s.addMed / m(go.addMed)).toFixed(2)} | ${(s.delMed / m(go.delMed)).toFixed(2)} |`);
    }
  }
}

// ---- parallel: N pods ADDed at once into one host, then DELeted at once -------------------------

function execAsync(file, args, env, stdin) {
  return new Promise((resolve) => {
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** One variant's N parallel ADDs then N parallel DELs; throws on a failure, a duplicate or a leak. */
async function parallelRun(v, n, rep) {
  const tag = `clp-${process.pid}-${v.key}${rep}`;
  const host = tag;
  const dir = mkdtempSync(join(tmpdir(), `cni-latency-par-${v.key}-`));
  writeFileSync(join(dir, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
  const pods = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
  const ip = (...a) => spawnSync('ip', a, { encoding: 'utf8' });
  try {
    ip('netns', 'add', host);
    ip('-n', host, 'link', 'set', 'lo', 'up');
    for (const p of pods) ip('netns', 'add', p);
    const call = (command, i) => {
      const env = { ...cniEnv(command, `${tag}-c${i}`), CNI_NETNS: `/var/run/netns/${pods[i]}`, CNI_PATH: v.cniPath };
      return execAsync('nsenter', [`--net=/var/run/netns/${host}`, '--', v.file], env, v.conf({ dir }));
    };
    const timed = async (command) => {
      const t0 = process.hrtime.bigint();
      const rs = await Promise.all(pods.map((_, i) => call(command, i)));
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const bad = rs.find((r) => r.code !== 0);
      if (bad) throw new Error(`${v.label} ${command} failed: ${bad.stdout}${bad.stderr}`);
      return { ms, rs };
    };
    const add = await timed('ADD');
    const ips = add.rs.map((r) => JSON.parse(r.stdout).ips.map((x) => x.address).join(','));
    const dups = ips.length - new Set(ips).size;
    const del = await timed('DEL');
    const ipamDir = join(dir, 'ipam', 'cbr0');
    const leakedIps = existsSync(ipamDir) ? readdirSync(ipamDir).filter((f) => /^[0-9a-f.:]+$/.test(f) && f.includes('.')).length : 0;
    const leakedVeths = (ip('-n', host, '-o', 'link', 'show', 'type', 'veth').stdout.match(/^\d+:/gm) ?? []).length;
    if (dups > 0 || leakedIps > 0 || leakedVeths > 0) throw new Error(`${v.label}: ${dups} duplicate addresses, ${leakedIps} leaked addresses, ${leakedVeths} leaked veths`);
    return { add: add.ms, del: del.ms };
  } finally {
    for (const p of pods) ip('netns', 'del', p);
    ip('netns', 'del', host);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!opts.suite || opts.suite === 'parallel') {
  const chain = chainSuite();
  const variants = [
    { key: 'go', label: 'go bridge → host-local', file: '/usr/lib/cni/bridge', cniPath: '/usr/lib/cni', conf: ({ dir }) => chain.confs.bridge({ dir }), go: true },
    { key: 'ours', label: 'ours flannel → bridge → host-local (dist/exe)', file: bin('flannel'), cniPath: exeDir, conf: ({ dir }) => chain.confs.flannel({ dir }) },
  ].filter((v) => existsSync(v.file));
  console.log(`\n# ${opts.pods} parallel ADDs into one host, then ${opts.pods} parallel DELs: wall time (ms), 2 interleaved repeats; 0 duplicate or leaked addresses checked\n`);
  console.log('| variant | ADD wall | DEL wall | ADD ×Go | DEL ×Go |');
  console.log('|---|---:|---:|---:|---:|');
  const results = new Map(variants.map((v) => [v, []]));
  for (let rep = 0; rep < 2; rep++) {
    for (const v of rep % 2 === 0 ? variants : [...variants].reverse()) results.get(v).push(await parallelRun(v, opts.pods, rep));
  }
  const go = results.get(variants.find((v) => v.go));
  const med = (xs) => quantile([...xs].sort((a, b) => a - b), 0.5);
  for (const [v, rs] of results) {
    const add = med(rs.map((r) => r.add));
    const del = med(rs.map((r) => r.del));
    const ratio = (a, b) => (go && !v.go ? (a / b).toFixed(2) : '');
    console.log(`| ${v.label} | ${rs.map((r) => fmt(r.add)).join(' / ')} | ${rs.map((r) => fmt(r.del)).join(' / ')} | ${ratio(add, med(go.map((r) => r.add)))} | ${ratio(del, med(go.map((r) => r.del)))} |`);
  }
}
