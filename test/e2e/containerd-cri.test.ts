// The kubelet's path to our CNI executables: containerd 1.6's CRI plugin (go-cni/libcni) calls
// flannel → bridge → host-local (+ the Go portmap the conflist chains) when a CRI client runs a pod
// sandbox. The CRI client is ours (test/cri: gRPC over node:http2, hand-written protobuf); it drives
// RunPodSandbox / PodSandboxStatus / StopPodSandbox / RemovePodSandbox the way the kubelet does (the CNI
// dirs filled by install-cni as the DaemonSet's init containers do), and the
// test checks what a cluster relies on: pod addresses from the node's flannel subnet, pod-to-pod and
// node-to-pod pings, and a clean release (no IP left in host-local's store, no veth, flannel's dataDir empty).
//
// Safety: containerd runs under `nsenter --net=<netns made here>` (the "node": cni0, the veths and the
// iptables rules land there) and `unshare --mount` with a private mount namespace in which /run is a fresh
// tmpfs (containerd 1.6 hard-codes its shim sockets under /run/containerd) and /var/lib is an overlay
// with a tmpfs upper layer (libcni's cache, /var/lib/cni). Its root, state, socket, runc root and CNI
// dirs are under a temp dir; the sandbox netns are bind-mounted under its state dir
// (netns_mounts_under_state_dir) and so exist only in that mount namespace. Everything it started (shims,
// sandboxes) is killed by PID at the end if Stop/Remove did not already end it.
//
// Offline: the sandbox image is built here (test/cri/pause-image.ts) and imported with ctr.
// oom_score_adj: the sandbox spec asks for -998, which needs CAP_SYS_RESOURCE; restrict_oom_score_adj
// keeps it at containerd's own value so this also runs where that capability is missing (containers).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../helpers/netns.js';
import { DIST, GO_CNI, ensureBuilt, tempDir } from '../integration/flannel/helpers.js';
import { ROOT } from '../helpers/paths.js';
import { CriClient, GrpcError, netnsPathOf } from '../cri/client.js';
import { buildPauseImage } from '../cri/pause-image.js';
import { privateVarLib } from './private-mounts.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const usable = canUseNetns && ['containerd', 'containerd-shim-runc-v2', 'ctr', 'runc', 'busybox', 'unshare', 'nsenter', 'tar', 'ping'].every(have);
const PAUSE = 'localhost/flannel-ts-pause:e2e';
/** gRPC NOT_FOUND */
const NOT_FOUND = 5;

let T: string;
let host: Netns;
let containerd: ChildProcess | undefined;
let cri: CriClient;
let subnet: number;
const log: string[] = [];
const sandboxes: string[] = [];
/** The pods' cgroup parent (kubelet passes its kubepods slice): runc creates it in every hierarchy, we remove it. */
const CGROUP_PARENT = `/flannel-ts-cri-${process.pid}`;

/** Polls an async check until it returns a value; throws with the last error after `ms`. */
async function eventually<V>(f: () => Promise<V | undefined>, what: string, ms = 30_000): Promise<V> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${String(last)}\ncontainerd log tail:\n${log.join('').slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function config(): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `version = 2
root = "${T}/root"
state = "${T}/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "${T}/containerd.sock"
[ttrpc]
  address = "${T}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[${cri}]
  sandbox_image = "${PAUSE}"
  disable_tcp_service = true
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  [${cri}.containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [${cri}.containerd.runtimes.runc.options]
        Root = "${T}/runc"
  [${cri}.cni]
    bin_dir = "${T}/cni-bin"
    conf_dir = "${T}/net.d"
    max_conf_num = 1
`;
}

/** The shipped conflist, pointed at this test's subnet.env and stores; portmap only if the Go one is there. */
function conflist(): string {
  const c = JSON.parse(readFileSync(join(ROOT, 'conf/10-flannel.conflist'), 'utf8')) as { plugins: Array<Record<string, unknown>> };
  Object.assign(c.plugins[0]!, { subnetFile: join(T, 'subnet.env'), dataDir: join(T, 'flannel'), ipam: { dataDir: join(T, 'ipam') } });
  if (!existsSync(join(GO_CNI, 'portmap'))) c.plugins = c.plugins.filter((p) => p.type !== 'portmap');
  return JSON.stringify(c, null, 2);
}

