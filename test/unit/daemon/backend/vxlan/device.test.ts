// The vxlan device: compatibility of an existing link, its addresses.
import { describe, expect, it, vi } from 'vitest';
import { FakeKernel } from '../../../../../shared/kernel/fake/fake-kernel.js';
import type { KernelOp } from '../../../../../shared/kernel/kernel.js';
import { vxlanIncompat } from '../../../../../daemon/backend/vxlan/device.js';
import { addrsOn, EXT6, kernel, lease, logs, manager, ns, registerWith, useVxlanHarness } from './harness.js';
import { until, IN_PROCESS } from '../../../../helpers/until.js';

useVxlanHarness();

describe('vxlanIncompat', () => {
  const base = { name: 'flannel.1', family: 4 as const, vni: 1, vtepDev: 'eth0', vtepAddr: '10.0.0.1', vtepPort: 0, gbp: false, learning: false, mtu: 1450, mac: '0a:00:00:00:00:01' };
  const link = { name: 'flannel.1', index: 5, kind: 'vxlan', mtu: 1450, mac: '0a:00:00:00:00:01', up: true, vxlan: { vni: 1, port: 8472, local: '10.0.0.1', learning: false, gbp: false, dev: 'eth0' } };
  it('treats Port 0 as the kernel default 8472 and ignores the MTU', () => {
    expect(vxlanIncompat({ ...link, mtu: 9000 }, base)).toBeUndefined();
    expect(vxlanIncompat({ ...link, vxlan: { ...link.vxlan, port: 4789 } }, base)).toMatch(/port 4789 != 8472/);
  });
  it('names the first difference', () => {
    expect(vxlanIncompat({ ...link, kind: 'bridge' }, base)).toMatch(/type bridge/);
    expect(vxlanIncompat({ ...link, vxlan: { ...link.vxlan, gbp: true } }, base)).toMatch(/gbp/);
  });
});

describe('device address (upstream TestEnsureV4AddressOnLink)', () => {
  it('keeps addresses outside the flannel Network and removes the other ones inside it', async () => {
    await registerWith({ network: '10.10.0.0/16' });
    for (const cidr of ['10.10.32.0/32', '10.10.48.1/24', '192.0.2.7/32', '172.31.1.1/24']) await kernel.ensureAddr('flannel.100', cidr);
    await registerWith({ network: '10.10.0.0/16' });
    expect(addrsOn('flannel.100')).toEqual(['10.10.16.0/32', '172.31.1.1/24', '192.0.2.7/32']);
    expect(logs.filter((l) => l.includes('removing stale address')).sort()).toEqual([
      'removing stale address 10.10.32.0/32 from flannel.100',
      'removing stale address 10.10.48.1/24 from flannel.100',
    ]);
  });

  it('replaces our own address held with another prefix length', async () => {
    await registerWith({ network: '10.10.0.0/16' });
    await kernel.deleteAddr('flannel.100', '10.10.16.0/32');
    await kernel.ensureAddr('flannel.100', '10.10.16.0/20');
    await registerWith({ network: '10.10.0.0/16' });
    expect(addrsOn('flannel.100')).toEqual(['10.10.16.0/32']);
  });

  it('removes stale addresses, adds ours and sets the link up in one batch', async () => {
    await registerWith({ network: '10.10.0.0/16' });
    await kernel.ensureAddr('flannel.100', '10.10.32.0/32');
    await kernel.setLinkDown('flannel.100');
    const batches: KernelOp[][] = [];
    const spy = vi.spyOn(kernel, 'batch').mockImplementation(async function (this: FakeKernel, ops) {
      batches.push([...ops]);
      return FakeKernel.prototype.batch.call(this, ops);
    });
    await registerWith({ network: '10.10.0.0/16' });
    spy.mockRestore();
    expect(batches).toEqual([[
      { op: 'deleteAddr', dev: 'flannel.100', cidr: '10.10.32.0/32' },
      { op: 'setLinkUp', dev: 'flannel.100' },
    ]]);
    expect(ns().links.get('flannel.100')!.up).toBe(true);
  });

  it('refuses a peer whose subnet lies outside the Network (no route over the LAN or the default)', async () => {
    const { nw, ac } = await registerWith({ network: '10.10.0.0/16' });
    void nw.run(ac.signal);
    manager.push([
      { type: 'added', lease: lease('192.168.100.0/24', '192.168.100.3', '0a:00:00:00:00:03') },
      { type: 'added', lease: lease('10.10.32.0/20', '192.168.100.2', '0a:00:00:00:00:02') },
    ]);
    await until(() => nw.knownPeers().size === 1, 'nw.knownPeers().size === 1', IN_PROCESS);
    expect(ns().routes.filter((r) => r.dev === 'flannel.100').map((r) => r.dst)).toEqual(['10.10.32.0/20']);
    expect(logs.join('\n')).toMatch(/refusing peer lease 192\.168\.100\.0\/24 .*: its subnet 192\.168\.100\.0\/24 is outside the network 10\.10\.0\.0\/16/);
    ac.abort();
  });

  it('the watchdog re-configures a repaired device with the same rule', async () => {
    const { nw } = await registerWith({ network: '10.10.0.0/16' });
    await kernel.ensureAddr('flannel.100', '192.0.2.7/32');
    await kernel.ensureAddr('flannel.100', '10.10.99.0/32');
    await kernel.setLinkDown('flannel.100');
    await nw.checkDevices();
    expect(addrsOn('flannel.100')).toEqual(['10.10.16.0/32', '192.0.2.7/32']);
  });

  it('IPv6: keeps link-local addresses and exactly one global one (upstream EnsureV6AddressOnLink)', async () => {
    await registerWith({ enableIPv6: true, network: '10.10.0.0/16' }, { extIface: EXT6 });
    await kernel.ensureAddr('flannel-v6.100', 'fd00:99::1/128');
    await kernel.ensureAddr('flannel-v6.100', 'fe80::1/64');
    await registerWith({ enableIPv6: true, network: '10.10.0.0/16' }, { extIface: EXT6 });
    expect(addrsOn('flannel-v6.100')).toEqual(['fd00:10:16::/128', 'fe80::1/64']);
  });
});
