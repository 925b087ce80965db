// Issue 9 "Must show": the four plugins (flannel, bridge, host-local, loopback) under a few thousand
// seeded hostile inputs (gen.ts). For every run: exit status 0 or 1, exactly one JSON document on stdout
// (an error {code,msg} or a valid result; nothing for a successful DEL/CHECK/STATUS/GC), no stack trace
// on stdout or stderr, within a time limit and under a memory limit (prlimit --data). After the runtime's
// successful DEL of every ADD (successful or not), nothing is left: no allocation in the host-local
// store, no file in flannel's dataDir, no veth in the host netns, only lo in the pod (a DEL that fails
// is retried by a runtime, so its state may stay). A command other than ADD never leaves anything.
//
// Everything runs in netns made here (`ip netns exec <host>`), with private dataDirs; CNI_PATH holds
// only private copies of our four plugins (a concurrent `npm run build` cannot swap them mid-run). A Node
// start costs 50-150 ms of CPU, so thousands of execs would not fit the suite's budget on 2 cores: most
// inputs (IN_PROCESS) run through the plugins' own code inside two long-lived driver processes
// (driver.ts, in the host netns), and a smaller set runs as real processes, the way a runtime calls
// them (EXECED: hostile inputs, 4 at a time, never with a usable pod netns; REAL: ADD+DEL one at a
// time against a real pod netns).
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { build } from 'esbuild';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { DIST_BIN, TEST_BUILD } from '../../helpers/paths.js';
import { type Case, type Paths, PLUGINS, hostileCase, realCase, rng } from './gen.js';

/** the test build's executables: dist/exe (links to the multi-call flannel-cni), or dist/bin */
const DIST = DIST_BIN;
const built = PLUGINS.every((p) => existsSync(join(DIST, p)));

const SEED = 0x9f1a2b3c;
const IN_PROCESS = 6000;
const EXECED = 240;
const REAL = 30;
const PARALLEL = 4;
/** per run: a hang is a failure, not a stuck suite */
const RUN_TIMEOUT_MS = 30_000;
/** per run (the plugin and any delegate it execs): a runaway allocation crashes instead of swapping */
const DATA_LIMIT = 512 * 1024 * 1024;
const PRLIMIT = ['/usr/bin/prlimit', '/bin/prlimit'].find((p) => existsSync(p));
const MAX_OUT = 1024 * 1024;

interface Run {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

interface Failure {
  id: number;
  plugin: string;
  command: string;
  why: string;
  env: Record<string, string>;
  stdin: string;
  stdout: string;
  stderr: string;
}

let host: Netns;
let pod: Netns;
let paths: Paths;

function exec(c: Case, command: string): Promise<Run> {
  return new Promise((done) => {
    const argv = [...(PRLIMIT ? [PRLIMIT, `--data=${DATA_LIMIT}`] : []), join(paths.bin, c.plugin)];
    const child = spawn('ip', ['netns', 'exec', host.name, ...argv], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...c.env, CNI_COMMAND: command },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < MAX_OUT) stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < MAX_OUT) stderr += d;
    });
    child.stdin.on('error', () => {});
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      done({ status, signal, stdout, stderr, timedOut });
    });
    child.stdin.end(c.stdin);
  });
}

const STACK = /^\s+at .+(:\d+:\d+\)?|\(native\)|\(<anonymous>\))$/m;

