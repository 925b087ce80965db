// The built dist/bin/cnitool driving real chains inside netns hosts made here: the Go reference plugins
// (bridge + host-local + portmap) and our flannel; prevResult injection (seen through the Go bridge's
// CHECK), the libcni cache, reverse DEL, GC and STATUS. cnitool itself runs inside the host netns
// (ip netns exec), so the bridge and the iptables rules land there.
import { beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { DIST_BIN, GO_CNI_BIN, ROOT } from '../../helpers/paths.js';
import { ensureBuilt, guardRootNetns, hasGoPlugins, SUBNET_ENV, tempDir, writeSubnetEnv } from '../flannel/helpers.js';

const CNITOOL = join(DIST_BIN, 'cnitool');
let work: string;

beforeAll(() => {
  ensureBuilt('cnitool', 'flannel');
  work = tempDir('cnitool-int');
});
guardRootNetns(() => work);

let seq = 0;
function setup(conflists: (dir: string) => Record<string, object>, cniPath = GO_CNI_BIN) {
  const dir = join(work, `t${++seq}`);
  const netdir = join(dir, 'net.d');
  mkdirSync(netdir, { recursive: true });
  for (const [name, body] of Object.entries(conflists(dir))) writeFileSync(join(netdir, name), JSON.stringify(body));
  const host = createNetns('cth');
  const cache = join(dir, 'cache');
  const tool = (args: string[], env: Record<string, string> = {}) => {
    const r = host.exec([CNITOOL, ...args], {
      env: { PATH: process.env.PATH ?? '', NETCONFPATH: netdir, CNI_PATH: cniPath, CNI_CACHE_DIR: cache, ...env },
      allowFail: true,
    });
    return r;
  };
  const cacheFiles = () => (existsSync(join(cache, 'results')) ? readdirSync(join(cache, 'results')) : []);
  return { dir, host, tool, cache, cacheFiles };
}

const cid = (netns: string) => `cnitool-${createHash('sha512').update(netns).digest('hex').slice(0, 20)}`;
const goChain = (dir: string, version = '1.0.0') => ({
  '10-test.conflist': {
    cniVersion: version,
    name: 'testnet',
    plugins: [
      { type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: false, ipam: { type: 'host-local', dataDir: join(dir, 'ipam'), ranges: [[{ subnet: '10.88.5.0/24' }]], routes: [{ dst: '0.0.0.0/0' }] } },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  },
});
const podAddrs = (pod: Netns) => pod.exec(['ip', '-br', 'addr', 'show', 'dev', 'eth0'], { allowFail: true }).stdout;

describe.skipIf(!canUseNetns || !hasGoPlugins)('cnitool with real plugins', () => {
  it('ADD runs the chain and caches; CHECK sees the cached prevResult; DEL runs in reverse and drops the cache', () => {
    const t = setup((d) => goChain(d));
    const pod = createNetns('ctp');
    // as with the Go cnitool, capability args come from CAP_ARGS on every call (portmap's DEL needs them too)
    const CAP = { CAP_ARGS: JSON.stringify({ portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] }) };
    const add = t.tool(['add', 'testnet', pod.path], CAP);
    expect(add.status, add.stderr).toBe(0);
    const result = JSON.parse(add.stdout);
    expect(result.ips).toEqual([{ interface: 2, address: '10.88.5.2/24', gateway: '10.88.5.1' }]);
    expect(podAddrs(pod)).toContain('10.88.5.2/24');
    // portmap got runtimeConfig (its capability) and added its DNAT chain in the host netns
    expect(t.host.exec(['iptables-save', '-t', 'nat']).stdout).toContain('--dport 8080');
    const cacheName = `testnet-${cid(pod.path)}-eth0`;
    expect(t.cacheFiles()).toEqual([cacheName]);
    const cached = JSON.parse(readFileSync(join(t.cache, 'results', cacheName), 'utf8'));
    expect(cached).toMatchObject({ kind: 'cniCacheV1', containerId: cid(pod.path), ifName: 'eth0', networkName: 'testnet', netns: pod.path });
    expect(cached.capabilityArgs).toEqual({ portMappings: [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }] });
    expect(cached.result.ips[0].address).toBe('10.88.5.2/24');

    const check = t.tool(['check', 'testnet', pod.path]);
    expect(check.status, check.stderr).toBe(0);
    // the Go bridge's CHECK compares the pod against prevResult: take the address away and it must fail
    pod.exec(['ip', 'addr', 'flush', 'dev', 'eth0']);
    const broken = t.tool(['check', 'testnet', pod.path]);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/10\.88\.5\.2/);

    const del = t.tool(['del', 'testnet', pod.path], CAP);
    expect(del.status, del.stderr).toBe(0);
    expect(t.cacheFiles()).toEqual([]);
    expect(pod.exec(['ip', '-br', 'link']).stdout).not.toContain('eth0');
    expect(t.host.exec(['ip', '-br', 'link']).stdout).not.toMatch(/veth/);
    expect(t.host.exec(['iptables-save', '-t', 'nat']).stdout).not.toContain('--dport 8080');
    expect(readdirSync(join(t.dir, 'ipam', 'testnet')).filter((f) => f.startsWith('10.'))).toEqual([]);
    expect(t.tool(['del', 'testnet', pod.path]).status).toBe(0);
  });

  it('errors: unknown network, a failing plugin named, CHECK refused below 0.4.0', () => {
    const t = setup((d) => goChain(d, '0.3.1'));
    const pod = createNetns('ctp');
    const none = t.tool(['add', 'nope', pod.path]);
    expect(none.status).toBe(1);
    expect(none.stderr).toBe(`no net configuration with name "nope" in ${join(t.dir, 'net.d')}\n`);
    const bad = t.tool(['add', 'testnet', '/var/run/netns/cnitool-test-missing']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe(
      'plugin type="bridge" failed (add): failed to open netns "/var/run/netns/cnitool-test-missing": failed to Statfs "/var/run/netns/cnitool-test-missing": no such file or directory\n',
    );
    expect(t.tool(['add', 'testnet', pod.path]).status).toBe(0);
    const check = t.tool(['check', 'testnet', pod.path]);
    expect(check.status).toBe(1);
    expect(check.stderr).toBe('configuration version "0.3.1" does not support the CHECK command\n');
    expect(t.tool(['del', 'testnet', pod.path]).status).toBe(0);
  });

  it('GC deletes every cached attachment of the network', () => {
    const t = setup((d) => goChain(d));
    const pods = [createNetns('ctp'), createNetns('ctp')];
    for (const p of pods) expect(t.tool(['add', 'testnet', p.path]).status).toBe(0);
    expect(t.cacheFiles()).toHaveLength(2);
    const gc = t.tool(['gc', 'testnet', pods[0]!.path]);
    expect(gc.status, gc.stderr).toBe(0);
    expect(t.cacheFiles()).toEqual([]);
    for (const p of pods) expect(p.exec(['ip', '-br', 'link']).stdout).not.toContain('eth0');
  });

  it('STATUS goes to every plugin of a 1.1.0 list with an empty container ID, and not below 1.1.0', () => {
    const bin = join(work, 'rec-bin');
    if (!existsSync(bin)) {
      mkdirSync(bin);
      symlinkSync(join(ROOT, 'test/fixtures/cni-bin/recorder'), join(bin, 'rec'));
    }
    const log = join(work, `rec-log-${seq}`);
    mkdirSync(log);
    const t = setup(() => ({ 'a.conflist': { cniVersion: '1.1.0', name: 'st', plugins: [{ type: 'rec' }] }, 'b.conflist': { cniVersion: '1.0.0', name: 'old', plugins: [{ type: 'rec' }] } }), bin);
    expect(t.tool(['status', 'old', '/x'], { FAKE_CNI_LOG: log }).status).toBe(0);
    expect(readdirSync(log)).toEqual([]);
    expect(t.tool(['status', 'st', '/x'], { FAKE_CNI_LOG: log }).status).toBe(0);
    expect(readFileSync(join(log, '0-STATUS.stdin'), 'utf8')).toBe('{"cniVersion":"1.1.0","name":"st","type":"rec"}');
    expect(readFileSync(join(log, '0-STATUS.env'), 'utf8')).toContain('CNI_CONTAINERID=\n');
  });

  it("kube-flannel's conflist with our flannel, the Go bridge/host-local and the Go portmap", () => {
    const flBin = join(work, 'fl-bin');
    if (!existsSync(flBin)) {
      mkdirSync(flBin);
      symlinkSync(join(DIST_BIN, 'flannel'), join(flBin, 'flannel'));
    }
    const t = setup((d) => {
      const shipped = JSON.parse(readFileSync(join(ROOT, 'conf/10-flannel.conflist'), 'utf8'));
      Object.assign(shipped.plugins[0], { subnetFile: writeSubnetEnv(d, SUBNET_ENV.v4()), dataDir: join(d, 'flannel'), ipam: { dataDir: join(d, 'ipam') } });
      return { '10-flannel.conflist': shipped };
    }, `${flBin}:${GO_CNI_BIN}`);
    const pod = createNetns('ctp');
    const add = t.tool(['add', 'cbr0', pod.path]);
    expect(add.status, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ cniVersion: '0.3.1', ips: [{ version: '4', interface: 2, address: '10.244.1.2/24', gateway: '10.244.1.1' }] });
    expect(pod.exec(['ping', '-c', '1', '-W', '2', '10.244.1.1'], { allowFail: true }).status).toBe(0);
    // the saved delegate config and flannel's per-container lock (both gone after DEL)
    expect(readdirSync(join(t.dir, 'flannel')).sort()).toEqual([`.${cid(pod.path)}.lock`, cid(pod.path)]);
    const del = t.tool(['del', 'cbr0', pod.path]);
    expect(del.status, del.stderr).toBe(0);
    expect(readdirSync(join(t.dir, 'flannel'))).toEqual([]);
    expect(t.cacheFiles()).toEqual([]);
    expect(t.host.exec(['ip', '-br', 'link']).stdout).not.toMatch(/veth/);
  });
});
