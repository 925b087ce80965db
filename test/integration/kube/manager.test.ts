// The kube subnet manager against the API-server double: spec kube.md §8 scenarios and the
// "better than upstream" items of issue 12.
import { afterEach, describe, expect, it } from 'vitest';
import type { LeaseAttrs } from '../../../daemon/lease.js';
import { formatIP, formatNet, parseIP } from '../../../shared/net/ip.js';
import { until } from '../../helpers/until.js';
import { startApiServer, type ApiServerDouble } from '../../kube-apiserver/server.js';
import { DUAL_CONF, P, peerAnnotations, startManager, type Started } from './manager-harness.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function api(opts: Parameters<typeof startApiServer>[0] = {}): Promise<ApiServerDouble> {
  const a = await startApiServer({ bookmarkPeriodMs: 200, ...opts });
  cleanups.push(() => a.close());
  return a;
}
async function manager(a: ApiServerDouble, o: Parameters<typeof startManager>[1] = {}): Promise<Started> {
  const s = await startManager(a, o);
  cleanups.push(() => s.stop());
  return s;
}
const signal = () => new AbortController().signal;
const vxlanAttrs = (ip = '192.168.77.1', mac = '7e:1c:9b:2e:33:01'): LeaseAttrs => ({ publicIP: parseIP(ip), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } });
const annotationPatches = (a: ApiServerDouble) => a.requests.filter((r) => r.method === 'PATCH' && r.body.includes('"annotations"'));

