import { describe, expect, it } from 'vitest';
import { isExists, isNotFound, KernelError } from '../../../../../shared/kernel/errors.js';
import { FakeKernel, FakeWorld } from '../../../../../shared/kernel/fake/fake-kernel.js';
import { FakeIptables } from '../../../../../shared/kernel/fake/fake-iptables.js';

describe('FakeKernel', () => {
  it('models a bridge ADD: veth into a pod netns, master, addresses, routes, sysctls', async () => {
    const world = new FakeWorld();
    world.addNetns('/pod');
    const k = new FakeKernel(world);
    const br = await k.ensureBridge('cni0', { mtu: 1450 });
    expect(br).toMatchObject({ kind: 'bridge', up: true, mtu: 1450 });
    await k.batch([{ op: 'addVeth', name: 'veth1', peer: 'eth0', peerNetns: '/pod' }, { op: 'setLink', dev: 'veth1', master: 'cni0', up: true }, { op: 'sysctl', key: 'net/ipv6/conf/veth1/accept_ra', value: '0' }]);
    const pod = k.inNetns('/pod');
    await pod.batch([{ op: 'addAddr', dev: 'eth0', cidr: '10.244.1.2/24' }, { op: 'setLinkUp', dev: 'eth0' }, { op: 'addRoute', route: { dst: 'default', via: '10.244.1.1', dev: 'eth0' } }]);
    expect((await k.getLink('veth1'))?.operstate).toBe('UP');
    expect(await pod.listAddrs({ dev: 'eth0' })).toEqual([{ dev: 'eth0', family: 4, cidr: '10.244.1.2/24', scope: 'global' }]);
    expect((await pod.listRoutes()).map((r) => r.dst)).toEqual(['10.244.1.0/24', 'default']);
    expect(await pod.routeGet('8.8.8.8')).toMatchObject({ via: '10.244.1.1', dev: 'eth0', prefsrc: '10.244.1.2' });
    expect(isExists(await pod.addRoute({ dst: 'default', via: '10.244.1.1', dev: 'eth0' }).catch((e: unknown) => e))).toBe(true);
    expect(await k.readSysctl('net.ipv6.conf.veth1.accept_ra')).toBe('0');
    await pod.deleteLink('eth0');
    expect(await k.getLink('veth1')).toBeUndefined();
    world.deleteNetns('/pod');
    expect(isNotFound(await pod.deleteLink('eth0').catch((e: unknown) => e))).toBe(true);
  });

  it('injected failures and exec counting', async () => {
    const k = new FakeKernel();
    k.world.failOn('ensureAddr');
    await expect(k.ensureAddr('lo', '10.0.0.1/8')).rejects.toBeInstanceOf(KernelError);
    const before = k.world.execs;
    await k.ensureAddr('lo', '10.0.0.1/8');
    await k.ensureAddr('lo', '10.0.0.1/8');
    expect(k.world.execs - before).toBe(2);
  });

  it('blackhole routes: strict add is refused while another route holds the dst; listRoutes({type})', async () => {
    const k = new FakeKernel();
    await k.batch([{ op: 'addBridge', name: 'cni0' }, { op: 'addAddr', dev: 'cni0', cidr: '10.244.1.1/24' }]);
    const err = await k.batch([{ op: 'addRoute', route: { dst: '10.244.1.0/24', type: 'blackhole' } }]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EEXIST', index: 0, op: { op: 'addRoute' } });
    await k.batch([{ op: 'addRoute', route: { dst: '10.244.2.0/24', type: 'blackhole' } }]);
    expect(await k.listRoutes({ type: 'blackhole' })).toEqual([{ family: 4, dst: '10.244.2.0/24', type: 'blackhole' }]);
  });

  it('prependRoute adds beside another route to the same dst; an identical one is EEXIST', async () => {
    const k = new FakeKernel();
    await k.batch([{ op: 'addBridge', name: 'cni0' }, { op: 'addAddr', dev: 'cni0', cidr: '10.244.1.1/24' }]);
    const route = { dst: '10.244.1.0/24', via: '10.244.1.1', dev: 'cni0' };
    expect(await k.batch([{ op: 'addRoute', route }]).catch((e: unknown) => e)).toMatchObject({ code: 'EEXIST' });
    await k.batch([{ op: 'prependRoute', route }]);
    expect((await k.listRoutes({ dev: 'cni0' })).filter((r) => r.dst === '10.244.1.0/24')).toHaveLength(2);
    expect(await k.batch([{ op: 'prependRoute', route }]).catch((e: unknown) => e)).toMatchObject({ code: 'EEXIST' });
  });

  it('addVxlan creates strictly', async () => {
    const k = new FakeKernel();
    const spec = { vni: 1, port: 8472, local: '10.0.0.1', learning: false, mac: '02:AA:00:00:00:01' };
    await k.batch([{ op: 'addVxlan', name: 'flannel.1', ...spec }]);
    expect(await k.getLink('flannel.1')).toMatchObject({ kind: 'vxlan', mac: '02:aa:00:00:00:01', vxlan: { vni: 1, port: 8472, local: '10.0.0.1', learning: false, gbp: false } });
    expect(await k.batch([{ op: 'addVxlan', name: 'flannel.1', ...spec }]).catch((e: unknown) => e)).toMatchObject({ code: 'EEXIST' });
  });

  it('fdb append twice does not duplicate; neigh replace overwrites', async () => {
    const k = new FakeKernel();
    await k.ensureVxlan('vx0', { vni: 1, port: 8472, local: '10.0.0.1', learning: false });
    const ops = [
      { op: 'appendFdb' as const, dev: 'vx0', mac: 'AA:bb:cc:dd:ee:ff', dst: '10.0.0.2' },
      { op: 'replaceNeigh' as const, dev: 'vx0', ip: '10.1.0.0', mac: 'aa:bb:cc:dd:ee:ff' },
    ];
    await k.batch(ops);
    await k.batch(ops);
    expect(await k.listFdb('vx0')).toHaveLength(1);
    expect(await k.listNeighs('vx0')).toEqual([{ dev: 'vx0', ip: '10.1.0.0', mac: 'aa:bb:cc:dd:ee:ff', permanent: true }]);
  });
});

describe('FakeIptables', () => {
  it('ensureRule is unique, deletes tolerate missing with missingOk', async () => {
    const ipt = new FakeIptables();
    await ipt.ensureChain('nat', 'CNI-x');
    await ipt.ensureRule('nat', 'CNI-x', ['-j', 'ACCEPT']);
    await ipt.ensureRule('nat', 'CNI-x', ['-j', 'ACCEPT']);
    expect(await ipt.listRules('nat', 'CNI-x')).toEqual(['-N CNI-x', '-A CNI-x -j ACCEPT']);
    await ipt.deleteChain('nat', 'CNI-x');
    await ipt.deleteChain('nat', 'CNI-x', { missingOk: true });
    const err = await ipt.deleteRule('nat', 'CNI-x', ['-j', 'ACCEPT']).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENOENT' });
    expect(isNotFound(err)).toBe(true);
    ipt.failNextRestore('line 2 failed', 'EPERM');
    expect(await ipt.restore('nat', [{ action: '-A', chain: 'POSTROUTING', rule: ['-j', 'ACCEPT'] }]).catch((e: unknown) => e)).toMatchObject({ code: 'EPERM' });
  });
});
