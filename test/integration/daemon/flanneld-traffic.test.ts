// The built flanneld's traffic manager in iptables mode (Go's pkg/trafficmngr/iptables, the blackhole route of main.go) on a real kernel, inside a
// network namespace of the test's own (the daemon runs there, so every iptables rule, route and
// address it makes is in that namespace; the root namespace is never touched):
// - --ip-masq: `iptables -S` of FLANNEL-POSTRTG / POSTROUTING / FLANNEL-FWD / FORWARD equal the
//   golden lines of Go's masqRules/forwardRules; subnet.env says FLANNEL_IPMASQ=true; a deleted rule is back within the
//   resync period (--iptables-resync=1); the rules stay after SIGTERM;
// - a "pod" netns behind the daemon's netns reaches a server outside the Network, which sees the
//   daemon netns' address as the source (masqueraded) and has no route back to the pod;
// - --ip-blackhole-route: the route is there and comes back; a restart on another Network recycles
//   the previous run's masq rules (only the new set remains);
// - nftables mode (EnableNFTables): the two tables with Go's rules (pkg/trafficmngr/nftables), the iptables chains of a
//   previous iptables-mode run removed.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { buildFlanneld, createDaemonNetns, daemonRunner, until } from './daemon-harness.js';

const config = (network: string, nft = false) => `{"Network":"${network}","SubnetLen":24,${nft ? '"EnableNFTables":true,' : ''}"Backend":{"Type":"alloc"}}`;

/** Go's masqRules as `iptables -t nat -S FLANNEL-POSTRTG` prints it */
const goldenPostrtg = (net: string, pod: string) => [
  '-N FLANNEL-POSTRTG',
  '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
  `-A FLANNEL-POSTRTG -s ${pod} -d ${net} -m comment --comment "flanneld masq" -j RETURN`,
  `-A FLANNEL-POSTRTG -s ${net} -d ${pod} -m comment --comment "flanneld masq" -j RETURN`,
  `-A FLANNEL-POSTRTG ! -s ${net} -d ${pod} -m comment --comment "flanneld masq" -j RETURN`,
  `-A FLANNEL-POSTRTG -s ${net} ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
  `-A FLANNEL-POSTRTG ! -s ${net} -d ${net} -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
];
const GOLDEN_POSTROUTING = ['-P POSTROUTING ACCEPT', '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG'];
const goldenFwd = (net: string) => [
  '-N FLANNEL-FWD',
  `-A FLANNEL-FWD -s ${net} -m comment --comment "flanneld forward" -j ACCEPT`,
  `-A FLANNEL-FWD -d ${net} -m comment --comment "flanneld forward" -j ACCEPT`,
];
const GOLDEN_FORWARD = ['-P FORWARD ACCEPT', '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD'];

