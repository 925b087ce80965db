// flannelctl's commands end to end over fakes: the datastore, the kernel, iptables, nft, the process list.
import { describe, expect, it } from 'vitest';
import { runCtl, type CtlWorld } from '../../../ctl/cli.js';
import type { Datastore, LeaseRow } from '../../../ctl/datastore.js';
import { FakeKernel } from '../../../shared/kernel/fake/fake-kernel.js';
import { FakeIptables } from '../../../shared/kernel/fake/fake-iptables.js';
import { FakeNft } from '../../../shared/kernel/fake/fake-nft.js';
import { parseAndCheckConfig } from '../../../daemon/subnet/config.js';
import { MAC1, MAC2, NOW, vxlanLease } from './fixtures.js';

function world(argv: string[], o: { rows?: LeaseRow[]; down?: string; running?: number[]; kernel?: FakeKernel; ipt?: FakeIptables } = {}) {
  const out = { stdout: '', stderr: '', released: [] as string[] };
  const ds: Datastore = {
    where: 'etcd http://e:2379',
    config: async () => parseAndCheckConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}'),
    leases: async () => {
      if (o.down) throw new Error(o.down);
      return o.rows ?? [];
    },
    release: async (l) => void out.released.push(String(l.subnet.base)),
    close: () => {},
  };
  const kernel = o.kernel ?? new FakeKernel();
  const ipt = o.ipt ?? new FakeIptables(4);
  const w: CtlWorld = {
    argv,
    env: {},
    stdout: (s) => (out.stdout += s),
    stderr: (s) => (out.stderr += s),
    kernel: () => kernel,
    iptables: (f) => (f === 4 ? ipt : new FakeIptables(6)),
    nft: () => new FakeNft(),
    openDatastore: async () => ds,
    running: () => (o.running ?? []).map((pid) => ({ pid, cmdline: 'flanneld' })),
    now: () => NOW,
  };
  return { w, out };
}

const rows = (): LeaseRow[] => [{ lease: vxlanLease('10.10.0.0/20', '192.168.100.1', MAC1) }, { lease: vxlanLease('10.10.16.0/20', '192.168.100.2', MAC2) }];

describe('flannelctl commands', () => {
  it('leases: the table with this node marked by --public-ip (no subnet.env here)', async () => {
    const { w, out } = world(['leases', '--public-ip=192.168.100.2', '--subnet-file=/nonexistent/subnet.env'], { rows: rows() });
    expect(await runCtl(w)).toBe(0);
    expect(out.stdout.split('\n').map((l) => l.slice(0, 3))).toEqual(['   ', '   ', '*  ', '']);
    expect(out.stderr).toBe('');
  });

  it('leases: an unreachable datastore is one error line and exit 1, nothing on stdout', async () => {
    const { w, out } = world(['leases'], { down: 'connect ECONNREFUSED 10.0.0.1:2379' });
    expect(await runCtl(w)).toBe(1);
    expect(out).toMatchObject({ stdout: '', stderr: 'flannelctl leases: cannot read the leases from etcd http://e:2379: connect ECONNREFUSED 10.0.0.1:2379\n' });
  });

  it('cleanup: refuses while flanneld runs here, touching nothing', async () => {
    const kernel = new FakeKernel();
    await kernel.batch([{ op: 'addVxlan', name: 'flannel.1', vni: 1, port: 0, local: '', learning: false }]);
    const { w, out } = world(['cleanup', '--subnet-file=/nonexistent/s.env', '--data-dir=/nonexistent'], { running: [42, 43], kernel });
    expect(await runCtl(w)).toBe(1);
    expect(out.stderr).toMatch(/^flannelctl cleanup: refusing: flanneld \(pid 42, 43\) is running in this network namespace; /);
    expect(await kernel.getLink('flannel.1')).toBeDefined();
  });

  it('cleanup: deletes our device and chains, leaves the rest; a second run has nothing to do', async () => {
    const kernel = new FakeKernel();
    await kernel.batch([
      { op: 'addVxlan', name: 'flannel.1', vni: 1, port: 0, local: '', learning: false },
      { op: 'addBridge', name: 'cni0' },
    ]);
    const ipt = new FakeIptables(4);
    await ipt.ensureChain('filter', 'FLANNEL-FWD');
    await ipt.ensureRule('filter', 'FORWARD', ['-m', 'comment', '--comment', 'flanneld forward', '-j', 'FLANNEL-FWD']);
    await ipt.ensureRule('filter', 'FORWARD', ['-j', 'KUBE-FORWARD']);
    const argv = ['cleanup', '--subnet-file=/nonexistent/s.env', '--data-dir=/nonexistent', '--force'];
    const first = world(argv, { kernel, ipt, running: [42] });
    expect(await runCtl(first.w)).toBe(0);
    expect(first.out.stdout).toBe('deleted device flannel.1 (vxlan) with its routes, neighbour and FDB entries\ndeleted iptables filter/FLANNEL-FWD and the jump to it\n');
    expect((await kernel.listLinks()).map((l) => l.name)).toContain('cni0');
    expect(await kernel.getLink('flannel.1')).toBeUndefined();
    expect(await ipt.chainExists('filter', 'FLANNEL-FWD')).toBe(false);
    expect(await ipt.hasRule('filter', 'FORWARD', ['-j', 'KUBE-FORWARD'])).toBe(true);
    expect((await ipt.listRules('filter', 'FORWARD')).join('\n')).not.toContain('FLANNEL');
    const second = world(argv, { kernel, ipt });
    expect(await runCtl(second.w)).toBe(0);
    expect(second.out).toMatchObject({ stdout: 'nothing to clean up\n', stderr: '' });
  });

  it('usage errors exit 2', async () => {
    const { w, out } = world(['frobnicate']);
    expect(await runCtl(w)).toBe(2);
    expect(out.stderr).toMatch(/^flannelctl: unknown command "frobnicate"\nUsage:/);
  });
});
