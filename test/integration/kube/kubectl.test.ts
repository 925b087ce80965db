// The API-server double checked by a client nobody here wrote: kubectl (client-go's REST client, the
// same one Go flanneld uses) drives it over HTTPS with bearer tokens. The double is only trusted as
// far as kubectl agrees with it (spec kube.md §7). KUBECTL picks the binary (default: kubectl on PATH;
// Debian's kubernetes-client is 1.20, which has no `patch --subresource`: that test is skipped there).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServerDouble, startApiServer } from '../../kube-apiserver/index.js';
import { until } from '../../helpers/until.js';

const KUBECTL = process.env.KUBECTL ?? 'kubectl';
const hasKubectl = spawnSync(KUBECTL, ['version', '--client'], { stdio: 'ignore' }).status === 0;
if (!hasKubectl) console.warn(`kubectl tests skipped: no ${KUBECTL} (install Debian's kubernetes-client, or set KUBECTL)`);
const hasSubresource = hasKubectl && spawnSync(KUBECTL, ['patch', '--help'], { encoding: 'utf8' }).stdout.includes('--subresource');
/** kubectl ≥ 1.29 leaves field validation to a server whose OpenAPI v3 says it does it (the double says so);
 * older ones (checked: 1.20, 1.27, 1.28) validate against /openapi/v2, which the double does not serve:
 * they need --validate=false */
const kubectlMinor = hasKubectl ? parseInt((JSON.parse(spawnSync(KUBECTL, ['version', '--client', '-o', 'json'], { encoding: 'utf8' }).stdout) as { clientVersion: { minor: string } }).clientVersion.minor, 10) : 0;
const applyFlags = kubectlMinor >= 29 ? [] : ['--validate=false'];
const repoRoot = join(import.meta.dirname, '..', '..', '..');
const deployManifest = join(repoRoot, 'deploy', 'kube-flannel.yml');

const NET_UP = '{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","reason":"FlannelIsUp","message":"Flannel is running on this node"}]}}';

