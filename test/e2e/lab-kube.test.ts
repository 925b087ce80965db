// The lab in Kubernetes mode (LAB_MODE=kube): the API-server double in the underlay namespace (HTTPS,
// bearer tokens, kube-flannel's RBAC), one Node per host with its podCIDR, our flanneld
// --kube-subnet-mgr on each host with in-cluster env and service account files, pods through our CNI
// chain. Checks the ping matrix, flannel's annotations and condition on the Nodes, that flanneld needed
// nothing beyond kube-flannel's ClusterRole, and that a Node deleted in the API takes its routes away.
// Namespaces fl-e2k-<pid>-*, state in a temp dir; afterAll tears it all down.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';
import { until } from '../helpers/until.js';
import { labCanRun, newLab } from './lab-harness.js';

const L = newLab({ name: 'kube', prefix: 'fl-e2k', hosts: 2, pods: 1 });
L.env.LAB_MODE = 'kube';
L.env.LAB_KUBE_BIN = join(L.dir, 'kube-apiserver.mjs');
const { run: lab } = L;

const canRun = labCanRun(['curl']);
if (!canRun) rmSync(L.dir, { recursive: true, force: true });
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;

interface Node {
  metadata: { name: string; annotations: Record<string, string> };
  spec: { podCIDR: string };
  status: { conditions: { type: string; status: string; reason: string }[] };
}
interface Req {
  method: string;
  path: string;
  user: string;
  status: number;
}

describe.skipIf(!canRun)('the lab in Kubernetes mode', () => {
  const call = (method: string, args = '[]') => JSON.parse(lab(`lab_kube_call ${method} '${args}'`).stdout) as unknown;
  const nodeName = (i: number) => L.ns(`h${i}`);

  beforeAll(() => {
    const b = spawnSync(process.execPath, [join(ROOT, 'test/kube-apiserver/build.mjs'), L.env.LAB_KUBE_BIN!], { encoding: 'utf8' });
    if (b.status !== 0) throw new Error(`building the API-server double failed: ${b.stderr}`);
    lab('lab_up');
  }, 120_000);
  afterAll(() => {
    L.down();
  });

  it('pods ping across hosts; the Nodes carry flannel\'s annotations and condition; flanneld stayed inside kube-flannel\'s ClusterRole', () => {
    const m = lab('lab_ping_matrix', true);
    expect(m.stdout).not.toContain('FAIL');
    expect(m.stdout.match(/\bok\b/g)).toHaveLength(4);

    for (const i of [1, 2]) {
      const n = call('getNode', `["${nodeName(i)}"]`) as Node;
      const mac = lab(`lab_vtep_mac ${i}`).stdout.trim();
      expect(n.metadata.annotations).toMatchObject({
        'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
        'flannel.alpha.coreos.com/backend-type': 'vxlan',
        'flannel.alpha.coreos.com/public-ip': `192.168.100.${i}`,
      });
      expect(JSON.parse(n.metadata.annotations['flannel.alpha.coreos.com/backend-data']!)).toEqual({ VNI: 100, VtepMAC: mac });
      expect(n.status.conditions[0]).toMatchObject({ type: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp' });
      // the host's flannel subnet is its podCIDR
      expect(lab(`lab_host_subnet ${i}`).stdout.trim()).toBe(n.spec.podCIDR);
    }

    const reqs = JSON.parse(lab(`ip netns exec "$(lab_ns_ul)" curl -sS --fail --cacert "$(lab_kube_dir)/ca.crt" -H "Authorization: Bearer $(lab_kube_admin_token)" "https://127.0.0.1:$LAB_KUBE_PORT/_double/requests"`).stdout) as Req[];
    const flannel = reqs.filter((r) => r.user === 'system:serviceaccount:kube-flannel:flannel');
    expect(flannel.length).toBeGreaterThan(0);
    expect(flannel.filter((r) => r.status === 401 || r.status === 403)).toEqual([]);
    expect(flannel.filter((r) => r.method === 'PATCH').map((r) => r.path)).toEqual(expect.arrayContaining([`/api/v1/nodes/${nodeName(1)}/status`, `/api/v1/nodes/${nodeName(2)}/status`]));

    if (hasKubectl) {
      const view = lab('lab_kube_nodes').stdout;
      expect(view).toMatch(new RegExp(`^${nodeName(2)}\\s+10\\.10\\.16\\.0/20\\s+192\\.168\\.100\\.2\\s+vxlan\\s+\\{"VNI":100,"VtepMAC":"[0-9a-f:]{17}"\\}\\s+False$`, 'm'));
    }
  });

  it('a Node deleted in the API server takes its route, neighbour and fdb entry away on the other host', async () => {
    expect(Number(lab('lab_peer_routes 1').stdout.trim())).toBe(1);
    call('deleteNode', `["${nodeName(2)}"]`);
    await until(() => lab('lab_peer_routes 1').stdout.trim() === '0', 'h1 dropping the route to the deleted node', { ms: 20_000 });
    const mac = lab('lab_vtep_mac 2').stdout.trim();
    expect(L.inHost(1, ['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout).not.toContain(mac);
  });
});
