// The built flanneld (dist/exe/flanneld; FLANNEL_TEST_BUILD=node: dist/bin/flanneld), run inside a network namespace of our own (with its own etcd there,
// since 127.0.0.1 in a netns is that namespace's loopback), with the alloc backend.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { until } from '../../helpers/until.js';
import { buildFlanneld, FLANNELD, hasDataDir } from './daemon-harness.js';

const SEED_ALLOC = '{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.0.0","SubnetMax":"10.99.0.0","Backend":{"Type":"alloc"}}';

interface Daemon {
  proc: ChildProcess;
  stderr: () => string;
  exit: Promise<number | null>;
}


describe.skipIf(!hasEtcd || !canUseNetns)('flanneld (built) with the alloc backend', () => {
  let ns: Netns;
  let etcd: TestEtcd;
  let dir: string;
  const daemons: Daemon[] = [];

  const run = (args: string[], env: Record<string, string> = {}): Daemon => {
    // never the machine's /var/lib/flannel: a private --data-dir unless the test names one
    if (!hasDataDir(args, { ...(process.env as Record<string, string>), ...env })) args = [...args, '--data-dir', mkdtempSync(join(dir, 'data-'))];
    const proc = spawn('ip', ['netns', 'exec', ns.name, FLANNELD, '--etcd-endpoints', etcd.endpoint, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    });
    let err = '';
    proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    const d = { proc, stderr: () => err, exit };
    daemons.push(d);
    return d;
  };
  const stop = async (d: Daemon) => {
    d.proc.kill('SIGTERM');
    return d.exit;
  };

  beforeAll(async () => {
    buildFlanneld();
    ns = createNetns('fld');
    // a veth pair with both ends in the namespace stands in for the host's NIC (needs no dummy kernel module)
    ns.exec(['ip', 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext1']);
    ns.exec(['ip', 'addr', 'add', '10.50.0.2/24', 'dev', 'ext0']);
    ns.exec(['ip', 'link', 'set', 'ext0', 'up']);
    ns.exec(['ip', 'link', 'set', 'ext1', 'up']);
    etcd = await startEtcd({ netns: ns.name });
    dir = mkdtempSync(join(tmpdir(), `flanneld-test-${process.pid}-`));
  });
  afterEach(async () => {
    for (const d of daemons.splice(0)) {
      if (d.proc.exitCode === null && d.proc.signalCode === null) {
        d.proc.kill('SIGKILL');
        await d.exit;
      }
    }
  });
  afterAll(async () => {
    await etcd?.stop();
    ns?.delete();
    cleanupNetns();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes subnet.env (0644, exact lines), serves /readyz, and exits 0 on SIGTERM leaving the lease', async () => {
    etcd.ctl(['put', '/coreos.com/network/config', SEED_ALLOC]);
    const file = join(dir, 'a', 'subnet.env');
    const d = run(['--iface', 'ext0', '--subnet-file', file, '--data-dir', join(dir, 'data'), '--healthz-ip', '127.0.0.1', '--healthz-port', '18081']);
    await until(() => existsSync(file), 'subnet.env');
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^FLANNEL_NETWORK=10\.0\.0\.0\/8\nFLANNEL_SUBNET=10\.(\d+)\.(\d+)\.1\/20\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o644);
    const subnet = text.match(/FLANNEL_SUBNET=(10\.\d+\.\d+)\.1\/20/)![1]!;
    const [, b, c] = subnet.split('.').map(Number) as [number, number, number];
    expect(b * 256 + c >= 10 * 256 && b * 256 + c <= 99 * 256).toBe(true);
    expect(c % 16).toBe(0);
    expect(etcd.ctl(['get', '--print-value-only', `/coreos.com/network/subnets/${subnet}.0-20`])).toBe('{"PublicIP":"10.50.0.2","PublicIPv6":null}\n');

    const ready = ns.exec(['curl', '-s', '-w', ' %{http_code}', 'http://127.0.0.1:18081/readyz']).stdout;
    expect(ready).toBe('flanneld is ready 200');
    expect(ns.exec(['curl', '-s', 'http://127.0.0.1:18081/healthz']).stdout).toBe('flanneld is running');

    expect(await stop(d)).toBe(0);
    expect(d.stderr()).toContain('Exiting cleanly...');
    // the lease stays (no revoke on exit)
    expect(etcd.ctl(['get', '--print-value-only', `/coreos.com/network/subnets/${subnet}.0-20`])).toContain('10.50.0.2');

    // a restart reuses the same subnet (reuse by PublicIP)
    const d2 = run(['--iface', 'ext0', '--subnet-file', file, '--data-dir', join(dir, 'data')]);
    await until(() => d2.stderr().includes('Running backend.'), 'second start');
    expect(d2.stderr()).toContain('for current IP (10.50.0.2), reusing');
    expect(readFileSync(file, 'utf8')).toContain(`FLANNEL_SUBNET=${subnet}.1/20`);
    expect(await stop(d2)).toBe(0);
  });

  it('--public-ip is what the lease advertises; FLANNELD_* env works', async () => {
    etcd.ctl(['put', '/p2/config', SEED_ALLOC]);
    const file = join(dir, 'b.env');
    const d = run(['--etcd-prefix', '/p2', '--subnet-file', file], { FLANNELD_IFACE: 'ext0', FLANNELD_PUBLIC_IP: '203.0.113.9' });
    await until(() => existsSync(file), 'subnet.env');
    const keys = etcd.ctl(['get', '--prefix', '/p2/subnets/']);
    expect(keys).toContain('{"PublicIP":"203.0.113.9","PublicIPv6":null}');
    expect(await stop(d)).toBe(0);
  });

  it('peer leases put with etcdctl show up in the daemon; junk does not crash it', async () => {
    etcd.ctl(['put', '/p3/config', SEED_ALLOC]);
    const file = join(dir, 'c.env');
    const d = run(['--etcd-prefix', '/p3', '--iface', 'ext0', '--subnet-file', file]);
    await until(() => d.stderr().includes('Running backend.'), 'start');
    etcd.ctl(['put', '/p3/subnets/10.20.0.0-20', '{"PublicIP":"10.50.0.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}']);
    etcd.ctl(['put', '/p3/subnets/junk', 'x']);
    etcd.ctl(['put', '/p3/subnets/10.21.0.0-20', '{oops']);
    await until(() => d.stderr().includes('Subnet added: 10.20.0.0/20'), 'peer event');
    etcd.ctl(['del', '/p3/subnets/10.20.0.0-20']);
    await until(() => d.stderr().includes('Subnet removed: 10.20.0.0/20'), 'peer removal');
    expect(d.proc.exitCode).toBeNull();
    expect(await stop(d)).toBe(0);
  });

  it('a malformed config is reported and retried until it is fixed', async () => {
    etcd.ctl(['put', '/p4/config', '{"Network":"10.0.0.0/29"}']);
    const file = join(dir, 'd.env');
    const d = run(['--etcd-prefix', '/p4', '--iface', 'ext0', '--subnet-file', file]);
    await until(() => d.stderr().includes("Couldn't fetch network config: network is too small. Minimum useful network prefix is /28"), 'error');
    etcd.ctl(['put', '/p4/config', SEED_ALLOC]);
    await until(() => existsSync(file), 'subnet.env after fix');
    expect(await stop(d)).toBe(0);
  });

  it('an unknown backend type exits 1 with Go message', async () => {
    etcd.ctl(['put', '/p5/config', '{"Network":"10.0.0.0/8","Backend":{"Type":"bogus"}}']);
    const d = run(['--etcd-prefix', '/p5', '--iface', 'ext0', '--subnet-file', join(dir, 'e.env')]);
    expect(await d.exit).toBe(1);
    expect(d.stderr()).toContain('unknown backend type: bogus');
  });

  it('20 daemons racing on one small network get 20 distinct subnets and none exits', async () => {
    etcd.ctl(['put', '/race/config', '{"Network":"10.7.0.0/22","SubnetLen":27,"Backend":{"Type":"alloc"}}']); // 31 subnets
    const files = Array.from({ length: 20 }, (_, i) => join(dir, `race-${i}.env`));
    const ds = files.map((f, i) => run(['--etcd-prefix', '/race', '--iface', 'ext0', '--public-ip', `192.168.7.${i + 1}`, '--subnet-file', f]));
    await until(() => files.every((f) => existsSync(f)), 'all subnet files', 60_000);
    const subnets = files.map((f) => readFileSync(f, 'utf8').match(/FLANNEL_SUBNET=(\S+)/)![1]);
    expect(new Set(subnets).size).toBe(20);
    expect(ds.every((d) => d.proc.exitCode === null)).toBe(true);
    expect(etcd.ctl(['get', '--prefix', '--keys-only', '/race/subnets/']).trim().split(/\n+/)).toHaveLength(20);
    const codes = await Promise.all(ds.map(stop));
    expect(codes).toEqual(Array(20).fill(0));
  }, 120_000);
});
