// The lab on the wireguard backend, dual stack (v4 and v6 pods): 3 hosts, 1 pod each, our flanneld
// running userspace wireguard-go (this kernel has no WireGuard), each host's flanneld in a private
// mount namespace for wireguard-go's UAPI socket (scripts/lab/lib.sh lab_private_wg_ns).
// Shows: the full ping matrix in both families; the lease JSON as Go writes it; only WireGuard UDP on
// the underlay (no pod address in the clear); a killed wireguard-go restarted with traffic back; a
// restarted flanneld keeping its public key; a lease removed taking its peer with it, and the device
// deleted when flanneld exits. Namespaces fl-e2w-<pid>-*, state in a temp dir; afterAll tears it down.
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/until.js';
import { labCanRun, leaseKey, newLab } from './lab-harness.js';

const canRun = labCanRun(['tcpdump', 'wireguard-go', 'wg', 'nsenter', 'unshare']);
const CONFIG = '{"EnableIPv6":true,"Network":"10.244.0.0/16","IPv6Network":"fd10:244::/56","Backend":{"Type":"wireguard"}}';
const L = newLab({ name: 'wireguard', prefix: 'fl-e2w', hosts: 3, pods: 1, config: CONFIG });
const { run: lab, inHost } = L;
const WAIT = { ms: 30_000, every: 100 };

const subnets = new Map<number, string>();
const subnet = (i: number): string => {
  if (!subnets.has(i)) subnets.set(i, lab(`lab_host_subnet ${i}`).stdout.trim());
  return subnets.get(i)!;
};
/** host i's lease value: a dual-stack lease's key is `<v4>-<len>&<v6>-<len>`, so found by its v4 prefix */
const leaseOf = (i: number): string => lab(`lab_etcdctl get --prefix --print-value-only ${leaseKey(subnet(i))}`).stdout.trim();
const wg = (i: number, args: string): string => lab(`lab_wg ${i} ${args}`, true).stdout.trim();
const podIP = (i: number): string => lab(`lab_pod_ip ${i} 1`).stdout.trim();
const podIP6 = (i: number): string => lab(`lab_pod_ip6 ${i} 1`).stdout.trim();
/** the latest wireguard-go PID flanneld on host i logged for flannel-wg */
const wgGoPid = (i: number): number | undefined => {
  const m = [...L.flanneldLog(i).matchAll(/started \S+ for flannel-wg \(pid (\d+)\)/g)];
  return m.length > 0 ? Number(m[m.length - 1]![1]) : undefined;
};