/** What is wrong with one run, or undefined. */
function judge(command: string, r: Run): string | undefined {
  if (r.timedOut) return `no answer within ${RUN_TIMEOUT_MS} ms`;
  if (r.status !== 0 && r.status !== 1) return `exit status ${r.status} signal ${r.signal}`;
  if (STACK.test(r.stderr) || STACK.test(r.stdout)) return 'stack trace';
  if (r.stdout.length >= MAX_OUT) return 'runaway stdout';
  if (r.status === 0 && r.stdout.trim() === '') {
    // DEL/CHECK/STATUS/GC print nothing; no CNI_COMMAND at all prints the about text on stderr
    return command === 'ADD' || command === 'VERSION' ? `exit 0 and nothing on stdout for ${command}` : undefined;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    return 'stdout is not exactly one JSON document';
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'stdout is not a JSON object';
  const o = doc as Record<string, unknown>;
  if (r.status === 1) {
    if (typeof o.code !== 'number' || typeof o.msg !== 'string') return 'exit 1 without a {code,msg} error';
    if (o.msg === '') return 'an error with an empty msg';
    return undefined;
  }
  if (command === 'VERSION') return Array.isArray(o.supportedVersions) ? undefined : 'VERSION without supportedVersions';
  if (command !== 'ADD') return `exit 0 with output for ${command}`;
  if (typeof o.cniVersion !== 'string') return 'ADD result without cniVersion';
  if ('code' in o) return 'exit 0 with an error document';
  return undefined;
}

/** Files a plugin leaves in a private dir after DEL that are not per-container state. */
const ALLOWED = /^(lock|last_reserved_ip\.\d+)$/;

function leftovers(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (!ALLOWED.test(n)) out.push(p.slice(dir.length + 1));
    }
  };
  walk(dir);
  return out;
}

const links = (ns: Netns) => (JSON.parse(ns.exec(['ip', '-j', 'link', 'show']).stdout) as Array<{ ifname: string }>).map((l) => l.ifname);

/** plugin → ADDs that succeeded (the real group must configure pods, not only refuse input) */
const addOk = new Map<string, number>();

async function runCase(c: Case, failures: Failure[], real: boolean): Promise<void> {
  const fail = (why: string, r?: Run) =>
    failures.push({ id: c.id, plugin: c.plugin, command: c.command, why, env: c.env, stdin: c.stdin.slice(0, 400), stdout: r?.stdout.slice(0, 400) ?? '', stderr: r?.stderr.slice(-400) ?? '' });
  const r = await exec(c, c.command);
  if (c.command === 'ADD' && r.status === 0) addOk.set(c.plugin, (addOk.get(c.plugin) ?? 0) + 1);
  const bad = judge(c.command, r);
  if (bad) fail(bad, r);
  if (c.command !== 'ADD') {
    // a non-ADD never leaves state (a DEL/CHECK/... of nothing): anything found is a leak
    const left = leftovers(c.dir);
    if (left.length > 0) fail(`${c.command} left ${left.join(', ')}`);
    return;
  }
  // the runtime's DEL after every ADD, with the same config and environment
  const d = await exec(c, 'DEL');
  const badDel = judge('DEL', d);
  if (badDel) fail(`runtime DEL: ${badDel}`, d);
  // a DEL that failed is retried by the runtime: state may stay until one succeeds
  const left = d.status === 0 ? leftovers(c.dir) : [];
  if (left.length > 0) fail(`after ADD (exit ${r.status}) and DEL (exit ${d.status}): left ${left.join(', ')}`, d);
  if (real) {
    const veths = links(host).filter((l) => l.startsWith('veth'));
    if (veths.length > 0) fail(`veths left in the host netns: ${veths.join(' ')}`, d);
    for (const v of veths) host.exec(['ip', 'link', 'del', v], { allowFail: true });
    const podLeft = links(pod).filter((l) => l !== 'lo');
    if (podLeft.length > 0) fail(`links left in the pod: ${podLeft.join(' ')}`, d);
    for (const l of podLeft) pod.exec(['ip', 'link', 'del', l], { allowFail: true });
  }
}