/** argv run in the sandbox's netns: the bind mount exists only in containerd's mount namespace, so enter that first. */
function inPod(netnsPath: string, argv: string[]) {
  const r = spawnSync('nsenter', [`--mount=/proc/${containerd!.pid}/ns/mnt`, '--', 'nsenter', `--net=${netnsPath}`, '--', ...argv], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** PIDs whose command line names this test's temp dir: containerd's shims and their sandboxes' parents. */
function ourProcesses(): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(T)) pids.push(Number(p));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** rmdir, depth first, of CGROUP_PARENT in every cgroup hierarchy (cgroupfs dirs only go with rmdir). */
function removeCgroups(): void {
  const rmdirTree = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) rmdirTree(join(dir, e.name));
    rmdirSync(dir);
  };
  const base = '/sys/fs/cgroup';
  const hierarchies = [base, ...readdirSync(base).map((h) => join(base, h))];
  for (const h of hierarchies) {
    const dir = join(h, CGROUP_PARENT);
    try {
      if (existsSync(dir)) rmdirTree(dir);
    } catch (err) {
      console.warn(`containerd-cri: could not remove cgroup ${dir}: ${String(err)}`);
    }
  }
}

beforeAll(async () => {
  if (!usable) return;
  ensureBuilt('flannel', 'bridge', 'host-local', 'loopback', 'install-cni');
  T = tempDir('cri-e2e');
  for (const d of ['cni-bin', 'net.d', 'root', 'state', 'runc', 'ovl', 'flannel', 'ipam', 'image']) mkdirSync(join(T, d), { recursive: true });
  subnet = 1 + (process.pid % 250);
  writeFileSync(join(T, 'subnet.env'), `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.${subnet}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`);
  // the node as kube-flannel.yml's init containers leave it: install-cni put the executables and the
  // conflist there (ours for the whole chain; the Go portmap the conflist chains is linked in)
  writeFileSync(join(T, 'cni-conf.json'), conflist());
  const inst = spawnSync(
    join(DIST, 'install-cni'),
    ['--cni-bin-dir', join(T, 'cni-bin'), '--plugins', 'flannel,bridge,host-local,loopback', '--cni-conf-dir', join(T, 'net.d'), '--conflist', join(T, 'cni-conf.json')],
    { encoding: 'utf8' },
  );
  expect(inst.status, inst.stderr).toBe(0);
  if (existsSync(join(GO_CNI, 'portmap'))) symlinkSync(join(GO_CNI, 'portmap'), join(T, 'cni-bin', 'portmap'));
  writeFileSync(join(T, 'config.toml'), config());
  const image = buildPauseImage(join(T, 'image'), PAUSE);

  host = createNetns('cri');
  const script = [
    'set -e',
    ...privateVarLib(T),
    'mount -t tmpfs tmpfs /run',
    `exec containerd --config ${T}/config.toml`,
  ].join('\n');
  // nsenter and unshare exec (no --fork), sh execs containerd: this child's PID is containerd's
  containerd = spawn('nsenter', [`--net=${host.path}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  containerd.stdout!.on('data', (c: Buffer) => log.push(c.toString()));
  containerd.stderr!.on('data', (c: Buffer) => log.push(c.toString()));
  await eventually(async () => (existsSync(join(T, 'containerd.sock')) ? true : undefined), 'the containerd socket');
  cri = new CriClient(join(T, 'containerd.sock'));
  const v = await eventually(() => cri.version(), 'CRI Version');
  expect(v.runtimeName).toBe('containerd');
  const imp = spawnSync('ctr', ['--address', join(T, 'containerd.sock'), '-n', 'k8s.io', 'images', 'import', '--snapshotter', 'native', image], { encoding: 'utf8' });
  expect(imp.status, imp.stderr).toBe(0);
  await eventually(async () => ((await cri.imageStatus(PAUSE)) !== '' ? true : undefined), 'the CRI image store to list the sandbox image');
  await eventually(async () => ((await cri.status()).find((c) => c.type === 'NetworkReady')?.status ? true : undefined), 'NetworkReady (our conflist loaded)');
});

afterAll(async () => {
  if (!usable) return;
  for (const id of sandboxes) {
    await cri
      ?.stopPodSandbox(id)
      .then(() => cri.removePodSandbox(id))
      .catch(() => {});
  }
  cri?.close();
  if (containerd?.pid && containerd.exitCode === null) {
    const exited = new Promise((r) => containerd!.once('exit', r));
    containerd.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (containerd.exitCode === null) containerd.kill('SIGKILL');
  }
  for (const pid of ourProcesses()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  removeCgroups();
  cleanupNetns();
  // a shim that outlived containerd may still hold a mount in its (dying) namespace: retry the removal
  if (T) await eventually(async () => (rmSync(T, { recursive: true, force: true }), true), `removing ${T}`, 10_000).catch(() => {});
});

describe.skipIf(!usable)('containerd 1.6 CRI → our CNI chain (the kubelet path)', () => {
  it('runs two pod sandboxes on the flannel subnet, they reach each other and the node, and Stop+Remove release everything', async () => {
    const pods = [];
    for (const name of ['web-a', 'web-b']) {
      const id = await cri.runPodSandbox({
        metadata: { name, uid: `uid-${name}-${process.pid}`, namespace: 'default' },
        hostname: name,
        logDirectory: join(T, 'logs', name),
        labels: { app: name },
        cgroupParent: CGROUP_PARENT,
      });
      sandboxes.push(id);
      const st = await cri.podSandboxStatus(id, true);
      expect(st.state).toBe('SANDBOX_READY');
      expect(st.metadata.name).toBe(name);
      const netns = netnsPathOf(st);
      expect(netns, JSON.stringify(st.info).slice(0, 500)).toMatch(new RegExp(`^${T}/state/`));
      pods.push({ id, ip: st.ips[0]!, ips: st.ips, netns: netns! });
    }
    const gw = `10.244.${subnet}.1`;
    for (const p of pods) {
      // the address CRI reports is the one host-local gave from this node's flannel subnet
      expect(p.ips).toHaveLength(1);
      expect(p.ip).toMatch(new RegExp(`^10\\.244\\.${subnet}\\.\\d+$`));
      expect(p.ip).not.toBe(gw);
      expect(existsSync(join(T, 'ipam/cbr0', p.ip))).toBe(true);
      const addr = inPod(p.netns, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      expect(addr.out).toContain(`inet ${p.ip}/24`);
      const routes = inPod(p.netns, ['ip', 'route']).out;
      expect(routes).toContain(`default via ${gw} dev eth0`);
      expect(routes).toContain(`10.244.0.0/16 via ${gw} dev eth0`);
    }
    expect(pods[0]!.ip).not.toBe(pods[1]!.ip);
    // the node side: cni0 holds the gateway, one veth per pod, flannel kept one scratch file per sandbox
    expect(host.exec(['ip', '-br', 'addr', 'show', 'dev', 'cni0']).stdout).toContain(`${gw}/24`);
    expect(host.exec(['ip', '-br', 'link']).stdout.match(/^veth/gm)).toHaveLength(2);
    expect(readdirSync(join(T, 'flannel')).filter((f) => !f.startsWith('.')).sort()).toEqual(pods.map((p) => p.id).sort());

    // pod → pod, both ways; node → pod; pod → node (its gateway)
    const ping = (from: { netns: string } | 'node', to: string) => {
      const argv = ['ping', '-c', '1', '-W', '2', to];
      const r = from === 'node' ? host.exec(argv, { allowFail: true }) : inPod(from.netns, argv);
      return `${'out' in r ? r.out : r.stdout + r.stderr}`;
    };
    expect(ping(pods[0]!, pods[1]!.ip)).toContain('1 received');
    expect(ping(pods[1]!, pods[0]!.ip)).toContain('1 received');
    for (const p of pods) {
      expect(ping('node', p.ip)).toContain('1 received');
      expect(ping(p, gw)).toContain('1 received');
    }

    // the kubelet's teardown: Stop (CNI DEL, sandbox killed), then Remove
    for (const p of pods) {
      await cri.stopPodSandbox(p.id);
      expect((await cri.podSandboxStatus(p.id)).state).toBe('SANDBOX_NOTREADY');
      await cri.removePodSandbox(p.id);
      const gone = await cri.podSandboxStatus(p.id).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(gone).toBeInstanceOf(GrpcError);
      expect((gone as GrpcError).code).toBe(NOT_FOUND);
      expect(existsSync(p.netns)).toBe(false);
    }
    sandboxes.length = 0;
    expect(readdirSync(join(T, 'ipam/cbr0')).filter((f) => f.startsWith('10.'))).toEqual([]);
    expect(readdirSync(join(T, 'flannel'))).toEqual([]);
    expect(host.exec(['ip', '-br', 'link']).stdout).not.toMatch(/^veth/m);
    // and the sandboxes' processes are gone: only containerd itself still names our temp dir
    await eventually(async () => (ourProcesses().every((pid) => pid === containerd!.pid) ? true : undefined), 'the shims to exit');
  });
});
