// CNI 1.1 STATUS and GC of the flannel plugin through the cnitool runner (our libcni port), in a host
// netns made here. The leak GC exists for is made for real: a runtime (cnitool) killed mid-ADD, after
// the bridge took an address and flannel saved its delegate config, before the runtime cached a result.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns, createNetns } from '../../helpers/netns.js';
import { runPluginSync } from '../../helpers/run-plugin.js';
import { until } from '../../helpers/until.js';
import { DIST, ensureBuilt, guardRootNetns, SUBNET_ENV, tempDir, writeSubnetEnv } from './helpers.js';

let work: string;
beforeAll(() => {
  ensureBuilt('flannel', 'bridge', 'host-local', 'cnitool');
  work = tempDir('flannel-status-gc');
});
guardRootNetns(() => work);

describe.skipIf(!canUseNetns)('flannel STATUS and GC (CNI 1.1)', () => {
  it('STATUS is code 50 until subnet.env exists; GC releases what a runtime killed mid-ADD leaked', async () => {
    const host = createNetns('flsg');
    const pods = [createNetns('flsa'), createNetns('flsb')];
    const netdir = join(work, 'net.d');
    const cache = join(work, 'cache');
    const ipam = join(work, 'ipam');
    const data = join(work, 'flannel');
    mkdirSync(netdir);
    const subnetFile = join(work, 'subnet.env');
    writeFileSync(
      join(netdir, '10-flannel.conflist'),
      JSON.stringify({
        cniVersion: '1.1.0',
        name: 'cbr0',
        plugins: [{ type: 'flannel', subnetFile, dataDir: data, delegate: { hairpinMode: true, isDefaultGateway: true }, ipam: { dataDir: ipam } }],
      }),
    );
    // a `bridge` that runs ours, then hangs: the runtime is killed while it waits
    const slow = join(work, 'slow-bin');
    mkdirSync(slow);
    const marker = join(work, 'bridge-done');
    writeFileSync(join(slow, 'bridge'), `#!/bin/sh\n"${DIST}/bridge"\ntouch "${marker}"\nexec sleep 300\n`);
    chmodSync(join(slow, 'bridge'), 0o755);
    const env = (cniPath: string) => ({ PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NETCONFPATH: netdir, CNI_PATH: cniPath, CNI_CACHE_DIR: cache });
    const cnitool = (args: string[], cniPath = DIST) => host.exec([join(DIST, 'cnitool'), ...args], { env: env(cniPath), allowFail: true });
    const reservations = () => (existsSync(join(ipam, 'cbr0')) ? readdirSync(join(ipam, 'cbr0')).filter((f) => /^[0-9.]+$/.test(f)).sort() : []);
    const saved = () => (existsSync(data) ? readdirSync(data).filter((f) => !f.startsWith('.')) : []);

    // STATUS before flanneld wrote subnet.env: not available, and why
    const down = cnitool(['status', 'cbr0', pods[0]!.path]);
    expect(down.status).toBe(1);
    expect(down.stderr).toContain(`failed to load flannel 'subnet.env' file: open ${subnetFile}: no such file or directory`);
    expect(down.stderr).toContain(`no flanneld is running on this node, and it is what writes ${subnetFile}`);
    // the same through the plugin directly: code 50
    const direct = runPluginSync(join(DIST, 'flannel'), { CNI_COMMAND: 'STATUS', CNI_PATH: DIST }, JSON.parse(readConf(netdir)), host);
    expect(direct.json?.code).toBe(50);

    writeSubnetEnv(work, SUBNET_ENV.v4());
    expect(cnitool(['status', 'cbr0', pods[0]!.path]).status).toBe(0);

    // pod A: a normal ADD, cached by the runtime
    const a = cnitool(['add', 'cbr0', pods[0]!.path]);
    expect(a.status, a.stderr).toBe(0);
    // pod B: the runtime dies mid-ADD
    const runtime = spawn('ip', ['netns', 'exec', host.name, join(DIST, 'cnitool'), 'add', 'cbr0', pods[1]!.path], {
      env: env(`${slow}:${DIST}`),
      detached: true,
      stdio: 'ignore',
    });
    try {
      await until(() => existsSync(marker), 'the slow bridge to finish its ADD', { ms: 20_000, every: 20 });
    } finally {
      process.kill(-runtime.pid!, 'SIGKILL');
    }
    expect(reservations()).toHaveLength(2);
    expect(saved()).toHaveLength(2);
    const idA = saved().find((id) => existsSync(join(cache, 'results', `cbr0-${id}-eth0`)))!;
    expect(idA).toBeDefined();

    // GC as a runtime sends it with A still valid: B's address and saved config go, A's stay
    const conf = JSON.parse(readConf(netdir));
    const gc = runPluginSync(join(DIST, 'flannel'), { CNI_COMMAND: 'GC', CNI_PATH: DIST }, { ...conf, 'cni.dev/valid-attachments': [{ containerID: idA, ifname: 'eth0' }] }, host);
    expect(gc.code, gc.stdout).toBe(0);
    expect(saved()).toEqual([idA]);
    expect(reservations()).toHaveLength(1);
    expect(readdirSync(data).filter((f) => f.startsWith('.') && f !== `.${idA}.lock`)).toEqual([]); // B's lock file went too

    // cnitool gc (no valid attachments): A is DELeted through the cache, nothing is left
    const all = cnitool(['gc', 'cbr0', pods[0]!.path]);
    expect(all.status, all.stderr).toBe(0);
    expect(reservations()).toEqual([]);
    expect(saved()).toEqual([]);
    rmSync(subnetFile);
  });
});

/** The one plugin config of the conflist, with name and cniVersion as libcni injects them. */
function readConf(netdir: string): string {
  const list = JSON.parse(readFileSync(join(netdir, '10-flannel.conflist'), 'utf8')) as { cniVersion: string; name: string; plugins: object[] };
  return JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] });
}
