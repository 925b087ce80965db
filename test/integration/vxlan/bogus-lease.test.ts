// A bogus lease must not hijack a healthy peer on the real kernel (issue 9, item 3): hosts h1 and h2
// run the vxlan backend, a pod on each; h1 is handed a lease that shares h2's VTEP address (a /21 at
// h2's /20 base) and one that shares h2's VtepMAC from another PublicIP, then their deletions. Pod-to-pod
// traffic must work throughout, and h1's neighbour and FDB entries for h2 must stay h2's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns, cleanupNetns, type Netns } from '../../helpers/netns.js';
import type { LeaseEvent } from '../../../daemon/lease.js';
import { createHost, createPod, createUnderlay, peerLease, ping, pushLeases, startFlannel, type Flannel } from './hosts.js';
import { until } from '../../helpers/until.js';

describe.skipIf(!canUseNetns)('vxlan: bogus leases on the real kernel', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'vxlan-bogus-int-'));
  const flannels: Flannel[] = [];
  let h1: Netns;
  let pod1: Netns;
  let f1: Flannel;
  let f2: Flannel;

  const pushH1 = (batch: LeaseEvent[]) => pushLeases(f1, batch);

  const h2Entries = () => ({
    neigh: h1.exec(['ip', 'neigh', 'show', '10.10.32.0', 'dev', 'flannel.100']).stdout.trim(),
    fdb: h1.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.100']).stdout.split('\n').filter((l) => l.startsWith(f2.mac!)).join('\n'),
  });

  beforeAll(async () => {
    const ul = createUnderlay();
    h1 = createHost(ul, { cidr: '192.168.77.1/24' });
    const h2 = createHost(ul, { cidr: '192.168.77.2/24' });
    pod1 = createPod(h1, { gateway: '10.10.16.1/20', cidr: '10.10.16.2/20' });
    createPod(h2, { gateway: '10.10.32.1/20', cidr: '10.10.32.2/20' });
    f1 = await startFlannel(h1, { subnet: '10.10.16.0/20', network: '10.10.0.0/16', stateDir: join(stateDir, 'h1') });
    f2 = await startFlannel(h2, { subnet: '10.10.32.0/20', network: '10.10.0.0/16', stateDir: join(stateDir, 'h2') });
    flannels.push(f1, f2);
    f2.manager.push([{ type: 'added', lease: peerLease({ subnet: '10.10.16.0/20', publicIP: '192.168.77.1', mac: f1.mac! }) }]);
    await pushH1([{ type: 'added', lease: peerLease({ subnet: '10.10.32.0/20', publicIP: '192.168.77.2', mac: f2.mac! }) }]);
    await until(() => ping(pod1, '10.10.32.2'), "ping(pod1, '10.10.32.2')");
  });

  afterAll(async () => {
    await Promise.allSettled(flannels.map((f) => f.stop()));
    cleanupNetns();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('a lease at h2\'s VTEP address and one with h2\'s VtepMAC neither take over h2 nor, deleted, remove it', async () => {
    const healthy = h2Entries();
    expect(healthy.neigh).toContain(f2.mac!);
    expect(healthy.fdb).toContain('dst 192.168.77.2');
    const sameVtep = peerLease({ subnet: '10.10.32.0/21', publicIP: '192.168.77.3', mac: '0a:00:00:00:00:09' });
    const sameMac = peerLease({ subnet: '10.10.48.0/20', publicIP: '192.168.77.3', mac: f2.mac! });

    await pushH1([{ type: 'added', lease: sameVtep }, { type: 'added', lease: sameMac }]);
    expect(h2Entries()).toEqual(healthy);
    expect(ping(pod1, '10.10.32.2')).toBe(true);
    expect(f1.logs.filter((l) => l.startsWith('refusing peer lease'))).toHaveLength(2);

    await pushH1([{ type: 'removed', lease: sameVtep }, { type: 'removed', lease: sameMac }]);
    expect(h2Entries()).toEqual(healthy);
    expect(h1.exec(['ip', 'route', 'show', '10.10.32.0/20']).stdout).toContain('dev flannel.100');
    expect(ping(pod1, '10.10.32.2')).toBe(true);
  });
});
