// The self-contained executables on a host without Node: the kube-flannel chain (flannel → bridge →
// host-local, all three names links to dist/exe/flannel-cni) runs ADD, CHECK and DEL inside a private
// mount namespace where `node` is masked (/dev/null bound over it) and this checkout's node_modules and
// Node-script build (dist/bin) are empty tmpfs, from `/`, with a runtime's bare environment. Each output
// must be byte-identical to what the Node-script build prints for the same call in its own pair of
// namespaces, once the random parts (MACs, the host veth's name, the sandbox path) are blanked.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canUseNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { hasEtcd, startEtcd } from '../../helpers/etcd.js';
import { EXE_BIN, NODE_BIN, ROOT } from '../../helpers/paths.js';
import { ensureBuilt, guardRootNetns, tempDir, writeSubnetEnv } from '../flannel/helpers.js';

const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
const haveUnshare = spawnSync('unshare', ['--version']).status === 0;

/** Every node binary a plugin could reach: PATH's and the one running us (resolved). */
function nodeBinaries(): string[] {
  const found = PATH.split(':').map((d) => join(d, 'node')).filter((p) => existsSync(p));
  return [...new Set([...found, process.execPath].map((p) => realpathSync(p)))];
}

/** Shell lines that make Node unavailable in this mount namespace, and prove it. */
function hideNode(): string[] {
  return [
    ...nodeBinaries().map((n) => `mount --bind /dev/null ${n}`),
    `mount -t tmpfs tmpfs ${join(ROOT, 'node_modules')}`,
    `mount -t tmpfs tmpfs ${NODE_BIN}`,
    'if node -e 0 >/dev/null 2>&1; then echo "node still runs" >&2; exit 90; fi',
    `if [ -n "$(ls -A ${join(ROOT, 'node_modules')})" ]; then echo "node_modules still there" >&2; exit 91; fi`,
    'cd /',
  ];
}