describe('kube subnet manager against the API-server double', () => {
  it('happy path (NODE_NAME): list, watch with bookmarks, the §4.1 patch through /status, the condition first, peers as leases', async () => {
    const a = await api({
      nodes: [
        { name: 'node-a', podCIDRs: ['10.244.0.0/24'], internalIP: '192.168.77.1' },
        { name: 'node-b', podCIDRs: ['10.244.1.0/24'], annotations: peerAnnotations('192.168.77.2', 'aa:00:00:00:00:02') },
        { name: 'node-c', podCIDRs: ['10.244.2.0/24'], annotations: peerAnnotations('192.168.77.3', 'aa:00:00:00:00:03') },
      ],
    });
    const s = await manager(a);
    const lease = await s.sm.acquireLease(vxlanAttrs(), signal());
    expect(formatNet(lease.subnet)).toBe('10.244.0.0/24');
    await s.sm.completeLease(lease, signal());

    const [list, watch] = a.requests.filter((r) => r.method === 'GET' && r.path === '/api/v1/nodes');
    expect(list!.query).toMatchObject({ limit: '500', resourceVersion: '0' });
    expect(watch!.query).toMatchObject({ allowWatchBookmarks: 'true', watch: 'true' });
    expect(Number(watch!.query.timeoutSeconds)).toBeGreaterThanOrEqual(300);
    const patches = a.requests.filter((r) => r.method === 'PATCH');
    expect(patches.map((p) => p.path)).toEqual(['/api/v1/nodes/node-a/status', '/api/v1/nodes/node-a/status']);
    expect(patches.every((p) => p.contentType === 'application/strategic-merge-patch+json')).toBe(true);
    expect(Object.keys(JSON.parse(patches[0]!.body).metadata.annotations)).toEqual([`${P}backend-data`, `${P}backend-type`, `${P}kube-subnet-manager`, `${P}public-ip`]);
    const node = a.getNode('node-a') as { metadata: { annotations: Record<string, string> }; status: { conditions: { type: string; status: string }[] } };
    expect(node.metadata.annotations[`${P}public-ip`]).toBe('192.168.77.1');
    expect(node.status.conditions[0]).toMatchObject({ type: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp' });
    expect(a.requests.every((r) => r.userAgent.includes('/v0.0.0 (linux/') && r.userAgent.endsWith('kubernetes/$Format'))).toBe(true);

    await until(() => s.peers.size === 2, 'two peers');
    expect(formatIP(s.peers.get('10.244.1.0/24')!.attrs.publicIP)).toBe('192.168.77.2');
    // the cache keeps only what flannel reads (a real Node is 5–15 KB)
    expect(Object.keys(s.sm.ownNode()!)).toEqual(['metadata', 'spec']);
    expect(Object.keys(s.sm.ownNode()!.metadata.annotations!).every((k) => k.startsWith(P))).toBe(true);
    expect(s.batches[0]!.length).toBe(2); // the snapshot, own node left out

    // a peer added later, then deleted (§8.10)
    a.addNode({ name: 'node-d', podCIDRs: ['10.244.3.0/24'], annotations: peerAnnotations('192.168.77.4', 'aa:00:00:00:00:04') });
    await until(() => s.peers.has('10.244.3.0/24'), 'node-d as a peer');
    a.deleteNode('node-d');
    await until(() => !s.peers.has('10.244.3.0/24'), 'node-d removed');

    // restart with unchanged annotations: no annotation PATCH, the condition again (§8.2)
    s.stop();
    const before = a.requests.length;
    const s2 = await manager(a);
    await s2.sm.acquireLease(vxlanAttrs(), signal());
    await s2.sm.completeLease(lease, signal());
    const later = a.requests.slice(before).filter((r) => r.method === 'PATCH');
    expect(later.length).toBe(1);
    expect(later[0]!.body).toContain('NetworkUnavailable');
  });

  it('POD_NAME/POD_NAMESPACE: the node name from the pod; errors name the pod', async () => {
    const a = await api({ nodes: [{ name: 'node-a', podCIDRs: ['10.244.0.0/24'] }] });
    a.addPod('kube-flannel', 'kube-flannel-ds-x', 'node-a');
    const s = await manager(a, { env: { NODE_NAME: '', POD_NAME: 'kube-flannel-ds-x', POD_NAMESPACE: 'kube-flannel' } });
    expect(s.sm.name()).toBe('Kubernetes Subnet Manager - node-a');
    expect(a.requests[0]!.path).toBe('/api/v1/namespaces/kube-flannel/pods/kube-flannel-ds-x');
    await expect(startManager(a, { env: { NODE_NAME: '', POD_NAME: 'nope', POD_NAMESPACE: 'kube-flannel' } })).rejects.toThrow(
      `error retrieving pod spec for 'kube-flannel/nope': pods "nope" not found`,
    );
    await expect(startManager(a, { env: { NODE_NAME: '' } })).rejects.toThrow('env variables POD_NAME and POD_NAMESPACE must be set');
  });

  it('no podCIDR → "pod cidr not assigned"; a podCIDR outside Network → the containment error (§8.3)', async () => {
    const a = await api({ nodes: [{ name: 'node-a' }, { name: 'node-x', podCIDRs: ['10.99.0.0/24'] }] });
    const s = await manager(a);
    await expect(s.sm.acquireLease(vxlanAttrs(), signal())).rejects.toThrow('node "node-a" pod cidr not assigned');
    const s2 = await manager(a, { env: { NODE_NAME: 'node-x' } });
    await expect(s2.sm.acquireLease(vxlanAttrs(), signal())).rejects.toThrow(
      `subnet "10.244.0.0/16" specified in the flannel net config doesn't contain "10.99.0.0/24" PodCIDR of the "node-x" node`,
    );
  });

  it('better than upstream: a peer podCIDR outside Network is refused with a log line, never a lease', async () => {
    const a = await api({
      nodes: [
        { name: 'node-a', podCIDRs: ['10.244.0.0/24'] },
        { name: 'evil', podCIDRs: ['0.0.0.0/0'], annotations: peerAnnotations('192.168.77.9', 'aa:00:00:00:00:09') },
        { name: 'node-b', podCIDRs: ['10.244.1.0/24'], annotations: peerAnnotations('192.168.77.2', 'aa:00:00:00:00:02') },
      ],
    });
    const s = await manager(a);
    await until(() => s.peers.size === 1, 'one peer');
    expect([...s.peers.keys()]).toEqual(['10.244.1.0/24']);
    expect(s.log.lines.join('\n')).toContain('node "evil" is not used as a flannel peer: its podCIDR 0.0.0.0/0 is outside the network 10.244.0.0/16');
    expect((await s.sm.listLeases(signal())).map((l) => formatNet(l.subnet))).toEqual(['10.244.1.0/24']);
  });

  it('better than upstream: in dual stack a v6-only change of a peer is applied', async () => {
    const a = await api({
      nodes: [
        { name: 'node-a', podCIDRs: ['10.244.0.0/24', 'fd00:10:244::/64'] },
        { name: 'node-b', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], annotations: peerAnnotations('192.168.77.2', 'aa:00:00:00:00:02', { ip: 'fd77::2', mac: 'aa:00:00:00:06:02' }) },
      ],
    });
    const s = await manager(a, { netConf: DUAL_CONF });
    await until(() => s.peers.size === 1, 'the peer');
    a.setAnnotations('node-b', { [`${P}backend-v6-data`]: JSON.stringify({ VNI: 1, VtepMAC: 'aa:00:00:00:06:99' }) });
    await until(() => (s.peers.get('10.244.1.0/24')?.attrs.backendV6Data as { VtepMAC?: string })?.VtepMAC === 'aa:00:00:00:06:99', 'the v6 change');
    const own = await s.sm.acquireLease({ ...vxlanAttrs(), publicIPv6: parseIP('fd77::1'), backendV6Data: { VNI: 1, VtepMAC: '7e:1c:9b:2e:33:02' } }, signal());
    expect(formatNet(own.ipv6Subnet!)).toBe('fd00:10:244::/64');
    const ann = (a.getNode('node-a') as { metadata: { annotations: Record<string, string> } }).metadata.annotations;
    expect(ann[`${P}public-ipv6`]).toBe('fd77::1');
    await until(() => s.sm.storedMacAddresses().v6 !== undefined, 'the own node patched in the cache');
    expect(s.sm.storedMacAddresses()).toEqual({ v4: '7e:1c:9b:2e:33:01', v6: '7e:1c:9b:2e:33:02' });
  });

  it('stored VtepMAC and node-public-ip under a custom prefix; public-ip-overwrite wins (§8.10)', async () => {
    const a = await api({
      nodes: [{ name: 'node-a', podCIDRs: ['10.244.0.0/24'], annotations: { 'org.com/x-backend-data': '{"VtepMAC":"7e:00:00:00:00:0a","VNI":1}', 'org.com/x-node-public-ip': '10.1.1.1', 'org.com/x-public-ip-overwrite': '1.2.3.4' } }],
    });
    const s = await manager(a, { args: [`--kube-api-url=${a.url}`, '--kube-annotation-prefix=org.com/x'] });
    expect(s.sm.storedMacAddresses()).toEqual({ v4: '7e:00:00:00:00:0a' });
    expect(s.sm.storedPublicIP()).toEqual({ v4: '10.1.1.1' });
    await s.sm.acquireLease(vxlanAttrs(), signal());
    const ann = (a.getNode('node-a') as { metadata: { annotations: Record<string, string> } }).metadata.annotations;
    expect(ann['org.com/x-public-ip']).toBe('1.2.3.4');
    expect(ann['org.com/x-kube-subnet-manager']).toBe('true');
  });

  it('429 and 503 with Retry-After on the PATCH are retried; a 403 on the condition PATCH is logged, not fatal (§8.8)', async () => {
    const a = await api({ nodes: [{ name: 'node-a', podCIDRs: ['10.244.0.0/24'] }] });
    const s = await manager(a);
    a.inject({ method: 'PATCH', path: '/api/v1/nodes/node-a/status', code: 429, retryAfter: 1, plain: 'Too many requests, please try again later.' });
    a.inject({ method: 'PATCH', path: '/api/v1/nodes/node-a/status', code: 503, retryAfter: 1 });
    const lease = await s.sm.acquireLease(vxlanAttrs(), signal());
    expect(a.requests.filter((r) => r.method === 'PATCH').length).toBe(3);
    a.inject({ method: 'PATCH', path: '/api/v1/nodes/node-a/status', code: 403, reason: 'Forbidden', message: 'nodes "node-a" is forbidden: nope' });
    await s.sm.completeLease(lease, signal());
    expect(s.log.lines.join('\n')).toContain('CompleteLease execute error err: nodes "node-a" is forbidden: nope');
  });

  it('RBAC "flannel" over HTTPS with the in-cluster service account; token rotation is picked up after a 401 (§8.4, §8.9)', async () => {
    const a = await api({ auth: true, rbac: 'flannel', nodes: [{ name: 'node-a', podCIDRs: ['10.244.0.0/24'] }, { name: 'node-b', podCIDRs: ['10.244.1.0/24'], annotations: peerAnnotations('192.168.77.2', 'aa:00:00:00:00:02') }] });
    a.addPod('kube-flannel', 'kube-flannel-ds-x', 'node-a');
    const u = new URL(a.url);
    const s = await manager(a, {
      args: [],
      env: { NODE_NAME: '', POD_NAME: 'kube-flannel-ds-x', POD_NAMESPACE: 'kube-flannel', KUBERNETES_SERVICE_HOST: u.hostname, KUBERNETES_SERVICE_PORT: u.port, FLANNELD_KUBE_SA_DIR: a.serviceAccountDir },
    });
    const lease = await s.sm.acquireLease(vxlanAttrs(), signal());
    await s.sm.completeLease(lease, signal());
    expect(a.requests.filter((r) => r.status === 401 || r.status === 403)).toEqual([]);
    expect(s.log.lines.join('\n')).not.toContain('CompleteLease execute error');
    a.rotateFlannelToken();
    a.dropWatches(); // the re-watch meets the new token: 401, token re-read, then success
    a.setAnnotations('node-b', { [`${P}public-ip`]: '192.168.77.22' });
    await until(() => s.peers.get('10.244.1.0/24') && formatIP(s.peers.get('10.244.1.0/24')!.attrs.publicIP) === '192.168.77.22', 'the change seen with the new token');
  });
});

describe('kube node informer resilience', () => {
  it('watch timeout and bookmarks: re-watch from the bookmark RV, no relist (§8.5)', async () => {
    const a = await api({ nodes: [{ name: 'node-a', podCIDRs: ['10.244.0.0/24'] }] });
    const s = await manager(a, { informer: { watchTimeoutSeconds: () => 1 } });
    await until(() => a.requests.filter((r) => r.query.watch === 'true').length >= 3, 'three watches');
    const lists = a.requests.filter((r) => r.path === '/api/v1/nodes' && r.query.watch === undefined);
    expect(lists.length).toBe(1);
    expect(s.sm.informer.stats.bookmarks).toBeGreaterThan(0);
    const watches = a.requests.filter((r) => r.query.watch === 'true');
    expect(Number(watches.at(-1)!.query.resourceVersion)).toBeGreaterThanOrEqual(Number(watches[0]!.query.resourceVersion));
  });

  it('compaction + stalled watch → 410 → relist: a deleted peer is removed, a modified one updated (§8.6, §8.12 watchdog)', async () => {
    const a = await api({
      bookmarkPeriodMs: 60_000,
      nodes: [
        { name: 'node-a', podCIDRs: ['10.244.0.0/24'] },
        { name: 'node-b', podCIDRs: ['10.244.1.0/24'], annotations: peerAnnotations('192.168.77.2', 'aa:00:00:00:00:02') },
        { name: 'node-c', podCIDRs: ['10.244.2.0/24'], annotations: peerAnnotations('192.168.77.3', 'aa:00:00:00:00:03') },
      ],
    });
    const s = await manager(a, { informer: { watchIdleMs: 800 } });
    await until(() => s.peers.size === 2, 'two peers');
    a.stallWatches();
    a.deleteNode('node-b');
    a.setAnnotations('node-c', { [`${P}public-ip`]: '192.168.77.33' });
    a.compact();
    await until(() => !s.peers.has('10.244.1.0/24') && formatIP(s.peers.get('10.244.2.0/24')!.attrs.publicIP) === '192.168.77.33', 'the relisted state', { ms: 10_000 });
    expect(s.log.lines.join('\n')).toMatch(/nothing received for/);
  });

  it('one HTTP 500 on the watch, a dropped connection and an API server outage never stop it; readiness goes false and back (§8.7)', async () => {
    const a = await api({ nodes: [{ name: 'node-a', podCIDRs: ['10.244.0.0/24'] }] });
    const s = await manager(a);
    const health: boolean[] = [];
    s.sm.onWatchHealth((up) => health.push(up));
    a.inject({ path: '/api/v1/nodes', watch: true, code: 500, message: 'Internal error occurred: boom' });
    a.dropWatches();
    a.addNode({ name: 'node-b', podCIDRs: ['10.244.1.0/24'], annotations: peerAnnotations('192.168.77.2', 'aa:00:00:00:00:02') });
    await until(() => s.peers.has('10.244.1.0/24'), 'node-b after the 500');
    a.dropConnections();
    a.addNode({ name: 'node-c', podCIDRs: ['10.244.2.0/24'], annotations: peerAnnotations('192.168.77.3', 'aa:00:00:00:00:03') });
    await until(() => s.peers.has('10.244.2.0/24'), 'node-c after the drop');
    await a.stop();
    await until(() => health.includes(false), 'readiness false while the API server is down');
    a.addNode({ name: 'node-d', podCIDRs: ['10.244.3.0/24'], annotations: peerAnnotations('192.168.77.4', 'aa:00:00:00:00:04') });
    await a.start();
    await until(() => health.at(-1) === true && s.peers.has('10.244.3.0/24'), 'back up with the event made during the outage', { ms: 10_000 });
  });

  it('pagination on for RV=0: all pages followed (§8.11)', async () => {
    const nodes = [{ name: 'node-a', podCIDRs: ['10.244.0.0/24'] }];
    for (let i = 1; i <= 1000; i++) nodes.push({ name: `n-${i}`, podCIDRs: [`10.244.${i >> 2}.${(i & 3) * 64}/26`], annotations: peerAnnotations(`192.168.${i >> 8}.${i & 255}`, 'aa:00:00:00:00:05') } as never);
    const a = await api({ paginateRV0: true, nodes });
    const s = await manager(a, { netConf: '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}' });
    expect(a.requests.filter((r) => r.query.continue).length).toBe(2);
    await until(() => s.peers.size === 1000, '1000 peers');
  });
});
