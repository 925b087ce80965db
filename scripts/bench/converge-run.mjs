// Driver of scripts/bench/converge.sh (runs inside the underlay namespace, next to etcd), once per
// kernel adapter (FLANNEL_KERNEL=iproute2 and netlink, when shared/kernel/create.ts chooses one):
//   - start with N existing: put N synthetic vxlan peer leases, start flanneld in the host namespace,
//     time until the N-th peer route shows up in `ip monitor route`; then time EVENTS single lease
//     puts to their route; then delete one peer route with `ip` and time its return (repair);
//   - leases put while running: flanneld starts with 0 peers, then PUTS leases are put as fast as the
//     client goes; the time the puts take vs the time until all PUTS routes are programmed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { launcherFlags, monitorRoutes, peerIP, peerMac, peerNet, percentile, ROOT, rssMiB, runtimeFloors, runtimeOf } from './lib.mjs';

const { values: o } = parseArgs({
  options: {
    'host-ns': { type: 'string' },
    'etcd-host': { type: 'string' },
    flanneld: { type: 'string' },
    dir: { type: 'string' },
    ns: { type: 'string', default: '1000 5000' },
    events: { type: 'string', default: '100' },
    runs: { type: 'string', default: '3' },
    puts: { type: 'string', default: '5000' },
    'put-runs': { type: 'string', default: '2' },
    kernels: { type: 'string', default: '' },
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

async function putPeers(from, to, leaseId, chunk = 250) {
  for (let i = from; i < to; i += chunk) {
    const ps = [];
    for (let j = i; j < Math.min(to, i + chunk); j++) {
      const p = peer(j);
      ps.push(etcd.put(p.key).value(p.value).lease(leaseId).exec());
    }
    await Promise.all(ps);
  }
}

function startFlanneld(dir, kernel) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(`${dir}/state`, { recursive: true });
  const args = [
    'netns', 'exec', HOST, 'env', `FLANNELD_DATA_DIR=${dir}/state`, ...(kernel ? [`FLANNEL_KERNEL=${kernel}`] : []),
    // FLANNELD_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof": the bundle under node with the
    // launcher's flags and these (profiling, heap snapshots)
    ...(process.env.FLANNELD_NODE_FLAGS
      ? [process.execPath, ...launcherFlags(o.flanneld), ...process.env.FLANNELD_NODE_FLAGS.split(' ').filter(Boolean), `${o.flanneld}.mjs`]
      : [o.flanneld]),
    `--etcd-endpoints=${o['etcd-host']}`, '--iface=eth0', `--subnet-file=${dir}/subnet.env`,
    ...o['flanneld-args'].split(' ').filter(Boolean),
  ];
  const child = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log += d.toString()));
  child.once('exit', () => {
    writeFileSync(`${dir}/flanneld.log`, log);
    if (process.env.CONVERGE_KEEP_LOGS) writeFileSync(`${process.env.CONVERGE_KEEP_LOGS}-${dir.split('/').pop()}.log`, log);
  });
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

const tail = (log) => log.split('\n').filter(Boolean).slice(-15).join('\n');
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/** until flanneld has its lease (subnet.env written) and watches for peers; rejects if it exits */
async function waitReady(f, dir, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(existsSync(`${dir}/subnet.env`) && f.log().includes('Watching for new subnet leases'))) {
    if (f.child.exitCode !== null) throw new Error('flanneld exited');
    if (Date.now() > deadline) throw new Error('flanneld not ready');
    await sleep(20);
  }
}

// the kernel adapters to compare (flanneld picks one through FLANNEL_KERNEL, shared/kernel/create.ts)
const kernels = o.kernels ? o.kernels.split(/[ ,]+/) : ['iproute2', 'netlink'];
const events = Number(o.events);
const puts = Number(o.puts);
const rows = [];
const putRows = [];