describe.skipIf(!hasEtcd || !canUseNetns)('flanneld (built): traffic manager, iptables mode', () => {
  let ns: Netns;
  let etcd: TestEtcd;
  let dir: string;
  const daemons = daemonRunner(() => ns);
  const extraNs: Netns[] = [];
  const servers: ChildProcess[] = [];

  /** `iptables <args>` in the daemon's namespace, as lines */
  const ipt = (...args: string[]): string[] => ns.exec(['iptables', ...args]).stdout.split('\n').filter((l) => l !== '');
  const blackholes = (): string[] => (JSON.parse(ns.exec(['ip', '-4', '-json', 'route', 'show', 'type', 'blackhole']).stdout) as Array<{ dst: string }>).map((r) => r.dst);

  const start = async (prefix: string, network: string, args: string[], file = join(dir, `${prefix.slice(1)}.env`), nft = false) => {
    etcd.ctl(['put', `${prefix}/config`, config(network, nft)]);
    const d = daemons.run(['--etcd-endpoints', etcd.endpoint, '--etcd-prefix', prefix, '--iface', 'ext0', '--subnet-file', file, '--data-dir', join(dir, 'data'), ...args]);
    await until(() => d.stderr().includes('Running backend.') || !d.running(), 'the backend to run');
    expect(d.running(), d.stderr()).toBe(true);
    const env = readFileSync(file, 'utf8');
    const m = /FLANNEL_SUBNET=(\d+\.\d+\.\d+)\.1\/24/.exec(env);
    if (!m) throw new Error(`no FLANNEL_SUBNET in ${env}`);
    return { d, file, env, pod: `${m[1]}.0/24`, podPrefix: m[1]! };
  };

  beforeAll(async () => {
    buildFlanneld();
    ns = createDaemonNetns('trf');
    etcd = await startEtcd({ netns: ns.name });
    dir = mkdtempSync(join(tmpdir(), `flanneld-traffic-${process.pid}-`));
  });
  afterEach(async () => {
    await daemons.killAll();
    for (const s of servers.splice(0)) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
    for (const n of extraNs.splice(0)) n.delete();
    // our namespace only: what the daemon left (no cleanup on exit, by design)
    for (const table of ['nat', 'filter']) {
      ns.exec(['iptables', '-t', table, '-F']);
      ns.exec(['iptables', '-t', table, '-X']);
    }
    ns.exec(['ip', 'route', 'flush', 'table', 'main', 'type', 'blackhole']);
    for (const t of ['ip flannel-ipv4', 'ip6 flannel-ipv6']) ns.exec(['nft', 'delete', 'table', ...t.split(' ')], { allowFail: true });
  });
  afterAll(async () => {
    await etcd?.stop();
    ns?.delete();
    cleanupNetns();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('--ip-masq: the golden rules, FLANNEL_IPMASQ=true, a deleted rule back within the resync period, rules kept on exit', async () => {
    const { d, env, pod } = await start('/t1', '10.244.0.0/16', ['--ip-masq', '--iptables-resync=1']);
    expect(env).toMatch(/\nFLANNEL_IPMASQ=true\n$/);
    expect(ipt('-t', 'nat', '-S', 'FLANNEL-POSTRTG')).toEqual(goldenPostrtg('10.244.0.0/16', pod));
    expect(ipt('-t', 'nat', '-S', 'POSTROUTING')).toEqual(GOLDEN_POSTROUTING);
    expect(ipt('-t', 'filter', '-S', 'FLANNEL-FWD')).toEqual(goldenFwd('10.244.0.0/16'));
    expect(ipt('-t', 'filter', '-S', 'FORWARD')).toEqual(GOLDEN_FORWARD);

    // delete a masq rule and the FORWARD jump: both are back within a period (1 s) plus the work
    ipt('-t', 'nat', '-D', 'FLANNEL-POSTRTG', '-s', '10.244.0.0/16', '!', '-d', '224.0.0.0/4', '-m', 'comment', '--comment', 'flanneld masq', '-j', 'MASQUERADE', '--random-fully');
    ipt('-t', 'filter', '-D', 'FORWARD', '-m', 'comment', '--comment', 'flanneld forward', '-j', 'FLANNEL-FWD');
    const t0 = Date.now();
    await until(
      () => JSON.stringify(ipt('-t', 'nat', '-S', 'FLANNEL-POSTRTG')) === JSON.stringify(goldenPostrtg('10.244.0.0/16', pod)) && JSON.stringify(ipt('-t', 'filter', '-S', 'FORWARD')) === JSON.stringify(GOLDEN_FORWARD),
      'the deleted rules to come back',
      4000,
      50,
    );
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(d.stderr()).toContain('Some iptables rules are missing; deleting and recreating rules');
    expect(ipt('-t', 'nat', '-S', 'POSTROUTING')).toEqual(GOLDEN_POSTROUTING);

    expect(await daemons.stop(d)).toBe(0);
    expect(ipt('-t', 'nat', '-S', 'FLANNEL-POSTRTG')).toEqual(goldenPostrtg('10.244.0.0/16', pod));
    expect(ipt('-t', 'filter', '-S', 'FLANNEL-FWD')).toEqual(goldenFwd('10.244.0.0/16'));
  });

  it('without --ip-masq and with --iptables-forward-rules=false: no FLANNEL chains, FLANNEL_IPMASQ=false', async () => {
    const { d, env } = await start('/t2', '10.244.0.0/16', ['--iptables-forward-rules=false']);
    expect(env).toMatch(/\nFLANNEL_IPMASQ=false\n$/);
    expect(ipt('-t', 'nat', '-S').filter((l) => l.includes('FLANNEL'))).toEqual([]);
    expect(ipt('-t', 'filter', '-S').filter((l) => l.includes('FLANNEL'))).toEqual([]);
    expect(await daemons.stop(d)).toBe(0);
  });

  it('traffic from a pod address to outside the Network leaves masqueraded', async () => {
    const { d, podPrefix } = await start('/t3', '10.244.0.0/16', ['--ip-masq']);
    const t0 = Date.now();
    // pod netns ── vp0/pod0 ── daemon netns (router) ── ho0/o0 ── outside netns (no route back to 10.244/16)
    const podNs = createNetns('pod');
    const outNs = createNetns('out');
    extraNs.push(podNs, outNs);
    ns.exec(['ip', 'link', 'add', 'vp0', 'type', 'veth', 'peer', 'name', 'pod0', 'netns', podNs.name]);
    ns.exec(['ip', 'link', 'add', 'ho0', 'type', 'veth', 'peer', 'name', 'o0', 'netns', outNs.name]);
    ns.exec(['ip', 'addr', 'add', `${podPrefix}.1/24`, 'dev', 'vp0']);
    ns.exec(['ip', 'addr', 'add', '192.168.78.1/24', 'dev', 'ho0']);
    ns.exec(['ip', 'link', 'set', 'vp0', 'up']);
    ns.exec(['ip', 'link', 'set', 'ho0', 'up']);
    ns.exec(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']); // this namespace's own forwarding switch
    podNs.exec(['ip', 'addr', 'add', `${podPrefix}.2/24`, 'dev', 'pod0']);
    podNs.exec(['ip', 'link', 'set', 'pod0', 'up']);
    podNs.exec(['ip', 'route', 'add', 'default', 'via', `${podPrefix}.1`]);
    outNs.exec(['ip', 'addr', 'add', '192.168.78.2/24', 'dev', 'o0']);
    outNs.exec(['ip', 'link', 'set', 'o0', 'up']);
    expect(outNs.exec(['ip', 'route', 'get', `${podPrefix}.2`], { allowFail: true }).status).not.toBe(0);

    // a TCP server outside prints the address each connection comes from
    const server = spawn('ip', ['netns', 'exec', outNs.name, process.execPath, '-e',
      "require('net').createServer((s) => { process.stdout.write(s.remoteAddress + '\\n'); s.end('ok'); }).listen(7077, '192.168.78.2', () => process.stdout.write('up\\n'))"], { stdio: ['ignore', 'pipe', 'pipe'] });
    servers.push(server);
    let seen = '';
    server.stdout!.on('data', (c: Buffer) => (seen += c.toString()));
    await until(() => seen.includes('up\n'), 'the server outside', 4000, 10);
    const client = podNs.exec([process.execPath, '-e',
      "const s = require('net').connect(7077, '192.168.78.2'); let r = ''; s.on('data', (c) => (r += c)); s.on('end', () => { process.stdout.write(r); process.exit(0); }); s.on('error', (e) => { console.error(e.message); process.exit(1); }); setTimeout(() => process.exit(2), 3000);"], { allowFail: true });
    expect(client.status, client.stderr).toBe(0);
    expect(client.stdout).toBe('ok');
    await until(() => seen.split('\n').length > 2, 'the connection at the server', 2000, 10);
    expect(seen.split('\n')[1]).toBe('192.168.78.1'); // masqueraded, not 10.244.x.2
    // and it was our MASQUERADE rule that did it (-v shows the counters: -c packets bytes)
    const masqRule = ipt('-t', 'nat', '-v', '-S', 'FLANNEL-POSTRTG').find((l) => l.includes('! -d 224.0.0.0/4'))!;
    expect(Number(/ -c (\d+) /.exec(masqRule)![1])).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await daemons.stop(d)).toBe(0);
  });

  it('--ip-blackhole-route: the route is added and comes back; a restart on another Network recycles the old masq rules', async () => {
    const first = await start('/t4', '10.244.0.0/16', ['--ip-masq', '--ip-blackhole-route', '--iptables-resync=1']);
    await until(() => blackholes().includes(first.pod), 'the blackhole route', 3000, 50);
    ns.exec(['ip', 'route', 'del', 'blackhole', first.pod]);
    await until(() => blackholes().includes(first.pod), 'the blackhole route back', 4000, 50);
    expect(first.d.stderr()).toContain(`Added blackhole route for ${first.pod}`);
    expect(await daemons.stop(first.d)).toBe(0);
    expect(blackholes()).toEqual([first.pod]); // left in place on exit

    // same subnet.env, another Network: the previous run's rules go, only the new set remains
    const second = await start('/t4b', '10.245.0.0/16', ['--ip-masq', '--iptables-resync=1'], first.file);
    expect(second.d.stderr()).toContain(
      `Current network or subnet (10.245.0.0/16, ${second.pod}) is not equal to previous one (10.244.0.0/16, ${first.pod}), trying to recycle old iptables rules`,
    );
    expect(ipt('-t', 'nat', '-S', 'FLANNEL-POSTRTG')).toEqual(goldenPostrtg('10.245.0.0/16', second.pod));
    expect(ipt('-t', 'nat', '-S', 'POSTROUTING')).toEqual(GOLDEN_POSTROUTING);
    expect(ipt('-t', 'filter', '-S', 'FLANNEL-FWD')).toEqual(goldenFwd('10.245.0.0/16'));
    expect(ipt('-t', 'filter', '-S', 'FORWARD')).toEqual(GOLDEN_FORWARD);
    expect(await daemons.stop(second.d)).toBe(0);
  });

  it('nftables mode: Go\'s tables and rules; a previous iptables-mode run\'s chains are removed', async () => {
    const first = await start('/t5', '10.244.0.0/16', ['--ip-masq']);
    expect(await daemons.stop(first.d)).toBe(0);
    expect(ipt('-t', 'nat', '-S', 'POSTROUTING')).toEqual(GOLDEN_POSTROUTING);
    const { d, pod } = await start('/t5', '10.244.0.0/16', ['--ip-masq'], first.file, true);
    expect(pod).toBe(first.pod); // same node, same lease
    expect(d.stderr()).toContain('Starting flannel in nftables mode...');
    expect(ns.exec(['nft', 'list', 'table', 'ip', 'flannel-ipv4']).stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '')).toEqual([
      'table ip flannel-ipv4 {',
      'chain postrtg {',
      'type nat hook postrouting priority srcnat; policy accept;',
      'meta mark 0x00004000 return',
      `ip saddr ${pod} ip daddr 10.244.0.0/16 return`,
      `ip saddr 10.244.0.0/16 ip daddr ${pod} return`,
      `ip saddr != ${pod} ip daddr 10.244.0.0/16 return`,
      'ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random',
      'ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random',
      '}',
      'chain forward {',
      'type filter hook forward priority filter; policy accept;',
      'ip saddr 10.244.0.0/16 accept',
      'ip daddr 10.244.0.0/16 accept',
      '}',
      '}',
    ]);
    expect(ns.exec(['nft', 'list', 'table', 'ip6', 'flannel-ipv6']).status).toBe(0);
    expect(ipt('-t', 'nat', '-S').filter((l) => l.includes('FLANNEL'))).toEqual([]);
    expect(ipt('-t', 'filter', '-S').filter((l) => l.includes('FLANNEL'))).toEqual([]);
    expect(await daemons.stop(d)).toBe(0);
    expect(ns.exec(['nft', 'list', 'table', 'ip', 'flannel-ipv4']).stdout).toContain('masquerade fully-random'); // kept on exit
  });
});