describe.skipIf(!canUseNetns || !built)('plugins under seeded hostile input', () => {
  beforeAll(async () => {
    const root = mkdtempSync(join(tmpdir(), `ftest-${process.pid}-fuzz-`));
    const bin = join(root, 'bin');
    mkdirSync(bin);
    if (TEST_BUILD === 'exe') {
      // one copy of the multi-call file, every plugin name a hard link to it, as scripts/install.sh lays it out
      copyFileSync(join(DIST, 'flannel-cni'), join(bin, 'flannel-cni'));
      for (const p of PLUGINS) linkSync(join(bin, 'flannel-cni'), join(bin, p));
    } else {
      for (const f of [...PLUGINS, 'flock.node', 'package.json']) if (existsSync(join(DIST, f))) copyFileSync(join(DIST, f), join(bin, f));
    }
    const subnetFile = join(root, 'subnet.env');
    writeFileSync(subnetFile, 'FLANNEL_NETWORK=10.77.0.0/16\nFLANNEL_SUBNET=10.77.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
    writeFileSync(join(root, 'garbage.env'), 'FLANNEL_NETWORK=bogus\nFLANNEL_SUBNET=10.77.3.1\n\u0000\u0000=\nFLANNEL_MTU=-5\n');
    writeFileSync(join(root, 'empty.env'), '');
    writeFileSync(join(root, 'long-line.env'), `FLANNEL_SUBNET=${'1'.repeat(200_000)}\n`);
    mkdirSync(join(root, 'a-dir'));
    paths = {
      root,
      bin,
      subnetFile,
      hostileSubnetFiles: [join(root, 'garbage.env'), join(root, 'empty.env'), join(root, 'long-line.env'), join(root, 'a-dir'), join(root, 'missing.env'), '/dev/zero', ''],
    };
    host = createNetns('fzh');
    pod = createNetns('fzp');
    await build({
      entryPoints: [join(import.meta.dirname, 'driver.ts')],
      bundle: true,
      platform: 'node',
      format: 'cjs',
      target: 'node20',
      outfile: join(root, 'driver.cjs'),
      logLevel: 'error',
    });
  });
  afterAll(() => {
    cleanupNetns();
    if (paths) rmSync(paths.root, { recursive: true, force: true });
  });

  const BAD_NETNS = () => ['', '/var/run/netns/ftest-fuzz-none', '/tmp', '/dev/null', '/proc/self/ns/net', '/proc/self/ns/net', '/proc/self/ns/mnt', 'relative', '/dev/zero', join(paths.root, 'a-dir')];

  it(`${IN_PROCESS} hostile inputs through the plugins' code in two driver processes`, async () => {
    const r = rng(SEED);
    const cases = Array.from({ length: IN_PROCESS }, (_, i) => hostileCase(i, r, paths, BAD_NETNS()));
    const failures: Failure[] = [];
    const fail = (c: Case, command: string, why: string, out?: { stdout: string; stderr: string }) =>
      failures.push({ id: c.id, plugin: c.plugin, command, why, env: c.env, stdin: c.stdin.slice(0, 400), stdout: out?.stdout.slice(0, 400) ?? '', stderr: out?.stderr.slice(-400) ?? '' });
    let maxRss = 0;
    /** `<plugin> <command> <ok|error code>` → count: the inputs reach every plugin's real work, not just its parser */
    const seen = new Map<string, number>();
    /** case → exit status of the runtime's DEL after its ADD */
    const delStatus = new Map<number, number>();
    const drive = (part: Case[]) =>
      new Promise<void>((done, reject) => {
        const argv = [...(PRLIMIT ? [PRLIMIT, `--data=${2 * DATA_LIMIT}`] : []), process.execPath, join(paths.root, 'driver.cjs')];
        const child = spawn('ip', ['netns', 'exec', host.name, ...argv], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['pipe', 'pipe', 'pipe'] });
        const byKey = new Map<number, { c: Case; command: string }>();
        for (const c of part) {
          const cmds = c.command === 'ADD' ? ['ADD', 'DEL'] : [c.command];
          cmds.forEach((command, k) => {
            const key = c.id * 2 + k;
            byKey.set(key, { c, command });
            child.stdin.write(`${JSON.stringify({ id: key, plugin: c.plugin, bin: paths.bin, env: { ...c.env, CNI_COMMAND: command }, stdin: c.stdin })}\n`);
          });
        }
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 4000)));
        const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
        createInterface({ input: child.stdout }).on('line', (line) => {
          const a = JSON.parse(line) as { id: number; code?: number; stdout?: string; stderr?: string; crash?: string; rss?: number };
          const at = byKey.get(a.id);
          if (!at) return;
          if (a.crash !== undefined) return fail(at.c, at.command, a.crash.slice(0, 1000));
          byKey.delete(a.id);
          maxRss = Math.max(maxRss, a.rss ?? 0);
          const tag = `${at.c.plugin} ${at.command} ${a.code === 0 ? 'ok' : (/"code": (\d+)/.exec(a.stdout ?? '')?.[1] ?? '?')}`;
          seen.set(tag, (seen.get(tag) ?? 0) + 1);
          if (at.c.command === 'ADD' && at.command === 'DEL') delStatus.set(at.c.id, a.code ?? -1);
          const bad = judge(at.command, { status: a.code ?? -1, signal: null, stdout: a.stdout ?? '', stderr: a.stderr ?? '', timedOut: false });
          if (bad) fail(at.c, at.command, bad, { stdout: a.stdout ?? '', stderr: a.stderr ?? '' });
          if (byKey.size === 0) child.stdin.end();
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const left = [...byKey.values()];
          if (left.length > 0) return reject(new Error(`driver ended (${code ?? signal}) with ${left.length} cases unanswered, first: ${JSON.stringify(left[0]!.c)}; stderr: ${stderr}`));
          done();
        });
        if (byKey.size === 0) child.stdin.end();
      });
    await Promise.all([drive(cases.filter((_, i) => i % 2 === 0)), drive(cases.filter((_, i) => i % 2 === 1))]);
    for (const c of cases) {
      // a DEL that failed is retried by the runtime: state may stay until one succeeds
      if (c.command === 'ADD' && delStatus.get(c.id) !== 0) continue;
      const left = leftovers(c.dir);
      if (left.length > 0) fail(c, c.command, `after ${c.command}${c.command === 'ADD' ? ' and DEL' : ''}: left ${left.join(', ')}`);
    }
    const byPlugin = Object.fromEntries(PLUGINS.map((p) => [p, cases.filter((c) => c.plugin === p).length]));
    expect(Math.min(...Object.values(byPlugin))).toBeGreaterThan(IN_PROCESS / 8);
    expect(failures.slice(0, 8), `${failures.length} failures`).toEqual([]);
    expect(links(host).filter((l) => l.startsWith('veth'))).toEqual([]);
    if (process.env.FUZZ_STATS) console.log([...seen].sort().map(([k, n]) => `${k}: ${n}`).join('\n'));
    // past the parsers: host-local allocates (no netns needed), the others fail at the junk netns
    expect(seen.get('host-local ADD ok') ?? 0).toBeGreaterThan(0);
    for (const p of PLUGINS) expect(seen.get(`${p} ADD 999`) ?? 0, `${p}: some ADD gets past the config`).toBeGreaterThan(0);
    // one driver ran ~1200 cases: its memory stays that of one plugin run, give or take
    expect(maxRss).toBeLessThan(DATA_LIMIT);
  }, 600_000);

  it(`${EXECED} hostile inputs as real processes, ${PARALLEL} at a time`, async () => {
    const r = rng(SEED + 2);
    const cases = Array.from({ length: EXECED }, (_, i) => hostileCase(IN_PROCESS + i, r, paths, BAD_NETNS()));
    const failures: Failure[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < cases.length) await runCase(cases[next++]!, failures, false);
      }),
    );
    expect(failures.slice(0, 8), `${failures.length} failures`).toEqual([]);
    expect(links(host).filter((l) => l.startsWith('veth'))).toEqual([]);
  }, 600_000);

  it(`${REAL} real ADD+DEL against a pod netns, one at a time`, async () => {
    const r = rng(SEED + 1);
    const failures: Failure[] = [];
    addOk.clear();
    for (let i = 0; i < REAL; i++) await runCase(realCase(i, r, paths, pod.path), failures, true);
    expect(failures.slice(0, 8), `${failures.length} failures`).toEqual([]);
    for (const p of PLUGINS) expect(addOk.get(p) ?? 0, `${p}: some real ADD succeeds`).toBeGreaterThan(0);
  }, 600_000);
});