describe.skipIf(!hasKubectl)('kubectl against the API-server double', () => {
  let api: ApiServerDouble;
  let tmp: string;
  const children: ChildProcess[] = [];

  /** runs kubectl as admin (or with another token); never reads $HOME/.kube. Async: the double runs in this process. */
  const kubectl = (args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn(KUBECTL, args, { env: { ...process.env, HOME: tmp, KUBECONFIG: join(tmp, 'empty-kubeconfig') } });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out, err: err.trim() });
      });
    });
  const k = (args: string[], token?: string, server: ApiServerDouble = api) =>
    kubectl(['--server', server.url, '--certificate-authority', server.caFile!, '--token', token ?? server.tokens.admin, '--cache-dir', join(tmp, `cache-${server.port}`), '--request-timeout', '20s', ...args]);

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'kubectl-double-'));
    writeFileSync(join(tmp, 'empty-kubeconfig'), 'apiVersion: v1\nkind: Config\n');
    api = await startApiServer({
      auth: true,
      rbac: 'flannel',
      nodes: [
        { name: 'node-a', podCIDRs: ['10.244.0.0/24'], internalIP: '192.168.77.1' },
        { name: 'node-b', podCIDRs: ['10.244.1.0/24'], internalIP: '192.168.77.2' },
      ],
    });
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await api?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('lists nodes (JSON and the plain printer) with the request client-go makes', async () => {
    const since = api.requests.length;
    const r = await k(['get', 'nodes', '-o', 'json']);
    expect(r.err).toBe('');
    const list = JSON.parse(r.out) as { kind: string; items: { metadata: { name: string; resourceVersion: string } }[] };
    expect(list.kind).toBe('List');
    expect(list.items.map((i) => i.metadata.name)).toEqual(['node-a', 'node-b']);
    const req = api.requests.slice(since).find((q) => q.path === '/api/v1/nodes');
    expect(req).toMatchObject({ method: 'GET', query: { limit: '500' }, authorization: true, user: 'admin', status: 200 });
    const plain = await k(['get', 'nodes']);
    expect(plain.out.split('\n')[0]).toMatch(/^NAME\s+AGE$/);
    expect(plain.out).toMatch(/^node-b\s+\d+s$/m);
  });

  it('watches: list, then a watch from the list RV; events arrive as they happen', async () => {
    const since = api.requests.length;
    const child = spawn(
      KUBECTL,
      ['--server', api.url, '--certificate-authority', api.caFile!, '--token', api.tokens.admin, '--cache-dir', join(tmp, 'cache'), 'get', 'nodes', '--watch', '-o', 'name'],
      { env: { ...process.env, HOME: tmp, KUBECONFIG: join(tmp, 'empty-kubeconfig') } },
    );
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const w = await api.waitForRequest((q) => q.path === '/api/v1/nodes' && q.query.watch === 'true', { since, timeoutMs: 20_000 });
    const listed = api.requests.slice(since).find((q) => q.path === '/api/v1/nodes' && q.query.watch === undefined);
    expect(listed).toBeDefined();
    expect(Number(w.query.resourceVersion)).toBeGreaterThan(0);
    api.addNode({ name: 'node-w', podCIDRs: ['10.244.9.0/24'] });
    api.deleteNode('node-w');
    await until(() => out.split('\n').filter((l) => l === 'node/node-w').length >= 2, 'kubectl --watch printing node-w twice');
    expect(out.split('\n').filter(Boolean)).toEqual(['node/node-a', 'node/node-b', 'node/node-w', 'node/node-w']);
    child.kill('SIGTERM');
  });

  it.skipIf(!hasSubresource)('patch --subresource=status --type=strategic: the condition lands first, a repeat is "no change", flannel\'s role may not use it', async () => {
    const r = await k(['patch', 'node', 'node-a', '--subresource=status', '--type=strategic', '-p', NET_UP]);
    expect(r.out.trim()).toBe('node/node-a patched');
    const types = (await k(['get', 'node', 'node-a', '-o', 'jsonpath={.status.conditions[*].type}'])).out;
    expect(types).toBe('NetworkUnavailable MemoryPressure DiskPressure PIDPressure Ready');
    expect((await k(['patch', 'node', 'node-a', '--subresource=status', '--type=strategic', '-p', NET_UP])).out.trim()).toBe('node/node-a patched (no change)');
    // kubectl GETs nodes/<n>/status first, which kube-flannel's ClusterRole does not allow (spec §2)
    const denied = await k(['patch', 'node', 'node-b', '--subresource=status', '--type=strategic', '-p', NET_UP], api.tokens.flannel);
    expect(denied.err).toBe(
      'Error from server (Forbidden): nodes "node-b" is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot get resource "nodes/status" in API group "" at the cluster scope',
    );
  });

  it('patch --type=strategic on the node itself: status changes are dropped, podCIDR may not change', async () => {
    const before = api.getNode('node-b')!;
    const r = await k(['patch', 'node', 'node-b', '--type=strategic', '-p', NET_UP]);
    expect(r.out.trim()).toBe('node/node-b patched (no change)');
    expect(api.getNode('node-b')!.status).toEqual(before.status);
    const bad = await k(['patch', 'node', 'node-b', '--type=strategic', '-p', '{"spec":{"podCIDR":"10.244.7.0/24","podCIDRs":["10.244.7.0/24"]}}']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toContain('Node "node-b" is invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid');
  });

  it('annotate: a merge patch on the node, seen by a watch as MODIFIED', async () => {
    const since = api.requests.length;
    const rv = api.resourceVersion();
    const r = await k(['annotate', 'node', 'node-b', 'flannel.alpha.coreos.com/public-ip-overwrite=1.2.3.4']);
    expect(r.out.trim()).toMatch(/^node\/node-b annotated?$/); // 1.27 prints "annotate"
    const p = api.requests.slice(since).find((q) => q.method === 'PATCH');
    expect(p).toMatchObject({ path: '/api/v1/nodes/node-b', contentType: 'application/merge-patch+json', status: 200 });
    expect((api.getNode('node-b')!.metadata as { annotations: Record<string, string> }).annotations['flannel.alpha.coreos.com/public-ip-overwrite']).toBe('1.2.3.4');
    const raw = await k(['get', '--raw', `/api/v1/nodes?watch=true&resourceVersion=${rv}&timeoutSeconds=1`]);
    const events = raw.out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string } } });
    expect(events.map((e) => [e.type, e.object.metadata.name])).toEqual([['MODIFIED', 'node-b']]);
  });

  it('renders 401, 403, 404 and 429 as it does for a real API server', async () => {
    expect((await k(['get', 'nodes'], 'not-a-token')).err).toBe('error: You must be logged in to the server (Unauthorized)');
    expect((await k(['patch', 'node', 'node-a', '-p', '{"metadata":{"labels":{"x":"y"}}}'], api.tokens.flannel)).err).toBe(
      'Error from server (Forbidden): nodes "node-a" is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot patch resource "nodes" in API group "" at the cluster scope',
    );
    expect((await k(['get', 'pods', '-n', 'kube-flannel'], api.tokens.flannel)).err).toBe(
      'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot list resource "pods" in API group "" in the namespace "kube-flannel"',
    );
    expect((await k(['get', 'node', 'nope'])).err).toBe('Error from server (NotFound): nodes "nope" not found');
    // priority-and-fairness style: plain text, no Retry-After → not retried
    api.inject({ path: '/api/v1/nodes', method: 'GET', code: 429, plain: 'Too many requests, please try again later.\n' });
    expect((await k(['get', 'nodes'])).err).toBe('Error from server (TooManyRequests): the server has received too many requests and has asked us to try again later (get nodes)');
  });

  it('retries a 429 with Retry-After (twice), then succeeds', async () => {
    const since = api.requests.length;
    api.inject({ path: '/api/v1/nodes', method: 'GET', code: 429, retryAfter: 1, count: 2, plain: 'Too many requests, please try again later.\n' });
    const r = await k(['get', 'nodes', '-o', 'name']);
    expect(r.out.trim().split('\n')).toContain('node/node-a');
    expect(api.requests.slice(since).filter((q) => q.path === '/api/v1/nodes').map((q) => q.status)).toEqual([429, 429, 200]);
  });

  it('a watch from a compacted RV gets the exact 410 ERROR event', async () => {
    api.compact();
    const r = await k(['get', '--raw', '/api/v1/nodes?watch=true&resourceVersion=1']);
    expect(r.out.trim()).toBe(
      `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (${api.resourceVersion()})","reason":"Expired","code":410}}`,
    );
  });

  const MANIFEST = `apiVersion: v1
kind: Namespace
metadata: {name: kube-flannel, labels: {k8s-app: flannel}}
---
kind: ClusterRole
apiVersion: rbac.authorization.k8s.io/v1
metadata: {name: flannel}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get]}
---
kind: ClusterRoleBinding
apiVersion: rbac.authorization.k8s.io/v1
metadata: {name: flannel}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: flannel}
subjects: [{kind: ServiceAccount, name: flannel, namespace: kube-flannel}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: flannel, namespace: kube-flannel}
---
kind: ConfigMap
apiVersion: v1
metadata: {name: kube-flannel-cfg, namespace: kube-flannel}
data: {net-conf.json: '{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}'}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-flannel-ds, namespace: kube-flannel}
spec:
  selector: {matchLabels: {app: flannel}}
  template:
    metadata: {labels: {app: flannel}}
    spec:
      hostNetwork: true
      containers:
      - name: kube-flannel
        image: flannel-ts:IMAGE
        env: [{name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]
        volumeMounts: [{name: run, mountPath: /run/flannel}]
      volumes: [{name: run, hostPath: {path: /run/flannel}}]
`;

  it(`apply (client-side${applyFlags.length ? ', --validate=false: no /openapi/v2 in the double' : ''}): create, unchanged, configured`, async () => {
    const file = join(tmp, 'manifest.yml');
    writeFileSync(file, MANIFEST.replace('IMAGE', 'v1'));
    const created = await k(['apply', ...applyFlags, '-f', file]);
    expect(created.err).toBe('');
    expect(created.out.trim().split('\n')).toEqual([
      'namespace/kube-flannel created',
      'clusterrole.rbac.authorization.k8s.io/flannel created',
      'clusterrolebinding.rbac.authorization.k8s.io/flannel created',
      'serviceaccount/flannel created',
      'configmap/kube-flannel-cfg created',
      'daemonset.apps/kube-flannel-ds created',
    ]);
    expect((await k(['apply', ...applyFlags, '-f', file])).out).not.toMatch(/created|configured/);
    writeFileSync(file, MANIFEST.replace('IMAGE', 'v2'));
    const since = api.requests.length;
    expect((await k(['apply', ...applyFlags, '-f', file])).out).toContain('daemonset.apps/kube-flannel-ds configured');
    const p = api.requests.slice(since).find((q) => q.method === 'PATCH');
    expect(p).toMatchObject({ path: '/apis/apps/v1/namespaces/kube-flannel/daemonsets/kube-flannel-ds', contentType: 'application/strategic-merge-patch+json', status: 200 });
    const ds = api.getObject('daemonsets', 'kube-flannel-ds', 'kube-flannel') as { spec: { template: { spec: { containers: { image: string; env: unknown[] }[] } } } };
    expect(ds.spec.template.spec.containers).toHaveLength(1);
    expect(ds.spec.template.spec.containers[0]!.image).toBe('flannel-ts:v2');
    expect(ds.spec.template.spec.containers[0]!.env).toHaveLength(1);
  });

  it.skipIf(!existsSync(deployManifest))('kubectl apply -f deploy/kube-flannel.yml succeeds against the double', async () => {
    const fresh = await startApiServer({ auth: true });
    try {
      const r = await k(['apply', ...applyFlags, '-f', deployManifest], undefined, fresh);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      for (const kind of ['namespace', 'serviceaccount', 'clusterrole.rbac.authorization.k8s.io', 'clusterrolebinding.rbac.authorization.k8s.io', 'configmap', 'daemonset.apps'])
        expect(r.out).toMatch(new RegExp(`^${kind.replace(/\./g, '\\.')}/\\S+ created$`, 'm'));
      // applying it again changes nothing (kubectl's three-way patch comes out empty against what we stored)
      const again = await k(['apply', ...applyFlags, '-f', deployManifest], undefined, fresh);
      expect(again.out.trim().split('\n').every((l) => l.endsWith(' unchanged'))).toBe(true);
    } finally {
      await fresh.close();
    }
  });
});
