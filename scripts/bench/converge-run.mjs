// Driver of scripts/bench/converge.sh (runs inside the underlay namespace, next to etcd).
// For each N: put N synthetic vxlan peer leases, start flanneld in the host namespace, time until the
// N-th peer route shows up in `ip monitor route`; then time EVENTS single lease puts to their route.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';

const { values: o } = parseArgs({
  options: {
    'host-ns': { type: 'string' },
    'etcd-host': { type: 'string' },
    flanneld: { type: 'string' },
    dir: { type: 'string' },
    ns: { type: 'string', default: '1000 5000' },
    events: { type: 'string', default: '100' },
    runs: { type: 'string', default: '3' },
    'flanneld-args': { type: 'string', default: '' },
  },
});
const HOST = o['host-ns'];
const PREFIX = '/coreos.com/network/subnets/';
const etcd = new Etcd3({ hosts: 'http://127.0.0.1:2379' });

const hex = (n) => n.toString(16).padStart(2, '0');
/** peer i: subnet 10.(1 + i/256).(i%256).0/24 (our host allocates from the same /8, never one of these) */
const peer = (i) => ({
  key: `${PREFIX}10.${1 + (i >> 8)}.${i & 0xff}.0-24`,
  net: `10.${1 + (i >> 8)}.${i & 0xff}.0/24`,
  value: JSON.stringify({
    PublicIP: `172.16.${i >> 8}.${i & 0xff}`,
    PublicIPv6: null,
    BackendType: 'vxlan',
    BackendData: { VNI: 100, VtepMAC: `0a:02:00:00:${hex((i >> 8) & 0xff)}:${hex(i & 0xff)}` },
  }),
});

async function putPeers(from, to, leaseId) {
  const chunk = 250;
  for (let i = from; i < to; i += chunk) {
    const ps = [];
    for (let j = i; j < Math.min(to, i + chunk); j++) {
      const p = peer(j);
      ps.push(etcd.put(p.key).value(p.value).lease(leaseId).exec());
    }
    await Promise.all(ps);
  }
}

/** `ip monitor route` in the host namespace: resolves waiters when a route to a given dst appears. */
function monitorRoutes() {
  const child = spawn('ip', ['-n', HOST, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const seen = new Map(); // dst → time first seen
  const waiters = new Map();
  let buf = '';
  let onCount;
  child.stdout.on('data', (d) => {
    const now = performance.now();
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('Deleted') || !line.includes('dev flannel.100')) continue;
      const dst = line.split(' ')[0];
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
      child.kill();
    },
  };
}

function startFlanneld(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(`${dir}/state`, { recursive: true });
  const args = [
    'netns', 'exec', HOST, 'env', `FLANNELD_DATA_DIR=${dir}/state`, o.flanneld,
    `--etcd-endpoints=${o['etcd-host']}`, '--iface=eth0', `--subnet-file=${dir}/subnet.env`,
    ...o['flanneld-args'].split(' ').filter(Boolean),
  ];
  const child = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log += d.toString()));
  child.once('exit', () => writeFileSync(`${dir}/flanneld.log`, log));
  return { child, log: () => log };
}

async function stopFlanneld(f) {
  if (f.child.exitCode === null) {
    const exited = new Promise((r) => f.child.once('exit', r));
    f.child.kill('SIGTERM');
    const t = setTimeout(() => f.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
  await run('ip', ['-n', HOST, 'link', 'del', 'flannel.100']).catch(() => undefined);
}

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))));
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

const rows = [];
const events = Number(o.events);
for (const n of o.ns.split(/[ ,]+/).map(Number)) {
  const converge = [];
  const lat = [];
  for (let r = 0; r < Number(o.runs); r++) {
    await etcd.delete().prefix(PREFIX);
    const lease = etcd.lease(3600, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    await putPeers(0, n, leaseId);
    const mon = monitorRoutes();
    await new Promise((res) => setTimeout(res, 100)); // let the monitor subscribe (not a measurement)
    const t0 = performance.now();
    const f = startFlanneld(`${o.dir}/conv-${n}-${r}`);
    try {
      const tAll = await mon.waitCount(n, 60_000);
      converge.push(tAll - t0);
      // single events, only on the first run of each N
      if (r === 0) {
        // steady state: let the daemon finish start-up work (watch stream creation) first
        await new Promise((res) => setTimeout(res, 1000));
        for (let k = 0; k < events; k++) {
          const p = peer(n + k);
          const t1 = performance.now();
          await etcd.put(p.key).value(p.value).lease(leaseId).exec();
          const t2 = await mon.waitFor(p.net);
          lat.push(t2 - t1);
        }
      }
    } catch (err) {
      console.error(`N=${n} run ${r}: ${err.message}\nflanneld log tail:\n${f.log().split('\n').slice(-15).join('\n')}`);
      process.exitCode = 1;
    } finally {
      mon.stop();
      await stopFlanneld(f);
      await lease.revoke().catch(() => undefined);
    }
  }
  rows.push({ n, converge, lat });
  if (process.env.CONVERGE_DEBUG) console.error(`N=${n} event latencies: ${lat.map((x) => x.toFixed(1)).join(' ')}`);
}
etcd.close();

console.log('\n| peers N | start → all N routes (ms), runs | median | one event p50 (ms) | p99 (ms) | max (ms) |');
console.log('|---|---|---|---|---|---|');
for (const { n, converge, lat } of rows) {
  const f = (x) => (x === undefined ? '-' : x.toFixed(1));
  console.log(
    `| ${n} | ${converge.map((x) => x.toFixed(0)).join(', ')} | ${f(pct(converge, 50))} | ${f(pct(lat, 50))} | ${f(pct(lat, 99))} | ${f(lat.length ? Math.max(...lat) : undefined)} |`,
  );
}
console.log(`\ntargets: 5000 peers <= 2000 ms; one event p99 <= 20 ms (${events} events per N)`);