for (const kernel of kernels) {
  const kname = kernel || 'iproute2 (default)';
  for (const n of o.ns.split(/[ ,]+/).filter(Boolean).map(Number)) {
    const converge = [];
    const lat = [];
    let repair;
    let rss;
    for (let r = 0; r < Number(o.runs); r++) {
      await etcd.delete().prefix(PREFIX);
      const lease = etcd.lease(3600, { autoKeepAlive: false });
      const leaseId = await lease.grant();
      await putPeers(0, n, leaseId);
      const mon = monitorRoutes('flannel.100', HOST);
      await sleep(100); // let the monitor subscribe (not a measurement)
      const t0 = performance.now();
      const f = startFlanneld(`${o.dir}/conv-${kernel}-${n}-${r}`, kernel);
      try {
        const tAll = await mon.waitCount(n, 60_000);
        converge.push(tAll - t0);
        // single events and the repair, only on the first run of each N
        if (r === 0) {
          // steady state: let the daemon finish start-up work (watch stream creation) first
          await sleep(1000);
          for (let k = 0; k < events; k++) {
            const p = peer(n + k);
            const t1 = performance.now();
            await etcd.put(p.key).value(p.value).lease(leaseId).exec();
            const t2 = await mon.waitFor(p.net);
            lat.push(t2 - t1);
          }
          rss = rssMiB(f.child.pid);
          // repair: one peer's route deleted behind flanneld's back; n/a when not back within 5 s
          const victim = peerNet(Math.floor(n / 2));
          const back = mon.waitAgain(victim, 5000);
          const t3 = performance.now();
          await run('ip', ['-n', HOST, 'route', 'del', victim, 'dev', 'flannel.100']);
          const t4 = await back;
          repair = t4 === undefined ? undefined : t4 - t3;
        }
      } catch (err) {
        console.error(`${kname} N=${n} run ${r}: ${err.message}\nflanneld log tail:\n${tail(f.log())}`);
        process.exitCode = 1;
      } finally {
        mon.stop();
        await stopFlanneld(f);
        await lease.revoke().catch(() => undefined);
      }
    }
    rows.push({ kname, n, converge, lat, repair, rss });
    if (process.env.CONVERGE_DEBUG) console.error(`${kname} N=${n} event latencies: ${lat.map((x) => x.toFixed(1)).join(' ')}`);
  }

  // leases put while running: flanneld up with 0 peers, then `puts` leases as fast as the client goes
  for (let r = 0; puts > 0 && r < Number(o['put-runs']); r++) {
    await etcd.delete().prefix(PREFIX);
    const lease = etcd.lease(3600, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    const dir = `${o.dir}/puts-${kernel}-${r}`;
    const mon = monitorRoutes('flannel.100', HOST);
    const f = startFlanneld(dir, kernel);
    try {
      await waitReady(f, dir);
      await sleep(500); // the watch stream is open (not a measurement)
      const t0 = performance.now();
      await putPeers(0, puts, leaseId, 64);
      const tPuts = performance.now() - t0;
      const tAll = (await mon.waitCount(puts, 120_000)) - t0;
      putRows.push({ kname, puts: tPuts, all: tAll, rss: rssMiB(f.child.pid) });
    } catch (err) {
      const inKernel = spawnSync('ip', ['-n', HOST, 'route', 'show', 'dev', 'flannel.100'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).length;
      console.error(`${kname} puts run ${r}: ${err.message} (${inKernel} routes in the kernel)\nflanneld log tail:\n${tail(f.log())}`);
      process.exitCode = 1;
    } finally {
      mon.stop();
      await stopFlanneld(f);
      await lease.revoke().catch(() => undefined);
    }
  }
}
etcd.close();
// the runtimes' own share, measured now (lib.mjs runtimeFloors): node with the daemon's launcher flags
const floors = await runtimeFloors({ nodeFlags: launcherFlags(join(ROOT, 'dist', 'bin', 'flanneld')) });

const fx = (x, d = 1) => (x === undefined ? '-' : x.toFixed(d));
console.log(`\nflanneld runtime: ${runtimeOf(o.flanneld)}`);
const mem = (m) => (m ? `${fx(m.rss)} | ${fx(m.anon)} / ${fx(m.file)}` : '- | -');
console.log(`load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log('\n| runtime floor | RSS (MiB) | anon / file |');
console.log('|---|---|---|');
for (const f of floors) console.log(`| ${f.label} | ${f.missing ? `${f.missing} | -` : mem(f)} |`);
console.log('\n| kernel | peers N | start → all N routes (ms), runs | median | one event p50 (ms) | p99 (ms) | max (ms) | deleted route back (ms) | RSS after (MiB) | anon / file |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const { kname, n, converge, lat, repair, rss } of rows) {
  console.log(
    `| ${kname} | ${n} | ${converge.map((x) => x.toFixed(0)).join(', ')} | ${fx(percentile(converge, 0.5))} | ${fx(percentile(lat, 0.5))} | ${fx(percentile(lat, 0.99))} | ${fx(lat.length ? Math.max(...lat) : undefined)} | ${repair === undefined ? 'n/a (not within 5 s)' : fx(repair)} | ${mem(rss)} |`,
  );
}
if (putRows.length > 0) {
  console.log(`\n| kernel | ${puts} leases put while running: puts took (ms) | all routes (ms) | ratio | RSS after (MiB) | anon / file |`);
  console.log('|---|---|---|---|---|---|');
  for (const p of putRows) console.log(`| ${p.kname} | ${p.puts.toFixed(0)} | ${p.all.toFixed(0)} | ${(p.all / p.puts).toFixed(2)}× | ${mem(p.rss)} |`);
}
console.log(`\ntargets: 5000 peers <= 1000 ms from start; one event p99 <= 5 ms; deleted route back <= 1000 ms; puts while running <= 1.2× the puts (${events} events per N)`);
