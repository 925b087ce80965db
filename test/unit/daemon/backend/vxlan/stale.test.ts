// Entries on our devices left by leases deleted while flanneld was down.
import { describe, expect, it, vi, afterEach } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import { formatIP } from '../../../../../shared/net/ip.js';
import type { KernelOp } from '../../../../../shared/kernel/kernel.js';
import { BACKEND, dualLease, EXT6, kernel, lease, logs, manager, ns, peerState, registerWith, useVxlanHarness } from './harness.js';
import { until, IN_PROCESS } from '../../../../helpers/until.js';

useVxlanHarness();

describe('entries left by leases deleted while flanneld was down', () => {
  const A = lease('10.10.0.0/20', '192.168.100.2', '0a:00:00:00:00:02');
  const B = lease('10.10.32.0/20', '192.168.100.3', '0a:00:00:00:00:03');
  const C = lease('10.10.48.0/20', '192.168.100.4', '0a:00:00:00:00:04');

  /** What a previous run wrote for a peer (neighbour, FDB, onlink route). */
  const programmed = (dev: string, subnet: string, gw: string, mac: string, publicIP: string): KernelOp[] => [
    { op: 'replaceNeigh', dev, ip: gw, mac },
    { op: 'replaceFdb', dev, mac, dst: publicIP },
    { op: 'replaceRoute', route: { dst: subnet, via: gw, dev, onlink: true } },
  ];

  /** Records every write batch the network sends. */
  function recordBatches(): KernelOp[][] {
    const batches: KernelOp[][] = [];
    vi.spyOn(kernel, 'batch').mockImplementation(async function (this: FakeKernel, ops) {
      batches.push([...ops]);
      return FakeKernel.prototype.batch.call(this, ops);
    });
    return batches;
  }

  afterEach(() => vi.restoreAllMocks());

  it('removes only the stale peer, after the snapshot is programmed, in one batch; foreign entries stay', async () => {
    await registerWith({});
    // the previous run's peers A, B, C; B's lease was deleted while we were down
    for (const [l, i] of [[A, 0], [B, 32], [C, 48]] as const) {
      const m = (l.attrs.backendData as { VtepMAC: string }).VtepMAC;
      await kernel.batch(programmed('flannel.100', `10.10.${i}.0/20`, `10.10.${i}.0`, m, formatIP(l.attrs.publicIP)));
    }
    // not flannel's: a learned neighbour, an operator's dev route, the all-zeros flood entry on our
    // device; a look-alike device; a plain route on the underlay
    ns().neighs.push({ dev: 'flannel.100', ip: '10.10.99.9', mac: '0a:00:00:00:99:99', permanent: false });
    await kernel.replaceRoute({ dst: '10.99.0.0/16', dev: 'flannel.100' });
    await kernel.batch([{ op: 'appendFdb', dev: 'flannel.100', mac: '00:00:00:00:00:00', dst: '192.168.100.50' }]);
    await kernel.ensureVxlan('flannel.200', { vni: 200, port: 8472, local: '192.168.100.1', learning: false });
    await kernel.batch(programmed('flannel.200', '10.20.32.0/20', '10.20.32.0', '0a:00:00:00:00:03', '192.168.100.3'));
    await kernel.replaceRoute({ dst: '10.30.0.0/16', via: '192.168.100.3' });
    const foreign = JSON.stringify({
      neighs: ns().neighs.filter((n) => !(n.dev === 'flannel.100' && n.permanent)),
      fdb: ns().fdb.filter((f) => f.dev !== 'flannel.100' || f.mac === '00:00:00:00:00:00'),
      routes: ns().routes.filter((r) => !(r.dev === 'flannel.100' && r.onlink)),
    });

    // flanneld starts again: the device is there, so it is searched for leftovers
    const { nw, ac } = await registerWith({});
    const batches = recordBatches();
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: A }, { type: 'added', lease: C }]);
    await until(() => logs.some((l) => /^removed \d+ stale entries/.test(l)), 'a "removed N stale entries" line in logs', IN_PROCESS);
    await until(() => batches.length === 2, 'batches.length === 2', IN_PROCESS);

    expect(peerState('10.10.32.0/20')).toEqual({ neigh: undefined, route: undefined, fdb: [] });
    expect(ns().fdb.some((f) => f.mac === '0a:00:00:00:00:03' && f.dev === 'flannel.100')).toBe(false);
    for (const s of ['10.10.0.0/20', '10.10.48.0/20']) {
      const st = peerState(s);
      expect(st.neigh && st.route && st.fdb.length === 1).toBeTruthy();
    }
    expect(JSON.stringify({
      neighs: ns().neighs.filter((n) => !(n.dev === 'flannel.100' && n.permanent)),
      fdb: ns().fdb.filter((f) => f.dev !== 'flannel.100' || f.mac === '00:00:00:00:00:00'),
      routes: ns().routes.filter((r) => !(r.dev === 'flannel.100' && r.onlink)),
    })).toBe(foreign);
    // batch 1 programs the snapshot, batch 2 is the whole clean-up, route first
    expect(batches[1]).toEqual([
      { op: 'deleteRoute', route: { dst: '10.10.32.0/20', via: '10.10.32.0', dev: 'flannel.100', onlink: true } },
      { op: 'deleteNeigh', dev: 'flannel.100', ip: '10.10.32.0' },
      { op: 'deleteFdb', dev: 'flannel.100', mac: '0a:00:00:00:00:03', dst: '192.168.100.3' },
    ]);
    expect(logs.join('\n')).toMatch(/removed 3 stale entries .*route 10\.10\.32\.0\/20 dev flannel\.100/);
  });

  it('an empty snapshot removes every flannel-owned entry; nothing to remove means no batch', async () => {
    await registerWith({});
    await kernel.batch(programmed('flannel.100', '10.10.32.0/20', '10.10.32.0', '0a:00:00:00:00:03', '192.168.100.3'));
    const { nw, ac } = await registerWith({});
    const batches = recordBatches();
    void nw.run(ac.signal);
    manager.push([]);
    await until(() => batches.length === 1, 'batches.length === 1', IN_PROCESS);
    expect(ns().neighs).toEqual([]);
    expect(ns().fdb).toEqual([]);
    expect(ns().routes.filter((r) => r.dev === 'flannel.100')).toEqual([]);

    // a second start with nothing left over writes nothing
    ac.abort();
    const again = await registerWith({});
    const before = { batches: batches.length, calls: kernel.world.calls };
    void again.nw.run(again.ac.signal);
    manager.push([]);
    await again.nw.firstSync;
    expect(batches.length - before.batches).toBe(0);
    expect(kernel.world.calls - before.calls).toBe(3); // routes, neighbours, FDB of flannel.100
  });

  it('drops the FDB entry of the old VtepMAC of a peer that came back with a new one', async () => {
    await registerWith({});
    await kernel.batch(programmed('flannel.100', '10.10.32.0/20', '10.10.32.0', '0a:00:00:00:00:33', '192.168.100.3'));
    const { nw, ac } = await registerWith({});
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: B }]);
    await until(() => logs.some((l) => /^removed \d+ stale entries/.test(l)), 'a "removed N stale entries" line in logs', IN_PROCESS);
    expect(ns().fdb).toEqual([{ dev: 'flannel.100', mac: '0a:00:00:00:00:03', dst: '192.168.100.3', self: true, permanent: true }]);
    expect(ns().neighs).toEqual([{ dev: 'flannel.100', ip: '10.10.32.0', mac: '0a:00:00:00:00:03', permanent: true }]);
  });

  it('cleans flannel-v6.<VNI> in the same batch as flannel.<VNI>', async () => {
    await registerWith({ enableIPv6: true }, { extIface: EXT6 });
    const kept = dualLease({ subnet: '10.10.48.0/20', v6: 'fd00:10:48::/64', publicIP: '192.168.100.4', publicIPv6: 'fd00::4', mac: '0a:00:00:00:00:04', mac6: '0a:00:00:00:06:04' });
    // 10.10.32.0/20 & fd00:10:32::/64 were deleted while we were down
    for (const [i, m] of [[32, 3], [48, 4]] as const) {
      await kernel.batch([
        ...programmed('flannel.100', `10.10.${i}.0/20`, `10.10.${i}.0`, `0a:00:00:00:00:0${m}`, `192.168.100.${m}`),
        ...programmed('flannel-v6.100', `fd00:10:${i}::/64`, `fd00:10:${i}::`, `0a:00:00:00:06:0${m}`, `fd00::${m}`),
      ]);
    }
    const { nw, ac } = await registerWith({ enableIPv6: true }, { extIface: EXT6 });
    const batches = recordBatches();
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: kept }]);
    await until(() => batches.length === 2, 'batches.length === 2', IN_PROCESS);
    // per device route before neighbour; then one bridge run for both FDB entries
    expect(batches[1]!.map((o) => `${o.op} ${'dev' in o ? o.dev : o.op === 'deleteRoute' ? o.route.dev : ''}`)).toEqual([
      'deleteRoute flannel.100', 'deleteNeigh flannel.100', 'deleteRoute flannel-v6.100', 'deleteNeigh flannel-v6.100',
      'deleteFdb flannel.100', 'deleteFdb flannel-v6.100',
    ]);
    expect(ns().neighs.map((n) => n.ip).sort()).toEqual(['10.10.48.0', 'fd00:10:48::']);
    expect(ns().fdb.map((f) => f.dst).sort()).toEqual(['192.168.100.4', 'fd00::4']);
    expect(ns().routes.filter((r) => r.onlink).map((r) => r.dst).sort()).toEqual(['10.10.48.0/20', 'fd00:10:48::/64']);
  });

  it('recognises our routes as `ip route show dev X` lists them (without dev)', async () => {
    await registerWith({});
    await kernel.batch(programmed('flannel.100', '10.10.32.0/20', '10.10.32.0', '0a:00:00:00:00:03', '192.168.100.3'));
    const { nw, ac } = await registerWith({});
    const list = kernel.listRoutes.bind(kernel);
    vi.spyOn(kernel, 'listRoutes').mockImplementation(async (o) =>
      (await list(o)).map((r) => {
        if (o?.dev === undefined) return r;
        const { dev: _dev, ...rest } = r;
        return rest;
      }),
    );
    void nw.run(ac.signal);
    manager.push([]);
    await until(() => logs.some((l) => /^removed \d+ stale entries/.test(l)), 'a "removed N stale entries" line in logs', IN_PROCESS);
    expect(ns().routes.filter((r) => r.dev === 'flannel.100')).toEqual([]);
  });

  it('falls back to one entry at a time when the clean-up batch fails', async () => {
    await registerWith({});
    await kernel.batch(programmed('flannel.100', '10.10.32.0/20', '10.10.32.0', '0a:00:00:00:00:03', '192.168.100.3'));
    await kernel.batch(programmed('flannel.100', '10.10.48.0/20', '10.10.48.0', '0a:00:00:00:00:04', '192.168.100.4'));
    const { nw, ac } = await registerWith({});
    kernel.world.failOn('deleteNeigh');
    void nw.run(ac.signal);
    manager.push([]);
    await until(() => ns().fdb.length === 0 && ns().neighs.length === 0, 'ns().fdb.length === 0 && ns().neighs.length === 0', IN_PROCESS);
    expect(ns().routes.filter((r) => r.dev === 'flannel.100')).toEqual([]);
    expect(logs.join('\n')).toMatch(/failed to remove stale entries in one batch .*; removing them one by one/);
  });

  it('runs once, after the first batch only', async () => {
    await registerWith({});
    const { nw, ac } = await registerWith({});
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: A }]);
    await nw.firstSync;
    // an entry that shows up later is not ours to judge any more
    await kernel.batch(programmed('flannel.100', '10.10.32.0/20', '10.10.32.0', '0a:00:00:00:00:03', '192.168.100.3'));
    manager.push([{ type: 'added', lease: C }]);
    await until(() => nw.knownPeers().size === 2, 'nw.knownPeers().size === 2', IN_PROCESS);
    expect(peerState('10.10.32.0/20').route).toBeDefined();
    expect(logs.join('\n')).not.toMatch(/stale entries/);
  });

  it('leaves a direct route (DirectRouting) alone: it is not on our device', async () => {
    ns().routes.push({ family: 4, dst: '192.168.100.0/24', dev: 'eth0', scope: 'link', proto: 'kernel' });
    await registerWith({ backend: { ...BACKEND, DirectRouting: true } });
    await kernel.replaceRoute({ dst: '10.10.32.0/20', via: '192.168.100.3' });
    const { nw, ac } = await registerWith({ backend: { ...BACKEND, DirectRouting: true } });
    void nw.run(ac.signal);
    manager.push([{ type: 'added', lease: A }]);
    await nw.firstSync;
    expect(nw.knownPeers().size).toBe(1);
    expect(ns().routes.find((r) => r.dst === '10.10.32.0/20')).toEqual({ family: 4, dst: '10.10.32.0/20', via: '192.168.100.3' });
    expect(ns().routes.find((r) => r.dst === '10.10.0.0/20')).toMatchObject({ via: '192.168.100.2' });
  });
});
