// What the benchmark scripts share: their own network namespace, a private etcd, JSON over HTTP to
// etcd's gateway and the API-server double, `ip monitor route` timing, RSS from /proc, percentiles and
// the synthetic vxlan peers. Plain ESM so the scripts run with node alone (no build, no typecheck).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import http from 'node:http';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Re-runs the calling script inside a network namespace `<prefix>-<pid>` that it creates, sets up
 * (loopback up, then each `ip -n <ns> ...` of `setup`) and deletes afterwards, then exits with the
 * inner run's status. Inside (envVar set), returns at once: the script goes on.
 */
export function reexecInOwnNetns(scriptUrl, envVar, prefix, setup = []) {
  if (process.env[envVar]) return;
  const ns = `${prefix}-${process.pid}`;
  const ip = (...a) => spawnSync('ip', a, { stdio: 'inherit' }).status === 0;
  let status = 1;
  if (ip('netns', 'add', ns)) {
    try {
      if ([['link', 'set', 'lo', 'up'], ...setup].every((a) => ip('-n', ns, ...a))) {
        const self = fileURLToPath(scriptUrl);
        const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, self, ...process.argv.slice(2)], {
          stdio: 'inherit',
          env: { ...process.env, [envVar]: ns },
        });
        status = r.status ?? 1;
      }
    } finally {
      ip('netns', 'del', ns);
    }
  }
  process.exit(status);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const b64 = (s) => Buffer.from(s).toString('base64');

/** A loopback TCP port free at the time of asking. */
export const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** Kept-alive connections for the bulk puts; `closeHttp()` at the end lets the process exit. */
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
export const closeHttp = () => agent.destroy();

/** POST a JSON body to 127.0.0.1:port; resolves the parsed 200 reply, rejects anything else. */
export function post(port, path, body) {
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

/** fn(0) … fn(n - 1), at most `limit` at a time. */
export async function mapLimit(n, limit, fn) {
  let i = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (i < n) await fn(i++);
  }));
}

/** A private etcd on random loopback ports with its data in dir/etcd; resolves once it answers. */
export async function startEtcd(dir) {
  const port = await freePort();
  const peer = await freePort();
  const proc = spawn(
    'etcd',
    [
      '--name', 'bench', '--data-dir', join(dir, 'etcd'),
      '--listen-client-urls', `http://127.0.0.1:${port}`, '--advertise-client-urls', `http://127.0.0.1:${port}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `bench=http://127.0.0.1:${peer}`,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise((r) => proc.once('exit', r));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await post(port, '/v3/kv/range', { key: b64('x') });
      return { port, stop };
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error('etcd did not start');
      }
      await sleep(100);
    }
  }
}

/**
 * A process's resident memory now (VmRSS), its peak (VmHWM), and now's parts, in MiB: anonymous (heap,
 * stacks, the runtime's and our allocations: what the process itself made) and file-backed (the
 * executable's and libraries' pages it touched: shared with every other process mapping the same file).
 */
export function rssMiB(pid) {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(s.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024, shmem: kb('RssShmem') / 1024 };
}

export const BUN = join(ROOT, 'node_modules', '.bin', 'bun');

/**
 * Compiles `source` into `<dir>/<name>` exactly as scripts/build-exe.mjs compiles ours (`bun build
 * --compile --bytecode --format=cjs --target=bun`, no transpiler cache): a runtime floor measured as
 * what ships is measured. Returns the executable, or `{ error }` with bun's last line.
 */
export function compileBunProgram(dir, name, source) {
  const entry = join(dir, `${name}.entry.ts`);
  const out = join(dir, name);
  writeFileSync(entry, source);
  const b = spawnSync(BUN, ['build', '--compile', '--bytecode', '--format=cjs', '--target=bun', entry, '--outfile', out], { encoding: 'utf8', env: { ...process.env, BUN_RUNTIME_TRANSPILER_CACHE_PATH: '0' } });
  return b.status === 0 ? { file: out } : { error: `bun build failed: ${(b.stderr || b.stdout).trim().split('\n').pop()}` };
}

