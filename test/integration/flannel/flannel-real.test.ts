// The built dist/bin/flannel delegating to real bridge + host-local inside netns hosts made here:
// the Go reference plugins (/usr/lib/cni) and ours (dist/bin), mixed both ways. Each case has its own
// host netns (where cni0 and the veth host ends live) and pod netns; the root namespace is checked
// unchanged at the end.
import { beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { DIST, GO_CNI, ensureBuilt, guardRootNetns, hasGoPlugins, normalizeResult, SUBNET_ENV, tempDir, writeSubnetEnv } from './helpers.js';
import { runPluginSync } from '../../helpers/run-plugin.js';

let work: string;
/** CNI_PATH with our flannel first, then the Go bridge/host-local */
let GO_PATH: string;
/** CNI_PATH of ours only */
const OURS_PATH = DIST;
const FLANNEL = join(DIST, 'flannel');

beforeAll(() => {
  ensureBuilt('flannel', 'bridge', 'host-local');
  work = tempDir('flannel-real');
  const flOnly = join(work, 'flannel-bin');
  mkdirSync(flOnly);
  symlinkSync(FLANNEL, join(flOnly, 'flannel'));
  GO_PATH = `${flOnly}:${GO_CNI}`;
});
guardRootNetns(() => work);

let seq = 0;
interface Node {
  host: Netns;
  pod: Netns;
  dir: string;
  conf: string;
  env(cmd: string, cniPath: string): Record<string, string>;
  ipamFiles(): string[];
  scratch: string;
}

function node(envText = SUBNET_ENV.v4(), cniVersion = '0.3.1'): Node {
  const dir = join(work, `n${++seq}`);
  mkdirSync(dir);
  const host = createNetns('flh');
  const pod = createNetns('flp');
  const subnetFile = writeSubnetEnv(dir, envText);
  const conf = JSON.stringify({
    cniVersion,
    name: 'cbr0',
    type: 'flannel',
    subnetFile,
    dataDir: join(dir, 'flannel'),
    delegate: { hairpinMode: true, isDefaultGateway: true },
    ipam: { dataDir: join(dir, 'ipam') },
  });
  return {
    host,
    pod,
    dir,
    conf,
    scratch: join(dir, 'flannel', 'ctr-1'),
    env: (cmd, cniPath) => ({ CNI_COMMAND: cmd, CNI_CONTAINERID: 'ctr-1', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: cniPath }),
    ipamFiles: () => (existsSync(join(dir, 'ipam', 'cbr0')) ? readdirSync(join(dir, 'ipam', 'cbr0')).filter((f) => /^[0-9a-f.:]+$/.test(f)) : []),
  };
}

const add = (n: Node, cniPath: string) => runPluginSync(FLANNEL, n.env('ADD', cniPath), n.conf, n.host);
const del = (n: Node, cniPath: string) => runPluginSync(FLANNEL, n.env('DEL', cniPath), n.conf, n.host);
const links = (ns: Netns) => JSON.parse(ns.exec(['ip', '-j', 'link']).stdout) as Array<{ ifname: string; mtu: number }>;
const addrs = (ns: Netns, dev: string) =>
  (JSON.parse(ns.exec(['ip', '-j', 'addr', 'show', 'dev', dev]).stdout)[0].addr_info as Array<{ local: string; prefixlen: number; scope: string }>)
    .filter((a) => a.scope === 'global')
    .map((a) => `${a.local}/${a.prefixlen}`);
const vethCount = (ns: Netns) => links(ns).filter((l) => l.ifname.startsWith('veth')).length;

/** What the Go flannel would do on DEL with its scratch file: exec its type from CNI_PATH with the saved bytes. */
function goFlannelDel(n: Node): void {
  const bytes = readFileSync(n.scratch, 'utf8');
  const r = runPluginSync(join(GO_CNI, 'bridge'), n.env('DEL', GO_CNI), bytes, n.host);
  expect(r.code, r.stdout).toBe(0);
  rmSync(n.scratch);
}

/** What the Go flannel would do on ADD: save the upstream delegate bytes, exec the Go bridge with them. */
function goFlannelAdd(n: Node, bytes: string): string {
  mkdirSync(join(n.dir, 'flannel'), { recursive: true, mode: 0o700 });
  writeFileSync(n.scratch, bytes, { mode: 0o600 });
  const r = runPluginSync(join(GO_CNI, 'bridge'), n.env('ADD', GO_CNI), bytes, n.host);
  expect(r.code, r.stdout).toBe(0);
  return r.stdout;
}

function expectPodWired(n: Node, ip: string, gw: string): void {
  expect(addrs(n.pod, 'eth0')).toContain(ip);
  expect(links(n.pod).find((l) => l.ifname === 'eth0')?.mtu).toBe(1450);
  expect(addrs(n.host, 'cni0')).toContain(gw);
  const routes = n.pod.exec(['ip', 'route']).stdout;
  expect(routes).toContain(`default via ${gw.split('/')[0]} dev eth0`);
  expect(routes).toContain(`10.244.0.0/16 via ${gw.split('/')[0]} dev eth0`);
  expect(n.pod.exec(['ping', '-c', '1', '-W', '2', gw.split('/')[0]!], { allowFail: true }).status).toBe(0);
}

function expectCleaned(n: Node): void {
  expect(vethCount(n.host)).toBe(0);
  expect(links(n.pod).map((l) => l.ifname)).toEqual(['lo']);
  expect(n.ipamFiles()).toEqual([]);
}

const CHAINS = [
  ['Go bridge + Go host-local', () => GO_PATH],
  ['our bridge + our host-local', () => OURS_PATH],
] as const;

describe.skipIf(!canUseNetns || !hasGoPlugins)('flannel → real bridge + host-local in netns', () => {
  describe.each(CHAINS)('%s', (_label, cniPath) => {
    it('IPv4 lifecycle: pod wired, ping to the gateway, DEL cleans, second DEL is a no-op', () => {
      const n = node();
      const r = add(n, cniPath());
      expect(r.code, r.stdout).toBe(0);
      const res = JSON.parse(r.stdout);
      expect(res.cniVersion).toBe('0.3.1');
      expect(res.interfaces.map((i: { name: string }) => i.name)).toEqual(['cni0', expect.stringMatching(/^veth[0-9a-f]{8}$/), 'eth0']);
      expect(res.ips).toEqual([{ version: '4', interface: 2, address: '10.244.1.2/24', gateway: '10.244.1.1' }]);
      expect(res.routes).toEqual([{ dst: '10.244.0.0/16' }, { dst: '0.0.0.0/0', gw: '10.244.1.1' }]);
      expectPodWired(n, '10.244.1.2/24', '10.244.1.1/24');
      expect(n.ipamFiles()).toEqual(['10.244.1.2']);
      expect(readFileSync(n.scratch, 'utf8')).toContain('"ranges":[[{"subnet":"10.244.1.0/24"}]]');
      const d = del(n, cniPath());
      expect(d.code, d.stdout).toBe(0);
      expectCleaned(n);
      expect(existsSync(n.scratch)).toBe(false);
      expect(del(n, cniPath()).code).toBe(0);
    });

    it('dual stack: two addresses, v4 then v6', () => {
      const n = node(SUBNET_ENV.dual(), '1.0.0');
      const r = add(n, cniPath());
      expect(r.code, r.stdout).toBe(0);
      const res = JSON.parse(r.stdout);
      expect(res.ips.map((i: { address: string }) => i.address)).toEqual(['10.244.1.2/24', 'fd00:10:244:1::2/64']);
      expect(addrs(n.pod, 'eth0')).toEqual(expect.arrayContaining(['10.244.1.2/24', 'fd00:10:244:1::2/64']));
      expect(addrs(n.host, 'cni0')).toEqual(expect.arrayContaining(['10.244.1.1/24', 'fd00:10:244:1::1/64']));
      expect(n.pod.exec(['ip', '-6', 'route']).stdout).toContain('fd00:10:244::/56 via fd00:10:244:1::1');
      expect(del(n, cniPath()).code).toBe(0);
      expectCleaned(n);
    });
  });

  it('our flannel → Go bridge prints what the Go bridge prints for the same delegate conf (modulo MACs and veth names)', () => {
    const ours = node();
    const r = add(ours, GO_PATH);
    expect(r.code, r.stdout).toBe(0);
    // the Go flannel prints its delegate's result: run the Go bridge directly with the same bytes elsewhere
    const twin = node();
    const bytes = readFileSync(ours.scratch, 'utf8').replace(join(ours.dir, 'ipam'), join(twin.dir, 'ipam'));
    const direct = goFlannelAdd(twin, bytes);
    expect(normalizeResult(r.stdout)).toEqual(normalizeResult(direct));
  });

  it('our flannel + our chain prints what flannel + the Go chain prints (modulo MACs and veth names)', () => {
    const a = node();
    const b = node();
    const ra = add(a, OURS_PATH);
    const rb = add(b, GO_PATH);
    expect(ra.code, ra.stdout).toBe(0);
    expect(normalizeResult(ra.stdout)).toEqual(normalizeResult(rb.stdout));
  });

  describe.each(CHAINS)('cross DEL with %s', (_label, cniPath) => {
    it('ADD by our flannel, DEL as the Go flannel would (Go bridge with the saved bytes) cleans it', () => {
      const n = node();
      expect(add(n, cniPath()).code).toBe(0);
      expect(vethCount(n.host)).toBe(1);
      goFlannelDel(n);
      expectCleaned(n);
    });

    it('ADD as the Go flannel would (saved bytes + Go bridge), DEL by our flannel cleans it', () => {
      const n = node();
      const bytes = `{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"dataDir":"${join(n.dir, 'ipam')}","ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`;
      goFlannelAdd(n, bytes);
      expectPodWired(n, '10.244.1.2/24', '10.244.1.1/24');
      const d = del(n, cniPath());
      expect(d.code, d.stdout).toBe(0);
      expectCleaned(n);
      expect(existsSync(n.scratch)).toBe(false);
    });
  });
});
