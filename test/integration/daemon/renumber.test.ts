// The built flanneld when the network config changes (daemon/config-watch.ts, daemon/renumber.ts),
// in a namespace of the test's own with a real etcd and the vxlan backend:
//   Network A / VNI 1, a real pod ADD (the built flannel → bridge → host-local) puts A's gateway on cni0;
//   config → Network B / VNI 2: a warning while running, saying what a restart will do;
//   restart: a subnet in B, flannel.1 deleted, flannel.2 up, cni0 without A's gateway, a new pod ADD works;
//   config back to A, restart: the A subnet again.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { DIST, ensureBuilt } from '../flannel/helpers.js';
import { runPluginSync } from '../../helpers/run-plugin.js';
import { buildFlanneld, createDaemonNetns, daemonRunner, until, within } from './daemon-harness.js';

const PREFIX = '/renum';
const A = '{"Network":"10.61.0.0/16","SubnetMin":"10.61.10.0","SubnetMax":"10.61.200.0","Backend":{"Type":"vxlan","VNI":1}}';
const B = '{"Network":"10.62.0.0/16","Backend":{"Type":"vxlan","VNI":2}}';

describe.skipIf(!hasEtcd || !canUseNetns)('flanneld (built): config change, renumbering, revert', () => {
  let ns: Netns;
  let etcd: TestEtcd;
  let dir: string;
  const pods: Netns[] = [];
  const daemons = daemonRunner(() => ns);

  beforeAll(async () => {
    buildFlanneld();
    ensureBuilt('flannel', 'bridge', 'host-local');
    ns = createDaemonNetns('renum');
    etcd = await startEtcd({ netns: ns.name });
    dir = mkdtempSync(join(tmpdir(), `flanneld-renum-${process.pid}-`));
  });
  afterEach(() => daemons.killAll());
  afterAll(async () => {
    await etcd?.stop();
    for (const p of pods) p.delete();
    ns?.delete();
    cleanupNetns();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const subnetFile = () => join(dir, 'subnet.env');
  const dataDir = () => join(dir, 'data');

  const start = async () => {
    const d = daemons.run([
      '--etcd-endpoints', etcd.endpoint, '--etcd-prefix', PREFIX, '--iface', 'ext0',
      '--subnet-file', subnetFile(), '--data-dir', dataDir(), '--net-config-poll', '1',
    ]);
    await until(() => d.stderr().includes('to renew lease') || !d.running(), 'the renew loop', 30_000);
    expect(d.running(), d.stderr()).toBe(true);
    return d;
  };
  const subnet = () => /FLANNEL_SUBNET=(\S+)/.exec(readFileSync(subnetFile(), 'utf8'))![1]!;
  const link = (name: string) => ns.exec(['ip', '-j', '-d', 'link', 'show', name], { allowFail: true });
  const globalAddrs = (dev: string) =>
    (JSON.parse(ns.exec(['ip', '-j', 'addr', 'show', 'dev', dev]).stdout)[0].addr_info as { local: string; prefixlen: number; scope: string }[])
      .filter((a) => a.scope === 'global')
      .map((a) => `${a.local}/${a.prefixlen}`);

  /** a pod ADD through the built flannel plugin, as a runtime does it, in the daemon's namespace */
  const podAdd = (id: string) => {
    const pod = createNetns('rpod');
    pods.push(pod);
    mkdirSync(join(dir, 'cni'), { recursive: true });
    const conf = JSON.stringify({
      cniVersion: '0.3.1',
      name: 'cbr0',
      type: 'flannel',
      subnetFile: subnetFile(),
      dataDir: join(dir, 'cni', 'flannel'),
      delegate: { hairpinMode: true, isDefaultGateway: true },
      ipam: { dataDir: join(dir, 'cni', 'ipam') },
    });
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: DIST };
    return runPluginSync(join(DIST, 'flannel'), env, conf, ns);
  };

  it('warns while running, renumbers on restart (old device and cni0 gateway gone, new pods work), and a revert regains the old subnet', async () => {
    etcd.ctl(['put', `${PREFIX}/config`, A]);
    let d = await start();
    const subnetA = subnet(); // 10.61.x.1/24
    expect(subnetA).toMatch(/^10\.61\.\d+\.1\/24$/);
    expect(link('flannel.1').status).toBe(0);
    const pod1 = podAdd('ctr-a');
    expect(pod1.code, pod1.stdout + pod1.stderr).toBe(0);
    expect(globalAddrs('cni0')).toEqual([subnetA]); // the bridge plugin's gateway for subnet A

    // (a) changed while running: one loud line, what changed and what a restart does
    etcd.ctl(['put', `${PREFIX}/config`, B]);
    const line = await until(() => d.stderr().split('\n').find((l) => l.includes('network config at /renum/config changed')), 'the config-change warning');
    expect(line).toMatch(/^W\d{4} /);
    expect(line).toContain('Network 10.61.0.0/16 -> 10.62.0.0/16');
    expect(line).toContain('Backend {"Type":"vxlan","VNI":1} -> {"Type":"vxlan","VNI":2}');
    expect(line).toContain('flanneld keeps running on the config it started with until it is restarted');
    expect(line).toContain(`this node is renumbered: its subnet ${subnetA.replace(/\.1\//, '.0/')} does not fit the new config`);
    expect(line).toContain('flannel.1 will be deleted; flannel.2 will be created');
    expect(subnet()).toBe(subnetA); // nothing applied while running
    expect(await daemons.stop(d)).toBe(0);
    expect(d.stderr().split('\n').filter((l) => l.includes('network config at /renum/config changed'))).toHaveLength(1);

    // (b) restart on B: renumbered, the old device and the old gateway are gone, new pods work
    d = await start();
    const subnetB = subnet();
    expect(subnetB).toMatch(/^10\.62\.\d+\.1\/24$/);
    expect(d.stderr()).toContain('this node was renumbered');
    expect(d.stderr()).toContain('must be recreated');
    expect(link('flannel.1').status).not.toBe(0);
    expect(JSON.parse(link('flannel.2').stdout)[0].linkinfo.info_data.id).toBe(2);
    expect(globalAddrs('cni0')).toEqual([]);
    const pod2 = podAdd('ctr-b');
    expect(pod2.code, pod2.stdout + pod2.stderr).toBe(0);
    expect(JSON.parse(pod2.stdout).ips[0].address).toMatch(new RegExp(`^${subnetB.replace(/\.1\/24$/, '').replace(/\./g, '\\.')}\\.\\d+/24$`));
    expect(globalAddrs('cni0')).toEqual([subnetB]);
    expect(await daemons.stop(d)).toBe(0);

    // (c) back to A: the A subnet again (it is free), flannel.2 goes, flannel.1 comes back
    etcd.ctl(['put', `${PREFIX}/config`, A]);
    d = await start();
    expect(subnet()).toBe(subnetA);
    expect(d.stderr()).toContain(`which this node held in 10.61.0.0/16 before`);
    expect(link('flannel.2').status).not.toBe(0);
    expect(link('flannel.1').status).toBe(0);
    expect(globalAddrs('cni0')).toEqual([]);
    expect(await within(daemons.stop(d), 15_000, 'the exit')).toBe(0);
    expect(existsSync(join(dataDir(), 'network.json'))).toBe(true);
  });
});
