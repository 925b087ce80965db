// Driver of scripts/bench/converge.sh (runs inside the underlay namespace, next to etcd).
// For each N: put N synthetic vxlan peer leases, start flanneld in the host namespace, time until the
// N-th peer route shows up in `ip monitor route`; then time EVENTS single lease puts to their route.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { monitorRoutes, peerIP, peerMac, peerNet, percentile } from './lib.mjs';

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

/** peer i as a lease (lib's synthetic peer; our host allocates from the same /8, never one of these) */
const peer = (i) => ({
  key: `${PREFIX}${peerNet(i).replace('/', '-')}`,
  net: peerNet(i),
  value: JSON.stringify({ PublicIP: peerIP(i), PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 100, VtepMAC: peerMac(i) } }),
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
    const mon = monitorRoutes('flannel.100', HOST);
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
    `| ${n} | ${converge.map((x) => x.toFixed(0)).join(', ')} | ${f(percentile(converge, 0.5))} | ${f(percentile(lat, 0.5))} | ${f(percentile(lat, 0.99))} | ${f(lat.length ? Math.max(...lat) : undefined)} |`,
  );
}
console.log(`\ntargets: 5000 peers <= 2000 ms; one event p99 <= 20 ms (${events} events per N)`);
