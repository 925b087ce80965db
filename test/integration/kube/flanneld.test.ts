// The built flanneld in kube mode, end to end: flanneld runs in a network namespace of the test's own
// (vxlan on a veth, ext0 = 10.50.0.2) against the API-server double, which runs in this process. The
// namespace reaches the double through a two-hop relay (127.0.0.1:<port> in the namespace → a Unix
// socket → the double on this namespace's loopback), so nothing is added to the machine's network.
// FLANNELD_KUBE_BIN names another flanneld build to run (default the test build's: dist/exe/flanneld,
// or dist/bin/flanneld with FLANNEL_TEST_BUILD=node, built here).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNetns, canUseNetns, type Netns } from '../../helpers/netns.js';
import { until } from '../../helpers/until.js';
import { FLANNEL_USER, startApiServer, type ApiServerDouble } from '../../kube-apiserver/server.js';
import { buildFlanneld, FLANNELD } from '../daemon/daemon-harness.js';
import { P, peerAnnotations } from './manager-harness.js';

const BIN = process.env.FLANNELD_KUBE_BIN || FLANNELD;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch {
      /* best effort */
    }
  }
});

/** 127.0.0.1:port inside `ns` → the double's 127.0.0.1:port here, through a Unix socket in `dir`. */
async function relay(ns: Netns, dir: string, port: number): Promise<void> {
  const sock = join(dir, 'api.sock');
  const server = net.createServer((c) => {
    const up = net.connect(port, '127.0.0.1');
    c.pipe(up).pipe(c);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(sock, r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  const script = `const net=require('node:net');net.createServer(c=>{const u=net.connect(${JSON.stringify(sock)});c.pipe(u).pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy())}).listen(${port},'127.0.0.1',()=>console.log('up'))`;
  const p = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => p.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    p.stdout!.once('data', () => resolve());
    p.once('exit', (code) => reject(new Error(`relay exited ${code}`)));
  });
}

describe.skipIf(!canUseNetns)('flanneld --kube-subnet-mgr (built) against the API-server double', () => {
  beforeAll(() => {
    if (!process.env.FLANNELD_KUBE_BIN) buildFlanneld();
  });
  it('in-cluster over HTTPS with RBAC: takes its podCIDR, writes subnet.env, patches its annotations and the condition, programs a peer added later', async () => {
    // as the DaemonSet runs it: in-cluster config over HTTPS, the service account's token and CA,
    // kube-flannel's ClusterRole only, the node name from the pod
    const api: ApiServerDouble = await startApiServer({
      auth: true,
      rbac: 'flannel',
      bookmarkPeriodMs: 1000,
      nodes: [{ name: 'node-a', podCIDRs: ['10.244.0.0/24'], internalIP: '10.50.0.2' }],
    });
    api.addPod('kube-flannel', 'kube-flannel-ds-abcde', 'node-a');
    cleanups.push(() => api.close());
    const dir = mkdtempSync(join(tmpdir(), 'flanneld-kube-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const ns = createNetns('fkube');
    cleanups.push(() => ns.delete());
    ns.exec(['ip', 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext1']);
    ns.exec(['ip', 'addr', 'add', '10.50.0.2/24', 'dev', 'ext0']);
    ns.exec(['ip', 'link', 'set', 'ext0', 'up']);
    ns.exec(['ip', 'link', 'set', 'ext1', 'up']);
    await relay(ns, dir, api.port);
    writeFileSync(join(dir, 'net-conf.json'), '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');

    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLANNELD_')) env[k] = v;
    const args = [
      '--kube-subnet-mgr',
      `--net-config-path=${join(dir, 'net-conf.json')}`,
      `--subnet-file=${join(dir, 'subnet.env')}`,
      `--data-dir=${join(dir, 'data')}`,
      '--iface=ext0',
      '--net-config-poll=0',
    ];
    const proc: ChildProcess = spawn('ip', ['netns', 'exec', ns.name, BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: {
        ...env,
        POD_NAME: 'kube-flannel-ds-abcde',
        POD_NAMESPACE: 'kube-flannel',
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: String(api.port),
        FLANNELD_KUBE_SA_DIR: api.serviceAccountDir,
      },
    });
    let stderr = '';
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    cleanups.push(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    });
    if ((await Promise.race([new Promise((r) => proc.once('exit', r)), new Promise((r) => setTimeout(() => r(null), 1500))])) !== null) {
      throw new Error(`flanneld exited early:\n${stderr}`);
    }

    const subnetEnv = await until(() => {
      try {
        return readFileSync(join(dir, 'subnet.env'), 'utf8');
      } catch {
        return undefined;
      }
    }, `subnet.env (stderr so far:\n${stderr})`, { ms: 30_000 });
    expect(subnetEnv).toContain('FLANNEL_NETWORK=10.244.0.0/16');
    expect(subnetEnv).toContain('FLANNEL_SUBNET=10.244.0.1/24');

    const ann = () => (api.getNode('node-a') as { metadata: { annotations: Record<string, string> } }).metadata.annotations;
    await until(() => ann()[`${P}kube-subnet-manager`] === 'true', 'the annotations');
    expect(ann()[`${P}public-ip`]).toBe('10.50.0.2');
    expect(ann()[`${P}backend-type`]).toBe('vxlan');
    const mac = JSON.parse(ann()[`${P}backend-data`]!).VtepMAC as string;
    expect(ns.exec(['ip', '-j', 'link', 'show', 'flannel.1']).stdout).toContain(mac);
    await until(
      () => (api.getNode('node-a') as { status: { conditions: { type: string; status: string }[] } }).status.conditions[0]?.type === 'NetworkUnavailable',
      'the NetworkUnavailable condition',
    );
    expect(api.requests.filter((r) => r.method === 'PATCH').every((r) => r.path === '/api/v1/nodes/node-a/status')).toBe(true);
    expect(api.requests.filter((r) => r.status === 401 || r.status === 403).map((r) => `${r.method} ${r.url} ${r.status}`)).toEqual([]);
    expect(api.requests.every((r) => r.authorization && r.user === FLANNEL_USER)).toBe(true);

    api.addNode({ name: 'node-b', podCIDRs: ['10.244.1.0/24'], annotations: peerAnnotations('10.50.0.3', 'aa:00:00:00:00:0b') });
    await until(() => ns.exec(['ip', 'route', 'show', '10.244.1.0/24']).stdout.includes('via 10.244.1.0 dev flannel.1 onlink'), 'the route to node-b', { ms: 20_000 });
    expect(ns.exec(['ip', 'neigh', 'show', 'dev', 'flannel.1']).stdout).toContain('10.244.1.0 lladdr aa:00:00:00:00:0b');
    expect(ns.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.1']).stdout).toContain('aa:00:00:00:00:0b dst 10.50.0.3');

    api.deleteNode('node-b');
    await until(() => ns.exec(['ip', 'route', 'show', '10.244.1.0/24']).stdout.trim() === '', 'the route to node-b removed', { ms: 20_000 });

    proc.kill('SIGTERM');
    const code = await new Promise((r) => (proc.exitCode !== null ? r(proc.exitCode) : proc.once('exit', (c) => r(c))));
    expect(code).toBe(0);
  });
});
