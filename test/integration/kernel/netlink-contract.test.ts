// The Kernel contract (test/unit/shared/kernel/contract.ts) against the netlink adapter, each case in a
// scratch network namespace, and its watch(). Needs the native shim (dist/bin/flannel.node, built by `npm run build`).
import { afterAll, describe, expect, it } from 'vitest';
import type { KernelEvent } from '../../../shared/kernel/kernel.js';
import { createNetlinkKernel } from '../../../shared/kernel/netlink/kernel.js';
import { nativeAddon } from '../../../shared/native/load.js';
import { canUseNetns, cleanupNetns, createNetns } from '../../helpers/netns.js';
import { until } from '../../helpers/until.js';
import { describeKernelContract } from '../../unit/shared/kernel/contract.js';

describe.skipIf(!canUseNetns || nativeAddon() === undefined)('netlink', () => {
  afterAll(cleanupNetns);
  describeKernelContract('netlink', () => {
    const ns = createNetns('nlc');
    return { kernel: createNetlinkKernel().inNetns(ns.path), missingNetns: `/var/run/netns/ftest-${process.pid}-gone`, done: () => ns.delete() };
  });
});

describe.skipIf(!canUseNetns || nativeAddon() === undefined)('netlink watch', () => {
  afterAll(cleanupNetns);

  it('reports link, address, route, neighbour and FDB changes in its namespace, with the device, deletions marked', async () => {
    const ns = createNetns('nlw');
    const k = createNetlinkKernel().inNetns(ns.path);
    await k.batch([{ op: 'addBridge', name: 'ul0' }, { op: 'replaceAddr', dev: 'ul0', cidr: '10.0.0.1/24' }, { op: 'setLinkUp', dev: 'ul0' }]);
    const events: KernelEvent[] = [];
    const w = k.watch!((ev) => events.push(ev));
    const seen = (want: Partial<KernelEvent>) => until(() => events.some((e) => Object.entries(want).every(([key, v]) => (e as Record<string, unknown>)[key] === v)), JSON.stringify(want), { ms: 5000, every: 10 });
    try {
      await k.batch([{ op: 'addVxlan', name: 'vx0', vni: 1, port: 8472, local: '10.0.0.1', learning: false, mac: '02:00:00:00:00:01' }, { op: 'setLinkUp', dev: 'vx0' }]);
      await seen({ kind: 'link', deleted: false, dev: 'vx0' });
      await k.batch([{ op: 'replaceAddr', dev: 'vx0', cidr: '10.244.1.0/32' }]);
      await seen({ kind: 'addr', deleted: false, dev: 'vx0' });
      const route = { dst: '10.244.2.0/24', via: '10.244.2.0', dev: 'vx0', onlink: true };
      await k.batch([{ op: 'replaceRoute', route }, { op: 'replaceNeigh', dev: 'vx0', ip: '10.244.2.0', mac: '02:00:00:00:00:02' }, { op: 'replaceFdb', dev: 'vx0', mac: '02:00:00:00:00:02', dst: '10.0.0.2' }]);
      await seen({ kind: 'route', deleted: false, dev: 'vx0' });
      await seen({ kind: 'neigh', deleted: false, dev: 'vx0' });
      await seen({ kind: 'fdb', deleted: false, dev: 'vx0' });
      // someone else deletes them (flanneld's repair case): the events say so
      ns.exec(['ip', 'route', 'del', '10.244.2.0/24']);
      ns.exec(['ip', 'neigh', 'del', '10.244.2.0', 'dev', 'vx0']);
      ns.exec(['bridge', 'fdb', 'del', '02:00:00:00:00:02', 'dev', 'vx0', 'dst', '10.0.0.2']);
      await seen({ kind: 'route', deleted: true, dev: 'vx0' });
      await seen({ kind: 'neigh', deleted: true, dev: 'vx0' });
      await seen({ kind: 'fdb', deleted: true, dev: 'vx0' });
      ns.exec(['ip', 'link', 'del', 'vx0']);
      await seen({ kind: 'link', deleted: true, dev: 'vx0' });
      expect(events.some((e) => e.kind === 'resync')).toBe(false);
    } finally {
      w.close();
      ns.delete();
    }
  });
});
