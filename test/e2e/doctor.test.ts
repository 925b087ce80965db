// flannelctl leases and doctor against the lab: 2 hosts on vxlan, 1 pod each. `leases` is read from
// h1 (table, JSON, an unreachable etcd). Then h1's flanneld is stopped (so nothing repairs what the
// test breaks; the data path it left stays, as after any flanneld exit) and h1 is broken one way at a
// time: each break gives its exact problem line from `doctor` run inside h1, and the fix gives a
// clean run again. Namespaces fl-edr-<pid>-*, state in a temp dir; afterAll tears it all down.
import { renameSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin } from '../helpers/paths.js';
import { labCanRun, newLab } from './lab-harness.js';

const canRun = labCanRun(['iptables']);
const L = newLab({ name: 'doctor', prefix: 'fl-edr', hosts: 2, pods: 1 });
const { run: lab } = L;
const ETCD = '--etcd-endpoints=http://192.168.100.254:2379';
const h1 = (...argv: string[]) => L.inHost(1, argv);
const h2 = (...argv: string[]) => L.inHost(2, argv);
const sh = (r: ReturnType<typeof h1>) => {
  if (r.status !== 0) throw new Error(`${r.stderr}${r.stdout}`);
  return r.stdout;
};

/** flannelctl inside h1, with h1's paths (never the machine's /run/flannel, /etc/cni, /opt/cni). */
function ctl(cmd: string, ...extra: string[]) {
  const d = join(L.dir, 'h1');
  const cniBin = `${labBin()}:/usr/lib/cni`;
  const r = h1(bin('flannelctl'), cmd, ETCD, `--subnet-file=${d}/subnet.env`, `--data-dir=${d}/state`, `--cni-conf-dir=${d}/net.d`, `--cni-bin-dir=${cniBin}`, '--public-ip=192.168.100.1', '--probe-timeout=1', ...extra);
  return { status: r.status, lines: r.stdout.split('\n').filter((l) => l !== ''), stdout: r.stdout, stderr: r.stderr };
}
const doctor = (...extra: string[]) => ctl('doctor', ...extra);
/** Where the lab's plugins are (the runtime's plugin dir here). */
const labBin = () => lab('echo "$LAB_BIN"').stdout.trim();