/** The node: modules daemon/, shared/ and cmd/ import (grep "from 'node:"), for the floor that imports them. */
const FLANNELD_NODE_MODULES = ['path', 'fs', 'fs/promises', 'child_process', 'http', 'https', 'crypto', 'string_decoder', 'os', 'net', 'dgram'];

/**
 * The runtime floors, measured now beside our numbers: what each runtime holds before a line of ours
 * runs. `bun`: a program that only keeps its event loop alive, compiled into a temp dir exactly as
 * scripts/build-exe.mjs compiles flanneld (`bun build --compile --bytecode --format=cjs --target=bun`),
 * and the same program importing the node: modules flanneld imports (bun's code for them);
 * `node`: an idle `node <nodeFlags> -e` with the daemon's launcher flags. Each is left idle `settleMs`
 * (as the benches leave flanneld) and read like flanneld (rssMiB). A runtime that is not there (no
 * node_modules/.bin/bun, a failed compile) is a row saying so, not a failure. `wrap` prefixes each
 * command (e.g. ['ip', 'netns', 'exec', ns]) so that the floor runs where flanneld runs.
 */
export async function runtimeFloors({ nodeFlags = [], settleMs = 1500, wrap = [] } = {}) {
  const rows = [];
  const idle = 'setInterval(() => {}, 1 << 30);';
  const measure = async (label, cmd, args) => {
    const p = spawn(wrap[0] ?? cmd, [...wrap.slice(1), ...(wrap.length ? [cmd] : []), ...args], { stdio: 'ignore' });
    const exited = new Promise((r) => p.once('exit', r));
    await sleep(settleMs);
    // under `ip netns exec` the measured process is exec'd in place: same pid
    const m = p.exitCode === null && p.signalCode === null ? rssMiB(p.pid) : undefined;
    p.kill('SIGTERM');
    await exited;
    rows.push(m ? { label, ...m } : { label, missing: 'exited before it was measured' });
  };
  const dir = mkdtempSync(join(tmpdir(), 'bench-floor-'));
  try {
    const v = spawnSync(BUN, ['--version'], { encoding: 'utf8' });
    if (v.status === 0) {
      const bare = compileBunProgram(dir, 'bare', `${idle}\n`);
      if (bare.file) await measure(`bare bun ${v.stdout.trim()} compiled program (floor)`, bare.file, []);
      else rows.push({ label: 'bare bun compiled program (floor)', missing: bare.error });
      // the same program importing the node: modules flanneld imports: bun implements them in its own
      // executable, so their code pages (RssFile) are the runtime's, paid by whoever imports them
      const imports = FLANNELD_NODE_MODULES.map((m, i) => `import * as m${i} from 'node:${m}';`).join('\n');
      const withImports = compileBunProgram(dir, 'imports', `${imports}\n(globalThis as { keep?: unknown }).keep = [${FLANNELD_NODE_MODULES.map((_, i) => `m${i}`).join(', ')}];\n${idle}\n`);
      if (withImports.file) await measure(`bun ${v.stdout.trim()} compiled program importing flanneld's node: modules (floor)`, withImports.file, []);
    } else {
      rows.push({ label: 'bare bun compiled program (floor)', missing: `${BUN} does not run` });
    }
    await measure(`idle node ${process.version} ${nodeFlags.join(' ')} (floor)`.replace('  ', ' '), process.execPath, [...nodeFlags, '-e', idle]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** The q-quantile (0 < q ≤ 1) of xs, nearest rank; undefined for no samples. */
export function percentile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(s.length * q) - 1)];
}

/**
 * `ip monitor route` (in netns, or our own namespace): `seen` maps each dst routed over `dev` to the
 * time it first appeared; waitFor(dst) and waitCount(n, ms) resolve with such a time.
 */
