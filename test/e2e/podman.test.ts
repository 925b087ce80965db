// podman 4 (Debian, CNI network backend) runs a busybox-rootfs container on the flannel network through
// our plugins: flannel → bridge → host-local from dist/bin (and, second case, our flannel delegating
// to the Go bridge/host-local). It checks the container's address, routes and a ping to the gateway.
//
// Safety: podman runs the CNI plugins in its own network namespace, so it runs under
// `nsenter --net=<host netns made here>` (not `ip netns exec`, which remounts /sys and
// breaks runc's cgroup setup): cni0 and the veth host ends land in that netns, never in the root one.
// podman's state (root, runroot, tmpdir, events, CNI config dir) is under a temp dir; libcni's cache,
// which podman 4.3 always puts in /var/lib/cni, goes to a tmpfs-backed overlay on /var/lib in a private
// mount namespace (unshare --mount) that disappears with the run. The test asserts on what it owns: the
// container's netns (identified by its inode, read inside the container) is gone from /run/netns after
// --rm, no cni0 or veth of ours appeared in the root netns, and /var/lib/cni did not appear. It never
// compares the machine's whole netns or link list: other processes on a node create those all the time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../helpers/netns.js';
import { DIST_BIN, GO_CNI_BIN, ROOT } from '../helpers/paths.js';
import { ensureBuilt, tempDir } from '../integration/flannel/helpers.js';
import { privateVarLib } from './private-mounts.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const usable = canUseNetns && ['podman', 'runc', 'busybox', 'unshare', 'nsenter'].every(have) && existsSync(join(GO_CNI_BIN, 'portmap'));

let T: string;
let rootfs: string;
/** Root-netns links of the kinds this test's chain makes (the bridge, the host-side veths). */
const rootChainLinks = () =>
  spawnSync('ip', ['-br', 'link'], { encoding: 'utf8' }).stdout
    .split('\n')
    .map((l) => l.split(/\s+/)[0]!.split('@')[0]!)
    .filter((n) => n === 'cni0' || n.startsWith('veth'));
const rootState = () => ({ chainLinks: rootChainLinks(), varLibCni: existsSync('/var/lib/cni') });
let before: ReturnType<typeof rootState>;

/** The /run/netns entries that are the namespace with inode `ino` (a bind mount of nsfs has its dev and inode). */
function netnsEntriesOf(ino: number): string[] {
  const nsfs = statSync('/proc/self/ns/net').dev;
  return readdirSync('/run/netns').filter((n) => {
    try {
      const st = statSync(join('/run/netns', n));
      return st.dev === nsfs && st.ino === ino;
    } catch {
      return false; // removed meanwhile by whoever owns it
    }
  });
}