/** Breaks h1 with `brk`, expects `line` among doctor's problems (only lines of `also` checks besides), then fixes and expects a clean run. */
function expectProblem(brk: () => void, fix: () => void, line: string | RegExp, also: string[] = []) {
  brk();
  try {
    const r = doctor();
    expect(r.status, r.stdout + r.stderr).toBe(1);
    if (typeof line === 'string') expect(r.lines).toContain(line);
    else expect(r.lines.some((l) => line.test(l)), r.stdout).toBe(true);
    const allowed = [String(line).split(':')[0]!.replace(/^\//, ''), ...also];
    for (const l of r.lines) expect(allowed, l).toContain(l.split(':')[0]);
  } finally {
    fix();
  }
  const clean = doctor();
  expect(clean.stdout + clean.stderr).toMatch(/^no problems found/);
  expect(clean.status).toBe(0);
}

describe.skipIf(!canRun)('flannelctl leases and doctor on the lab', () => {
  let s1 = '';
  let s2 = '';
  let gw2 = '';
  let mac2 = '';
  beforeAll(() => {
    lab('lab_up');
    s1 = L.host(1).subnet;
    ({ subnet: s2, gw: gw2, mac: mac2 } = L.host(2));
  }, 120_000);
  afterAll(() => {
    L.down();
  });

  it('leases: the table marks this host, -o json has every field, an unreachable etcd is one error line', () => {
    const t = ctl('leases');
    expect(t.status, t.stderr).toBe(0);
    expect(t.lines[0]).toMatch(/^\s+SUBNET\s+PUBLIC-IP\s+BACKEND\s+VTEPMAC\/KEY\s+EXPIRES\s+AGE\s+NODE$/);
    const row = (s: string) => t.lines.find((l) => l.includes(` ${s} `)) ?? '';
    expect(row(s1)).toMatch(new RegExp(`^\\*\\s+${s1}\\s+192\\.168\\.100\\.1\\s+vxlan\\s+${L.host(1).mac}\\s+in 23h5\\dm\\s+\\d+s\\s+-$`));
    expect(row(s2)).toMatch(new RegExp(`^\\s+${s2}\\s+192\\.168\\.100\\.2\\s+vxlan\\s+${mac2}\\s+in 23h5\\dm`));
    expect(t.lines).toHaveLength(3);

    const j = ctl('leases', '-o', 'json');
    expect(j.status, j.stderr).toBe(0);
    const views = JSON.parse(j.stdout) as Array<Record<string, unknown>>;
    const mine = views.find((v) => v.subnet === s1)!;
    expect(mine).toMatchObject({ me: true, publicIP: '192.168.100.1', backend: 'vxlan', key: L.host(1).mac, reservation: false });
    expect(Date.parse(String(mine.expires)) - Date.now()).toBeGreaterThan(23 * 3600_000);
    expect(views.find((v) => v.subnet === s2)).toMatchObject({ me: false, publicIP: '192.168.100.2', key: mac2 });

    const down = h1(bin('flannelctl'), 'leases', '--etcd-endpoints=http://192.168.100.254:1');
    expect(down.status).toBe(1);
    expect(down.stdout).toBe('');
    expect(down.stderr.trim().split('\n')).toEqual([
      'flannelctl leases: cannot read the leases from etcd http://192.168.100.254:1: etcd cluster is unavailable or misconfigured: etcd 192.168.100.254:1: connect ECONNREFUSED 192.168.100.254:1',
    ]);
  });

  it('doctor: a healthy host is clean, with its daemon running and after it stopped', () => {
    const r = doctor();
    expect(r.stdout + r.stderr).toBe(`no problems found (2 leases, this node's ${s1})\n`);
    expect(r.status).toBe(0);
    lab('lab_kill flanneld-h1');
    expect(doctor().status).toBe(0);
  });

  it('doctor: kernel drift (route, neighbour, FDB entry missing; a stale route)', () => {
    const restart = 'restart flanneld (it re-programs every peer at start)';
    // without the route, neighbour or FDB entry the overlay probe fails too
    expectProblem(
      () => sh(h1('ip', 'route', 'del', s2)),
      () => sh(h1('ip', 'route', 'replace', s2, 'via', gw2, 'dev', 'flannel.100', 'onlink')),
      `drift: no route to peer ${s2} (192.168.100.2) on flannel.100; fix: ${restart}, or: ip route replace ${s2} via ${gw2} dev flannel.100 onlink`,
      ['probe'],
    );
    expectProblem(
      () => sh(h1('ip', 'neigh', 'del', gw2, 'dev', 'flannel.100')),
      () => sh(h1('ip', 'neigh', 'replace', gw2, 'lladdr', mac2, 'dev', 'flannel.100', 'nud', 'permanent')),
      `drift: no neighbour entry for peer ${s2} (192.168.100.2): ${gw2} → ${mac2} on flannel.100; fix: ${restart}, or: ip neigh replace ${gw2} lladdr ${mac2} dev flannel.100 nud permanent`,
      ['probe'],
    );
    expectProblem(
      () => sh(h1('bridge', 'fdb', 'del', mac2, 'dev', 'flannel.100', 'dst', '192.168.100.2', 'self')),
      () => sh(h1('bridge', 'fdb', 'replace', mac2, 'dev', 'flannel.100', 'dst', '192.168.100.2', 'self', 'permanent')),
      `drift: no FDB entry for peer ${s2} (192.168.100.2): ${mac2} dst 192.168.100.2 on flannel.100; fix: ${restart}, or: bridge fdb replace ${mac2} dev flannel.100 dst 192.168.100.2 self permanent`,
      ['probe'],
    );
    expectProblem(
      () => sh(h1('ip', 'route', 'add', '10.250.0.0/20', 'via', '10.250.0.0', 'dev', 'flannel.100', 'onlink')),
      () => sh(h1('ip', 'route', 'del', '10.250.0.0/20')),
      `drift: stale route 10.250.0.0/20 dev flannel.100: no lease in the datastore accounts for it; fix: ${restart}, or delete it by hand`,
    );
  });

  it('doctor: the device, the MTU chain, subnet.env against the lease', () => {
    const mac1 = L.host(1).mac;
    expectProblem(
      () => sh(h1('ip', 'link', 'set', 'flannel.100', 'address', '02:00:00:00:00:99')),
      () => {
        sh(h1('ip', 'link', 'set', 'flannel.100', 'address', mac1));
        // a new device address flushes the device's neighbours: put the peer's back
        sh(h1('ip', 'neigh', 'replace', gw2, 'lladdr', mac2, 'dev', 'flannel.100', 'nud', 'permanent'));
      },
      `device: flannel.100 has MAC 02:00:00:00:00:99 but this node's lease advertises VtepMAC ${mac1}: peers send to a MAC nobody has; fix: restart flanneld: it updates the lease with the device's MAC`,
      ['probe', 'drift'],
    );
    expectProblem(
      () => sh(h1('ip', 'link', 'set', 'eth0', 'mtu', '1400')),
      () => sh(h1('ip', 'link', 'set', 'eth0', 'mtu', '1500')),
      'mtu: flannel.100 has MTU 1450 but the underlay eth0 (MTU 1400) leaves 1350 after the 50-byte VXLAN encapsulation: large packets are dropped; fix: ip link set flannel.100 mtu 1350',
    );
    expectProblem(
      () => sh(h1('ip', 'link', 'set', 'cni0', 'mtu', '1500')),
      () => sh(h1('ip', 'link', 'set', 'cni0', 'mtu', '1450')),
      "mtu: cni0 has MTU 1500, more than the overlay's 1450; fix: ip link set cni0 mtu 1450, then recreate the pods",
    );
    const envFile = join(L.dir, 'h1', 'subnet.env');
    const text = readFileSync(envFile, 'utf8');
    expectProblem(
      () => writeFileSync(envFile, text.replace(/^FLANNEL_SUBNET=.*$/m, 'FLANNEL_SUBNET=10.250.0.1/20')),
      () => writeFileSync(envFile, text),
      `subnet-env: FLANNEL_SUBNET 10.250.0.0/20 in ${envFile} is not this node's lease ${s1}; fix: restart flanneld so it rewrites subnet.env, then recreate the pods of the old subnet`,
    );
  });

  it('doctor: a duplicate VtepMAC lease in etcd', () => {
    const key = '/coreos.com/network/subnets/10.250.0.0-20';
    expectProblem(
      () => lab(`lab_etcdctl put ${key} '{"PublicIP":"192.168.100.9","BackendType":"vxlan","BackendData":{"VNI":100,"VtepMAC":"${mac2}"}}'`),
      () => lab(`lab_etcdctl del ${key}`),
      `duplicates: leases ${[s2, '10.250.0.0/20'].sort().join(', ')} share VtepMAC ${mac2}: peers keep one FDB entry per MAC; fix: delete the stale lease, or remove <data-dir>/flannel.<VNI>.mac on the cloned node and restart its flanneld`,
      ['drift', 'probe'], // the new lease is not programmed here (the daemon is stopped), nor reachable
    );
  });

  it('doctor: ip_forward, the FORWARD policy without our rules', () => {
    expectProblem(
      () => sh(h1('sysctl', '-qw', 'net.ipv4.ip_forward=0')),
      () => sh(h1('sysctl', '-qw', 'net.ipv4.ip_forward=1')),
      'sysctl: net.ipv4.ip_forward is 0: this host does not route pod traffic; fix: sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d/)',
    );
    const jump = ['FORWARD', '-m', 'comment', '--comment', 'flanneld forward', '-j', 'FLANNEL-FWD'];
    expectProblem(
      () => {
        sh(h1('iptables', '-P', 'FORWARD', 'DROP'));
        sh(h1('iptables', '-D', ...jump));
      },
      () => {
        sh(h1('iptables', '-A', ...jump));
        sh(h1('iptables', '-P', 'FORWARD', 'ACCEPT'));
      },
      "forward: the FORWARD policy is DROP and flanneld's accept rules (FLANNEL-FWD for 10.0.0.0/8) are missing: pod traffic between hosts is dropped; fix: restart flanneld with --iptables-forward-rules=true (the default), or: iptables -A FORWARD -s 10.0.0.0/8 -j ACCEPT; iptables -A FORWARD -d 10.0.0.0/8 -j ACCEPT",
    );
  });

  it('doctor: VXLAN blocked on the way to a peer (its UDP port dropped)', () => {
    const rule = ['INPUT', '-p', 'udp', '--dport', '8472', '-j', 'DROP'];
    expectProblem(
      () => sh(h2('iptables', '-I', ...rule)),
      () => sh(h2('iptables', '-D', ...rule)),
      `probe: peer ${s2} (192.168.100.2) does not answer through VXLAN UDP 8472: no reply to a ping of its VTEP ${gw2}; UDP 8472 to 192.168.100.2 is not refused, so it is dropped on the way or by the peer's firewall, or the peer has no route back; fix: allow UDP 8472 between 192.168.100.1 and 192.168.100.2 (firewall, security group, hypervisor) and check flanneld on that peer`,
    );
  });

  it('doctor: a peer without a VXLAN socket answers port unreachable (its daemon stopped, its device down)', () => {
    lab('lab_kill flanneld-h2'); // nothing there brings the device back up behind the test
    expectProblem(
      () => sh(h2('ip', 'link', 'set', 'flannel.100', 'down')),
      () => {
        // down flushed h2's routes and neighbours on the device: its flanneld puts them back at start
        sh(h2('ip', 'link', 'set', 'flannel.100', 'up'));
        lab('lab_flanneld_start 2 && lab_wait_peers 2 1');
      },
      `probe: peer ${s2} (192.168.100.2) does not answer through VXLAN UDP 8472: no reply to a ping of its VTEP ${gw2}, and 192.168.100.2 answers UDP 8472 with port unreachable (no VXLAN device on that port there, or a firewall rejecting it); fix: allow UDP 8472 between 192.168.100.1 and 192.168.100.2 (firewall, security group, hypervisor) and check flanneld on that peer`,
    );
  });

  it('doctor: the CNI conflist missing where the runtime looks, a plugin missing', () => {
    const dir = join(L.dir, 'h1', 'net.d');
    const file = join(dir, '10-flannel.conflist');
    expectProblem(
      () => renameSync(file, `${file}.off`),
      () => renameSync(`${file}.off`, file),
      `cni: no CNI network config in ${dir}: the runtime cannot start pods; fix: install flannel's conflist (e.g. 10-flannel.conflist) into ${dir} (kube-flannel's install-cni does this), or pass --cni-conf-dir`,
    );
    // portmap (the conflist chains it) is not in our build dir alone
    const onlyOurs = labBin();
    const r = doctor(`--cni-bin-dir=${onlyOurs}`);
    expect(r.status).toBe(1);
    expect(r.lines).toEqual([`cni: CNI plugin portmap (needed by 10-flannel.conflist) is not in ${onlyOurs}; fix: install the portmap plugin into ${onlyOurs}, or pass --cni-bin-dir`]);
  });
});