export function monitorRoutes(dev, netns) {
  const child = spawn('ip', [...(netns ? ['-n', netns] : []), 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const seen = new Map();
  const waiters = new Map();
  const again = new Map(); // dst → resolve, for the next time dst is added (after a deletion)
  let buf = '';
  let onCount;
  child.stdout.on('data', (d) => {
    const now = performance.now();
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('Deleted') || !line.includes(`dev ${dev}`)) continue;
      const dst = line.split(' ')[0];
      again.get(dst)?.(now);
      again.delete(dst);
      if (!seen.has(dst)) seen.set(dst, now);
      waiters.get(dst)?.(now);
      waiters.delete(dst);
      onCount?.();
    }
  });
  return {
    seen,
    waitFor(dst) {
      if (seen.has(dst)) return Promise.resolve(seen.get(dst));
      return new Promise((r) => waiters.set(dst, r));
    },
    /** the time dst is next added (after a deletion); undefined when it is not within ms */
    waitAgain(dst, ms) {
      return new Promise((resolve) => {
        const t = setTimeout(() => {
          again.delete(dst);
          resolve(undefined);
        }, ms);
        again.set(dst, (now) => {
          clearTimeout(t);
          resolve(now);
        });
      });
    },
    waitCount(n, ms) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`only ${seen.size}/${n} routes after ${ms} ms`)), ms);
        onCount = () => {
          if (seen.size >= n) {
            clearTimeout(t);
            onCount = undefined;
            resolve(Math.max(...seen.values()));
          }
        };
        onCount();
      });
    },
    stop() {
      child.kill('SIGTERM');
    },
  };
}

// Synthetic vxlan peer i: subnet 10.(1 + i/256).(i%256).0/24 (a node's own pick never lands there),
// public IP 172.16.x.y, VTEP MAC 0a:02:00:00:x:y.
const hex = (n) => n.toString(16).padStart(2, '0');
export const peerNet = (i) => `10.${1 + (i >> 8)}.${i & 0xff}.0/24`;
export const peerIP = (i) => `172.16.${i >> 8}.${i & 0xff}`;
export const peerMac = (i) => `0a:02:00:00:${hex((i >> 8) & 0xff)}:${hex(i & 0xff)}`;

/**
 * What runs a launcher such as dist/bin/flanneld, for the tables: `node v22.x --flag ...` for a
 * script whose shebang names node (with its flags), `<interpreter> ...` for another shebang,
 * `self-contained executable` for a binary.
 */
export function runtimeOf(launcher) {
  const fd = openSync(launcher, 'r');
  const head = Buffer.alloc(512);
  const n = readSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  const first = head.subarray(0, n).toString('latin1').split('\n')[0];
  if (!first.startsWith('#!')) {
    // a bun-compiled executable answers as the bun it was built with when BUN_BE_BUN is set
    const v = spawnSync(launcher, ['--version'], { encoding: 'utf8', env: { ...process.env, BUN_BE_BUN: '1' }, timeout: 5000 });
    const version = v.status === 0 ? v.stdout.trim() : '';
    return /^\d+\.\d+\.\d+/.test(version) ? `self-contained executable (bun ${version} --compile --bytecode)` : 'self-contained executable';
  }
  const words = first.slice(2).trim().split(/\s+/).filter((w) => w !== '/usr/bin/env' && w !== '-S');
  const [interp, ...flags] = words;
  const name = interp?.split('/').pop() ?? '?';
  const version = name === 'node' ? spawnSync(interp, ['--version'], { encoding: 'utf8' }).stdout.trim() : '';
  return [name, version, ...flags].filter(Boolean).join(' ');
}

/** The node flags of a launcher such as dist/bin/flanneld (its shebang line); none for a binary. */
export function launcherFlags(launcher) {
  const r = runtimeOf(launcher);
  return r.startsWith('node ') ? r.split(' ').filter((a) => a.startsWith('--')) : [];
}