interface Call {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * One CNI call of `bin` in `host`'s netns with a bare env; with `noNode`, inside a private mount
 * namespace where Node is hidden.
 */
function call(bin: string, host: Netns, env: Record<string, string>, stdin: string, noNode: boolean, args: string[] = []): Call {
  const envArgs = Object.entries({ PATH, ...env }).map(([k, v]) => `${k}=${v}`);
  const run = ['nsenter', `--net=${host.path}`, '--', 'env', '-i', ...envArgs, bin, ...args];
  const r = noNode
    ? spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', [...hideNode(), 'exec "$@"'].join('\n'), 'sh', ...run], { input: stdin, encoding: 'utf8' })
    : spawnSync(run[0]!, run.slice(1), { input: stdin, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The output with the random parts blanked; the rest (key order, indentation, values) stays byte for byte. */
function blank(text: string, podNs: Netns): string {
  return text
    .replace(/"mac": "[0-9a-f:]{17}"/g, '"mac": "<mac>"')
    .replace(/"veth[0-9a-f]{8}"/g, '"<veth>"')
    .split(podNs.path)
    .join('<netns>');
}

describe.skipIf(!canUseNetns || !haveUnshare)('the compiled chain with Node unavailable', () => {
  let work = '';
  guardRootNetns(() => work);

  it('ADD, CHECK and DEL succeed and print what the Node-script build prints', () => {
    ensureBuilt('flannel', 'bridge', 'host-local');
    work = tempDir('exe-no-node');
    const runs = (['node', 'exe'] as const).map((build) => {
      const dir = join(work, build);
      mkdirSync(dir);
      const subnetEnv = writeSubnetEnv(dir, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
      const host = createNetns('nn-host');
      const pod = createNetns('nn-pod');
      const binDir = build === 'exe' ? EXE_BIN : NODE_BIN;
      const conf = {
        cniVersion: '1.0.0',
        name: 'cbr0',
        type: 'flannel',
        subnetFile: subnetEnv,
        dataDir: join(dir, 'flannel'),
        ipam: { dataDir: join(dir, 'ipam') },
        delegate: { hairpinMode: true, isDefaultGateway: true },
      };
      const env = (command: string) => ({ CNI_COMMAND: command, CNI_CONTAINERID: 'nonode-1', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: binDir });
      const noNode = build === 'exe';
      const add = call(join(binDir, 'flannel'), host, env('ADD'), JSON.stringify(conf), noNode);
      expect(add, add.stderr).toMatchObject({ code: 0 });
      const prevResult = JSON.parse(add.stdout) as unknown;
      const check = call(join(binDir, 'flannel'), host, env('CHECK'), JSON.stringify({ ...conf, prevResult }), noNode);
      const pingable = pod.exec(['ip', '-4', 'addr', 'show', 'eth0']).stdout;
      const del = call(join(binDir, 'flannel'), host, env('DEL'), JSON.stringify(conf), noNode);
      const leftover = readdirSync(join(dir, 'ipam', 'cbr0')).filter((f) => /^\d/.test(f));
      return { build, add: blank(add.stdout, pod), check, del, pingable, leftover };
    });
    const [node, exe] = runs;
    expect(exe!.add).toBe(node!.add);
    expect(exe!.add).toContain('"address": "10.244.1.2/24"');
    expect(exe!.pingable).toContain('10.244.1.2/24');
    expect(exe!.check).toEqual(node!.check);
    expect(exe!.check.code).toBe(0);
    expect(exe!.del).toEqual(node!.del);
    expect(exe!.del).toMatchObject({ code: 0, stdout: '' });
    expect(exe!.leftover).toEqual([]);
  });

  it('the same masking stops the Node-script build (so the run above had no Node)', () => {
    const host = createNetns('nn-host');
    // outside the mask it runs; inside, its #! interpreter is gone
    expect(call(join(NODE_BIN, 'loopback'), host, { CNI_COMMAND: 'VERSION' }, '', false).code).toBe(0);
    expect(call(join(NODE_BIN, 'loopback'), host, { CNI_COMMAND: 'VERSION' }, '', true).code).not.toBe(0);
    expect(call(join(EXE_BIN, 'loopback'), host, { CNI_COMMAND: 'VERSION' }, '', true)).toMatchObject({ code: 0 });
  });
});

// flannelctl is a name of the compiled flanneld (cmd/flanneld.ts dispatches on argv[0]): it needs no
// Node either, and prints what the Node-script flannelctl prints.
describe.skipIf(!canUseNetns || !haveUnshare || !hasEtcd)('flannelctl (a link to the compiled flanneld) with Node unavailable', () => {
  it('--help and leases run and print what the Node-script build prints', async () => {
    ensureBuilt('flannelctl');
    const host = createNetns('nn-ctl');
    const etcd = await startEtcd({ netns: host.name });
    try {
      etcd.ctl(['put', '/coreos.com/network/config', '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}']);
      etcd.ctl(['put', '/coreos.com/network/subnets/10.244.7.0-24', '{"PublicIP":"10.50.0.7","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:07:00"}}']);
      const both = (args: string[]) => ({
        node: call(join(NODE_BIN, 'flannelctl'), host, {}, '', false, args),
        exe: call(join(EXE_BIN, 'flannelctl'), host, {}, '', true, args),
      });
      const help = both(['--help']);
      expect(help.exe.stderr + help.exe.stdout).toContain('Usage: flannelctl');
      expect(help.exe).toEqual(help.node);
      const leases = both(['leases', `--etcd-endpoints=${etcd.endpoint}`, '--output=json']);
      expect(leases.exe, leases.exe.stderr).toMatchObject({ code: 0 });
      expect(leases.exe.stdout).toContain('"10.244.7.0/24"');
      expect(leases.exe.stdout).toContain('10.50.0.7');
      expect(leases.exe).toEqual(leases.node);
      // the same file under its own name is the daemon, not flannelctl
      const daemon = call(join(EXE_BIN, 'flanneld'), host, {}, '', true, ['--version']);
      expect(daemon).toMatchObject({ code: 0, stderr: 'v0.1.0-ts\n' });
    } finally {
      await etcd.stop();
      host.delete();
    }
  });
});
