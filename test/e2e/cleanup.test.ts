// flannelctl cleanup on the lab: 2 hosts on vxlan with --ip-masq and --ip-blackhole-route (so h1 has
// a device, peer routes, neighbour and FDB entries, nat and filter chains, a blackhole route,
// subnet.env and state files). cleanup refuses while h1's flanneld runs; once it is stopped, one run
// removes everything of ours from h1's namespace and releases the lease, and a second run has nothing
// to do. Namespaces fl-ecl-<pid>-*, state in a temp dir; afterAll tears it all down.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin } from '../helpers/paths.js';
import { labCanRun, leaseKey, newLab } from './lab-harness.js';

const canRun = labCanRun(['iptables-save', 'nft'], false);
const L = newLab({ name: 'cleanup', prefix: 'fl-ecl', hosts: 2, pods: 0 });
L.env.LAB_FLANNELD_ARGS = '--ip-masq --ip-blackhole-route';
const { run: lab } = L;
const h1 = (...argv: string[]) => L.inHost(1, argv);
const out = (...argv: string[]) => h1(...argv).stdout;

function cleanup() {
  const d = join(L.dir, 'h1');
  const r = h1(bin('flannelctl'), 'cleanup', '--etcd-endpoints=http://192.168.100.254:2379', `--subnet-file=${d}/subnet.env`, `--data-dir=${d}/state`, '--release-lease');
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Everything of flanneld's that h1's namespace shows, one line each ('' when nothing). */
function ours(subnet: string): string[] {
  return [
    ...out('ip', '-d', 'link').split('\n').filter((l) => /flannel|vxlan/.test(l)),
    ...out('ip', 'route', 'show', 'table', 'all').split('\n').filter((l) => /flannel|blackhole/.test(l) || l.startsWith(subnet)),
    ...out('ip', 'neigh', 'show', 'nud', 'permanent').split('\n'),
    ...out('bridge', 'fdb', 'show').split('\n').filter((l) => /flannel/.test(l)),
    ...out('iptables-save').split('\n').filter((l) => /FLANNEL|flanneld/.test(l)),
    ...out('ip6tables-save').split('\n').filter((l) => /FLANNEL|flanneld/.test(l)),
    ...out('nft', 'list', 'ruleset').split('\n').filter((l) => /flannel/i.test(l)),
  ].filter((l) => l.trim() !== '');
}

describe.skipIf(!canRun)('flannelctl cleanup on the lab', () => {
  let subnet = '';
  beforeAll(() => {
    lab('lab_up');
    subnet = L.host(1).subnet;
  }, 120_000);
  afterAll(() => {
    L.down();
  });

  it('refuses while flanneld runs in the namespace, and changes nothing', () => {
    const before = ours(subnet);
    expect(before.join('\n')).toMatch(/flannel\.100/);
    expect(before.join('\n')).toMatch(/FLANNEL-POSTRTG/);
    expect(before.join('\n')).toMatch(/blackhole/);
    const pid = lab('lab_flanneld_pid 1').stdout.trim();
    const r = cleanup();
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `flannelctl cleanup: refusing: flanneld (pid ${pid}) is running in this network namespace; stop it first (systemctl stop flanneld, or take the kube-flannel pod off this node), or pass --force\n`,
    );
    expect(ours(subnet)).toEqual(before);
  });

  it('removes everything of ours and releases the lease; a second run has nothing to do', () => {
    lab('lab_kill flanneld-h1');
    const d = join(L.dir, 'h1');
    expect(L.etcdGet(leaseKey(subnet))).toContain('"PublicIP":"192.168.100.1"');
    const r = cleanup();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l !== '')).toEqual([
      `released lease ${subnet} (found by ${d}/subnet.env)`,
      'deleted device flannel.100 (vxlan) with its routes, neighbour and FDB entries',
      `deleted route blackhole ${subnet}`,
      'deleted iptables nat/FLANNEL-POSTRTG and the jump to it',
      'deleted iptables filter/FLANNEL-FWD and the jump to it',
      `removed ${d}/subnet.env`,
      `removed ${d}/state/flannel.100.mac`,
      `removed ${d}/state/flannel.100.mac.node`,
      `removed ${d}/state/network.json`,
    ]);
    expect(ours(subnet)).toEqual([]);
    expect(existsSync(join(d, 'subnet.env'))).toBe(false);
    expect(readdirSync(join(d, 'state'))).toEqual([]);
    expect(L.etcdGet(leaseKey(subnet))).toBe('');
    // the peer's lease is not ours
    expect(L.etcdGet(leaseKey(L.host(2).subnet))).toContain('"PublicIP":"192.168.100.2"');

    const again = cleanup();
    expect(again).toEqual({ status: 0, stdout: 'nothing to clean up\n', stderr: '' });
  });
});
