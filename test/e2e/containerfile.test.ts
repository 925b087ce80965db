// /Containerfile builds offline: deploy/image/stage-rootfs.sh stages node, its libraries, the tools
// flanneld execs and dist/bin from this machine, and `podman build` turns that into flannel-ts:dev
// FROM scratch. The image then does what kube-flannel.yml asks of it: flanneld runs (--version), the
// iptables/ip it execs run, and install-cni (the init container) puts working CNI executables into a
// host directory mounted at /host/opt/cni/bin.
//
// Safety: podman's storage (--root/--runroot/--tmpdir, vfs) and containers.conf are under a temp dir,
// never the machine's default storage; podman runs in a private mount namespace where /run is a fresh
// tmpfs and /var/lib an overlay with a tmpfs upper layer (podman 4.3 puts libcni's cache and lock
// files there), and every container runs with --network none (no CNI call, no device anywhere).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, ensureBuilt, tempDir } from '../integration/flannel/helpers.js';
import { ROOT } from '../helpers/paths.js';
import { privateVarLib } from './private-mounts.js';

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const usable = process.getuid?.() === 0 && ['podman', 'runc', 'unshare', 'ldd', 'ip', 'iptables', 'nft', 'flock'].every(have);
const IMAGE = 'localhost/flannel-ts:dev';

let T: string;

/** Runs podman commands (one per line) in the private mount namespace with the private storage. */
function podman(lines: string[]) {
  const P = `podman --root ${T}/root --runroot ${T}/runroot --tmpdir ${T}/tmp --storage-driver vfs`;
  const script = [
    'set -e',
    ...privateVarLib(T),
    'mount -t tmpfs tmpfs /run',
    `export CONTAINERS_CONF=${T}/containers.conf TMPDIR=${T}/tmp`,
    ...lines.map((l) => l.replaceAll('$P', P)),
  ].join('\n');
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 170_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
}

beforeAll(() => {
  if (!usable) return;
  ensureBuilt('flanneld', 'flannel', 'bridge', 'host-local', 'loopback', 'install-cni');
  T = tempDir('containerfile-e2e');
  for (const d of ['root', 'runroot', 'tmp', 'ovl', 'ctx', 'hostbin']) mkdirSync(join(T, d));
  writeFileSync(
    join(T, 'containers.conf'),
    [
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${T}/events.log"`,
      '[network]',
      'network_backend = "cni"',
      `network_config_dir = "${T}/net.d"`,
      '[containers]',
      'default_ulimits = ["nofile=20000:20000", "nproc=1024:1024"]',
      '',
    ].join('\n'),
  );
});

afterAll(() => {
  if (T) rmSync(T, { recursive: true, force: true });
});

describe.skipIf(!usable)('Containerfile, built offline', () => {
  it('builds flannel-ts:dev FROM scratch; flanneld, its tools and install-cni run in it', () => {
    const stage = spawnSync(join(ROOT, 'deploy/image/stage-rootfs.sh'), [join(T, 'ctx')], { encoding: 'utf8' });
    expect(stage.status, stage.stderr).toBe(0);
    const run = (entrypoint: string, args: string) => `$P run --rm --network none --entrypoint ${entrypoint} ${IMAGE} ${args}`;
    const r = podman([
      `$P build -q -f ${ROOT}/Containerfile -t ${IMAGE} ${T}/ctx`,
      'echo "== version"',
      `$P run --rm --network none ${IMAGE} --version 2>&1`,
      'echo "== tools"',
      run('/bin/sh', `-c 'iptables --version; ip -V'`),
      'echo "== install"',
      `$P run --rm --network none -v ${T}/hostbin:/host/opt/cni/bin --entrypoint /opt/bin/install-cni ${IMAGE} --cni-bin-dir=/host/opt/cni/bin --plugins=flannel,loopback`,
      'echo "== again"',
      `$P run --rm --network none -v ${T}/hostbin:/host/opt/cni/bin --entrypoint /opt/bin/install-cni ${IMAGE} --cni-bin-dir=/host/opt/cni/bin --plugins=flannel,loopback`,
      'echo "== plugin"',
      `echo '{"cniVersion":"0.3.1"}' | $P run --rm -i --network none -e CNI_COMMAND=VERSION --entrypoint /opt/bin/flannel ${IMAGE}`,
    ]);
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const section = (name: string) => r.stdout.split(`== ${name}\n`)[1]!.split('\n== ')[0]!;
    // the entrypoint is flanneld, whose --version is the package version
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(section('version').trim()).toContain(pkg.version);
    expect(section('tools')).toMatch(/^iptables v\d/m);
    expect(section('tools')).toMatch(/^ip utility, iproute2/m);
    // install-cni in the image wrote our executables into the host dir, byte for byte, and a second run is a no-op
    expect(section('install').trim()).toBe('install-cni: installed /host/opt/cni/bin/flannel\ninstall-cni: installed /host/opt/cni/bin/loopback');
    expect(section('again').trim()).toBe('install-cni: unchanged /host/opt/cni/bin/flannel\ninstall-cni: unchanged /host/opt/cni/bin/loopback');
    expect(readdirSync(join(T, 'hostbin')).sort()).toEqual(['flannel', 'loopback']);
    // Buffer.equals: toEqual walks a 107 MiB buffer element by element for minutes
    for (const p of ['flannel', 'loopback']) expect(readFileSync(join(T, 'hostbin', p)).equals(readFileSync(join(DIST, p))), p).toBe(true);
    // the plugin answers as a CNI executable inside the image too
    expect(JSON.parse(section('plugin')).supportedVersions).toContain('0.3.1');
    // and on this host, from where install-cni put it
    const v = spawnSync(join(T, 'hostbin/flannel'), [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"0.3.1"}', encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
  });
});
