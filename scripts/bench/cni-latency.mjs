// CNI plugin latency: ADD and DEL wall time of whole plugin processes, ours vs the Go reference,
// exec'd as a runtime does (clean environment: PATH + CNI_*; config on stdin), interleaved in random
// order every round, after warm-up rounds. Prints a markdown table (median, p90, ratio to Go).
//
//   scripts/bench/cni-latency [--runs 40] [--warmup 3] [--suite host-local] [--no-build]
//
// Suites are entries of SUITES: {name, setup(), variants[], add(variant, id), del(variant, id), teardown()}.
// A suite that needs namespaces (chain: flannel → bridge → host-local) creates them in setup() with
// unique names and removes them in teardown() (optional beforeAdd/afterDel run outside the timing);
// add() returns the argv/env/stdin of one exec. Needs root for the chain suite.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
    variants: [],
    setup() {
      work = mkdtempSync(join(tmpdir(), 'cni-latency-chain-'));
      this.variants = [
        { key: 'go', label: 'go bridge → host-local', file: '/usr/lib/cni/bridge', cniPath: '/usr/lib/cni', conf: bridgeConf, go: true },
        { key: 'ours', label: 'ours flannel → bridge → host-local', file: bin('flannel'), cniPath: join(root, 'dist', 'bin'), conf: flannelConf },
        { key: 'br', label: 'ours bridge → host-local', file: bin('bridge'), cniPath: join(root, 'dist', 'bin'), conf: bridgeConf },
        // the same chain with every delegate exec'd (no in-process fast path): what the fast path saves
        { key: 'oursx', label: 'ours flannel → bridge → host-local, delegates exec\'d', file: bin('flannel'), cniPath: join(root, 'dist', 'bin'), conf: flannelConf, env: { CNI_TS_EXEC_DELEGATES: '1' } },
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

/** Process-start floors: what any exec costs here. */
function floorSuite() {
  return {
    name: 'floor',
    variants: [
      { label: '/bin/true', file: '/bin/true' },
      { label: 'node -e 0 (clean env)', file: process.execPath, args: ['-e', '0'] },
      { label: 'nsenter --net= /bin/true', file: 'nsenter', args: ['--net=/proc/self/ns/net', '--', '/bin/true'] },
    ],
    setup() {},
    add: (v) => ({ file: v.file, args: v.args, env: { PATH }, check: () => true }),
    del: undefined,
    teardown() {},
  };
}

const SUITES = [floorSuite, hostLocalSuite, chainSuite];

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

if (opts.build) {
  const b = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), 'host-local', 'loopback', 'bridge', 'flannel'], { stdio: 'inherit' });
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