/** A busybox rootfs: the binary, its shared libraries (as ldd lists them) and a few applet links. */
function makeRootfs(dir: string): void {
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp']) mkdirSync(join(dir, d), { recursive: true });
  const busybox = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim();
  copyFileSync(busybox, join(dir, 'bin/busybox'));
  for (const lib of spawnSync('ldd', [busybox], { encoding: 'utf8' }).stdout.match(/\/\S+/g) ?? []) {
    mkdirSync(join(dir, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(dir, lib));
  }
  for (const applet of ['sh', 'ip', 'ping', 'cat', 'readlink']) symlinkSync('busybox', join(dir, 'bin', applet));
}

beforeAll(() => {
  if (!usable) return;
  ensureBuilt('flannel', 'bridge', 'host-local', 'loopback');
  T = tempDir('podman-e2e');
  rootfs = join(T, 'rootfs');
  makeRootfs(rootfs);
  before = rootState();
});

afterAll(() => {
  cleanupNetns();
  if (T) rmSync(T, { recursive: true, force: true });
});

interface Case {
  dir: string;
  host: Netns;
  run(): { status: number; stdout: string; stderr: string };
}

/** One podman setup: its own host netns, subnet, plugin dir and state dirs. */
function podmanCase(name: string, subnet: number, plugins: Record<string, string>, extraDirs: string[]): Case {
  const dir = join(T, name);
  for (const d of ['cni-bin', 'net.d', 'root', 'runroot', 'tmp', 'ovl', 'flannel', 'ipam']) mkdirSync(join(dir, d), { recursive: true });
  for (const [type, target] of Object.entries(plugins)) symlinkSync(target, join(dir, 'cni-bin', type));
  writeFileSync(join(dir, 'subnet.env'), `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.${subnet}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`);
  // the shipped conflist, pointed at private paths
  const conflist = JSON.parse(readFileSync(join(ROOT, 'conf/10-flannel.conflist'), 'utf8'));
  Object.assign(conflist.plugins[0], { subnetFile: join(dir, 'subnet.env'), dataDir: join(dir, 'flannel'), ipam: { dataDir: join(dir, 'ipam') } });
  writeFileSync(join(dir, 'net.d/10-flannel.conflist'), JSON.stringify(conflist, null, 2));
  const pluginDirs = [join(dir, 'cni-bin'), ...extraDirs].map((d) => JSON.stringify(d)).join(', ');
  writeFileSync(
    join(dir, 'containers.conf'),
    [
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${join(dir, 'events.log')}"`,
      '[network]',
      'network_backend = "cni"',
      `cni_plugin_dirs = [${pluginDirs}]`,
      `network_config_dir = "${join(dir, 'net.d')}"`,
      '[containers]',
      'default_ulimits = ["nofile=20000:20000", "nproc=1024:1024"]',
      '',
    ].join('\n'),
  );
  const host = createNetns('pmh');
  const gw = `10.244.${subnet}.1`;
  const podman = [
    `nsenter --net=${host.path} podman --root ${dir}/root --runroot ${dir}/runroot --tmpdir ${dir}/tmp --storage-driver vfs`,
    // every option before --rootfs: its first positional argument is the rootfs dir
    `run --rm --name ${name}-${process.pid} --network cbr0 --rootfs ${rootfs}`,
    `/bin/sh -c 'readlink /proc/self/ns/net; ip -4 addr show eth0; ip route; ping -c 2 -W 2 ${gw}'`,
  ].join(' ');
  const script = [
    'set -e',
    ...privateVarLib(dir),
    `CONTAINERS_CONF=${dir}/containers.conf ${podman}`,
  ].join('\n');
  return {
    dir,
    host,
    run: () => {
      const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 120_000 });
      return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
    },
  };
}

function expectContainerOnFlannel(c: Case, subnet: number): void {
  const r = c.run();
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`inet 10\\.244\\.${subnet}\\.\\d+/24`));
  expect(r.stdout).toContain('mtu 1450');
  expect(r.stdout).toContain(`default via 10.244.${subnet}.1 dev eth0`);
  expect(r.stdout).toContain(`10.244.0.0/16 via 10.244.${subnet}.1 dev eth0`);
  expect(r.stdout).toContain('2 packets transmitted, 2 packets received');
  // the host side lives in our host netns: cni0 with the gateway; --rm's DEL took the veth, the IP and
  // the flannel scratch file away again
  expect(c.host.exec(['ip', '-br', 'addr', 'show', 'dev', 'cni0']).stdout).toContain(`10.244.${subnet}.1/24`);
  expect(c.host.exec(['ip', '-br', 'link']).stdout).not.toMatch(/veth/);
  expect(readdirSync(join(c.dir, 'flannel'))).toEqual([]);
  expect(readdirSync(join(c.dir, 'ipam', 'cbr0')).filter((f) => f.startsWith('10.'))).toEqual([]);
  // the container's own netns (podman's /run/netns entry for it) is gone with --rm
  const ino = Number(r.stdout.match(/^net:\[(\d+)\]$/m)?.[1]);
  expect(ino, r.stdout).toBeGreaterThan(0);
  expect(netnsEntriesOf(ino)).toEqual([]);
  // and nothing of the chain in the root namespace, nothing in the machine-wide CNI dir
  expect(rootState()).toEqual(before);
}

describe.skipIf(!usable)('podman (CNI backend) → flannel', () => {
  it('through our flannel → our bridge → our host-local (portmap from the reference plugins)', () => {
    const c = podmanCase('ours', 7, {
      flannel: join(DIST_BIN, 'flannel'),
      bridge: join(DIST_BIN, 'bridge'),
      'host-local': join(DIST_BIN, 'host-local'),
      loopback: join(DIST_BIN, 'loopback'),
      portmap: join(GO_CNI_BIN, 'portmap'),
    }, []);
    expectContainerOnFlannel(c, 7);
  });

  it('through our flannel → the Go bridge and host-local', () => {
    const c = podmanCase('godeleg', 8, { flannel: join(DIST_BIN, 'flannel') }, [GO_CNI_BIN]);
    expectContainerOnFlannel(c, 8);
  });
});