describe.skipIf(!canRun)('the lab on WireGuard (userspace wireguard-go), dual stack', () => {
  beforeAll(() => {
    lab('lab_up');
  }, 180_000);
  afterAll(() => {
    L.down();
  });

  it('every pod pings every pod, over IPv4 and IPv6', async () => {
    // A first handshake initiation that reaches a host before it has the sender as a peer is dropped, and
    // WireGuard retries it only after REKEY_TIMEOUT (5 s): a pair can fail for that long after lab_up.
    let r = lab('lab_ping_matrix', true);
    if (r.stdout.includes('FAIL')) {
      await until(() => !(r = lab('lab_ping_matrix', true)).stdout.includes('FAIL'), `a full ping matrix once handshakes settle; last:\n${r.stdout}`, { ms: 20_000, every: 500 });
    }
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout.match(/\bok\b/g)).toHaveLength(18);
    expect(L.flanneldLog(1)).toMatch(/the kernel has no WireGuard .*; using userspace \S*wireguard-go/);
  });

  it('writes the lease as Go does, with the key wg shows, and keeps the key file private', () => {
    const pub = wg(1, 'show flannel-wg public-key');
    expect(pub).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(wg(1, 'show flannel-wg-v6 public-key')).toBe(pub);
    expect(leaseOf(1)).toBe(
      `{"PublicIP":"192.168.100.1","PublicIPv6":"fd00:100::1","BackendType":"wireguard","BackendData":{"PublicKey":"${pub}","Port":51820},"BackendV6Data":{"PublicKey":"${pub}","Port":51821}}`,
    );
    const keyFile = join(L.dir, 'h1', 'state', 'wgkey');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8')).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(L.flanneldLog(1)).not.toContain(readFileSync(keyFile, 'utf8'));
    // one peer per other host, AllowedIPs its subnet, Endpoint its PublicIP:port
    const dump = wg(1, 'show flannel-wg dump');
    expect(dump).toContain(`192.168.100.2:51820\t${subnet(2)}`);
    expect(dump).toContain(`192.168.100.3:51820\t${subnet(3)}`);
  });

  it('the underlay carries only WireGuard UDP between the hosts: no pod address in the clear', async () => {
    const cap = spawn('ip', ['netns', 'exec', L.ns('h1'), 'tcpdump', '-i', 'eth0', '-nn', '-l', 'not host 192.168.100.254'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    cap.stdout.on('data', (d) => (out += d));
    cap.stderr.on('data', (d) => (err += d));
    const exited = new Promise((r) => cap.once('exit', r));
    try {
      await until(() => err.includes('listening on'), 'tcpdump to listen', WAIT);
      const p4 = L.ping('h1p1', podIP(2));
      const p6 = L.ping('h1p1', podIP6(3));
      await until(() => p4.replies() >= 5 && p6.replies() >= 5, 'pod pings over both families', WAIT);
      await p4.stop();
      await p6.stop();
    } finally {
      cap.kill('SIGINT');
      await exited;
    }
    const lines = out.split('\n').filter((l) => /\bIP6? /.test(l));
    expect(lines.some((l) => /192\.168\.100\.1\.51820 > 192\.168\.100\.2\.51820: UDP/.test(l))).toBe(true);
    expect(lines.some((l) => /fd00:100::1\.51821 > fd00:100::3\.51821: UDP/.test(l))).toBe(true);
    // no pod address and no ICMP echo in the clear: everything between the hosts is WireGuard's UDP
    expect(out).not.toMatch(/10\.244\.|fd10:244:/);
    expect(out).not.toMatch(/ICMP echo|ICMP6, echo/);
    const hostToHost = lines.filter((l) => /(192\.168\.100|fd00:100::)\S* > (192\.168\.100|fd00:100::)/.test(l) && !/ICMP6, neighbor|ARP/.test(l));
    expect(hostToHost.length).toBeGreaterThan(0);
    for (const l of hostToHost) expect(l).toMatch(/\.5182[01] > \S+\.5182[01]: UDP/);
  });

  it('a killed wireguard-go is started again and traffic recovers', async () => {
    const pid = wgGoPid(1)!;
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('wireguard-go');
    process.kill(pid, 'SIGKILL');
    await until(() => (wgGoPid(1) ?? pid) !== pid && /restarted \(pid \d+\); re-applying/.test(L.flanneldLog(1)), 'wireguard-go restarted', WAIT);
    await until(() => wg(1, 'show flannel-wg peers').split('\n').filter(Boolean).length === 2 && wg(1, 'show flannel-wg-v6 peers').split('\n').filter(Boolean).length === 2, 'the peers re-applied', WAIT);
    const p = L.ping('h1p1', podIP(2));
    try {
      await until(() => p.replies() >= 2, 'pings from h1p1 to h2p1 after the restart', WAIT);
    } finally {
      await p.stop();
    }
  });

  it('a restarted flanneld keeps its public key, and peers need no update', async () => {
    const before = wg(2, 'show flannel-wg public-key');
    const leaseBefore = leaseOf(2);
    lab('lab_kill flanneld-h2 TERM');
    // Go's cleanup: the devices go with the daemon
    expect(inHost(2, ['ip', 'link', 'show', 'flannel-wg']).status).not.toBe(0);
    lab('lab_flanneld_start 2');
    await until(() => wg(2, 'show flannel-wg public-key') === before && wg(2, 'show flannel-wg peers').split('\n').filter(Boolean).length === 2, 'h2 back with its key and peers', WAIT);
    expect(leaseOf(2)).toBe(leaseBefore);
    const p = L.ping('h1p1', podIP(2));
    try {
      await until(() => p.replies() >= 2, 'pings from h1p1 to h2p1 after h2 restarted', WAIT);
    } finally {
      await p.stop();
    }
  });

  it('a lease removed removes its peer', async () => {
    const key3 = wg(3, 'show flannel-wg public-key');
    expect(wg(1, 'show flannel-wg peers')).toContain(key3);
    lab('lab_kill flanneld-h3 TERM');
    expect(lab(`lab_etcdctl del --prefix ${leaseKey(subnet(3))}`).stdout.trim()).toBe('1');
    await until(() => !wg(1, 'show flannel-wg peers').includes(key3) && !wg(1, 'show flannel-wg-v6 peers').includes(key3), "h3's peer gone from h1", WAIT);
    expect(wg(1, 'show flannel-wg peers').split('\n').filter(Boolean)).toHaveLength(1);
  });
});
