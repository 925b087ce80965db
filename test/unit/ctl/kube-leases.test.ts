// flannelctl leases --kube-subnet-mgr: the leases are flannel's Node annotations and podCIDRs, read
// from the API-server double (in-process, plain HTTP on loopback); this node is --node-name's.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCtl } from '../../../ctl/cli.js';
import { FakeKernel } from '../../../shared/kernel/fake/fake-kernel.js';
import { FakeIptables } from '../../../shared/kernel/fake/fake-iptables.js';
import { FakeNft } from '../../../shared/kernel/fake/fake-nft.js';
import { type ApiServerDouble, startApiServer } from '../../kube-apiserver/index.js';

const P = 'flannel.alpha.coreos.com';
const flannelNode = (name: string, cidr: string, ip: string, mac: string) => ({
  name,
  podCIDRs: [cidr],
  annotations: {
    [`${P}/kube-subnet-manager`]: 'true',
    [`${P}/public-ip`]: ip,
    [`${P}/backend-type`]: 'vxlan',
    [`${P}/backend-data`]: JSON.stringify({ VNI: 1, VtepMAC: mac }),
  },
});

describe('flannelctl leases in kube mode', () => {
  let api: ApiServerDouble;
  let dir: string;
  beforeAll(async () => {
    api = await startApiServer();
    api.addNode(flannelNode('n1', '10.244.0.0/24', '192.168.1.1', '02:00:00:00:00:01'));
    api.addNode(flannelNode('n2', '10.244.1.0/24', '192.168.1.2', '02:00:00:00:00:02'));
    api.addNode({ name: 'not-flannel', podCIDRs: ['10.244.2.0/24'] });
    dir = mkdtempSync(join(tmpdir(), 'flannelctl-kube-'));
    writeFileSync(join(dir, 'net-conf.json'), '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
  });
  afterAll(async () => {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(argv: string[]) {
    const out = { stdout: '', stderr: '' };
    const code = await runCtl({
      argv,
      env: {},
      stdout: (s) => (out.stdout += s),
      stderr: (s) => (out.stderr += s),
      kernel: () => new FakeKernel(),
      iptables: (f) => new FakeIptables(f),
      nft: () => new FakeNft(),
    });
    return { code, ...out };
  }

  it('lists flannel nodes only, with node names, this node marked', async () => {
    const r = await run(['leases', '--kube-subnet-mgr', `--kube-api-url=${api.url}`, `--net-config-path=${join(dir, 'net-conf.json')}`, '--node-name=n2', `--subnet-file=${join(dir, 'none')}`, '-o', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([
      { me: false, subnet: '10.244.0.0/24', publicIP: '192.168.1.1', backend: 'vxlan', key: '02:00:00:00:00:01', reservation: false, node: 'n1' },
      { me: true, subnet: '10.244.1.0/24', publicIP: '192.168.1.2', backend: 'vxlan', key: '02:00:00:00:00:02', reservation: false, node: 'n2' },
    ]);
  });

  it('an unreachable API server is one error line', async () => {
    const r = await run(['leases', '--kube-subnet-mgr', '--kube-api-url=http://127.0.0.1:1', `--net-config-path=${join(dir, 'net-conf.json')}`]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('flannelctl leases: cannot read the leases from kubernetes http://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1\n');
  });
});
