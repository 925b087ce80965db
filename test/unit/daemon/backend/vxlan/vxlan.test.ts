// vxlan backend: config parsing and registerNetwork (device, VtepMAC, lease).
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseIP, parseNet } from '../../../../../shared/net/ip.js';
import { macFilePath, parseVxlanConfig } from '../../../../../daemon/backend/vxlan/vxlan.js';
import { BACKEND, controllers, deps, EXT, kernel, lease, logs, manager, ns, register, stateDir, OWN_SUBNET, useVxlanHarness } from './harness.js';
import type { ExternalInterface } from '../../../../../daemon/backend/backend.js';
import { createVxlanBackend } from '../../../../../daemon/backend/vxlan/vxlan.js';

useVxlanHarness();

describe('parseVxlanConfig', () => {
  it('defaults as upstream: VNI 1, Port 0 (kernel 8472), nolearning, MTU of the interface', () => {
    expect(parseVxlanConfig({ Type: 'vxlan' }, 1500)).toEqual({ vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 1500 });
  });

  it('reads every key case-insensitively', () => {
    expect(parseVxlanConfig({ type: 'vxlan', vni: 42, port: 4789, gbp: true, learning: true, directRouting: true, mtu: 9000 }, 1500)).toEqual({
      vni: 42, port: 4789, gbp: true, learning: true, directRouting: true, mtu: 9000,
    });
  });

  it.each([
    [{ VNI: '100' }, /error decoding VXLAN backend config: json: cannot unmarshal string into Go struct field .*VNI of type int/],
    [{ Port: 1.5 }, /error decoding VXLAN backend config: .*Port of type int/],
    [{ Learning: 'yes' }, /error decoding VXLAN backend config: .*Learning of type bool/],
    [{ VNI: 1 << 24 }, /error decoding VXLAN backend config: VNI 16777216 out of range/],
  ])('rejects %j', (raw, msg) => {
    expect(() => parseVxlanConfig(raw, 1500)).toThrow(msg);
  });
});

describe('registerNetwork', () => {
  it('creates flannel.<VNI> as upstream and acquires the lease with the exact BackendData', async () => {
    const { nw } = await register();
    const link = ns().links.get('flannel.100')!;
    expect(link.kind).toBe('vxlan');
    expect(link.vxlan).toMatchObject({ vni: 100, port: 8472, local: '192.168.100.1', learning: false, gbp: false, dev: 'eth0' });
    expect(link.mtu).toBe(1450);
    expect(link.up).toBe(true);
    expect(ns().addrs.filter((a) => a.dev === 'flannel.100').map((a) => a.cidr)).toEqual(['10.10.16.0/32']);
    // no whole-network or subnet route on the device: only per-peer routes
    expect(ns().routes.filter((r) => r.dev === 'flannel.100')).toEqual([]);
    expect(nw.mtu()).toBe(1450);
    expect(nw.lease().subnet).toEqual(parseNet(OWN_SUBNET));

    const attrs = manager.acquired[0]!;
    expect(attrs.backendType).toBe('vxlan');
    expect(JSON.stringify(attrs.backendData)).toBe(`{"VNI":100,"VtepMAC":"${link.mac}"}`);
    expect(readFileSync(macFilePath(stateDir, 'flannel.100'), 'utf8').trim()).toBe(link.mac);
  });

  it('uses the configured underlay MTU minus 50 and learning/GBP when asked', async () => {
    const { nw } = await register({ Type: 'vxlan', VNI: 7, MTU: 9000, Learning: true, GBP: true });
    const link = ns().links.get('flannel.7')!;
    expect(link.mtu).toBe(8950);
    expect(link.vxlan).toMatchObject({ vni: 7, learning: true, gbp: true });
    expect(nw.mtu()).toBe(8950);
  });

  it('keeps the VtepMAC and the device across a restart', async () => {
    await register();
    const first = { ...ns().links.get('flannel.100')! };
    await register();
    const second = ns().links.get('flannel.100')!;
    expect(second.mac).toBe(first.mac);
    expect(second.index).toBe(first.index);
    expect(JSON.stringify(manager.acquired[1]!.backendData)).toBe(JSON.stringify(manager.acquired[0]!.backendData));
  });

  it('re-creates a lost device with the persisted MAC', async () => {
    await register();
    const mac = ns().links.get('flannel.100')!.mac;
    await kernel.deleteLink('flannel.100');
    await register();
    expect(ns().links.get('flannel.100')!.mac).toBe(mac);
  });

  it('adopts the MAC of a device left by an earlier flanneld when no MAC was persisted', async () => {
    await kernel.ensureVxlan('flannel.100', { vni: 100, port: 8472, local: '192.168.100.1', dev: 'eth0', learning: false, mac: '0a:11:22:33:44:55', mtu: 1450 });
    await register();
    expect(ns().links.get('flannel.100')!.mac).toBe('0a:11:22:33:44:55');
    expect(readFileSync(macFilePath(stateDir, 'flannel.100'), 'utf8').trim()).toBe('0a:11:22:33:44:55');
  });

  it('reconciles the MTU of a compatible device without re-creating it', async () => {
    await register();
    const before = ns().links.get('flannel.100')!;
    await kernel.setLinkMtu('flannel.100', 1300);
    await register();
    const after = ns().links.get('flannel.100')!;
    expect(after.index).toBe(before.index);
    expect(after.mtu).toBe(1450);
  });

  it.each([
    ['another local address', { local: '192.168.100.9' }],
    ['another VNI', { vni: 5 }],
    ['learning on', { learning: true }],
  ])('re-creates a device with %s', async (_what, change) => {
    writeFileSync(macFilePath(stateDir, 'flannel.100'), '0a:bb:cc:dd:ee:ff\n');
    await kernel.ensureVxlan('flannel.100', {
      vni: 100, port: 8472, local: '192.168.100.1', dev: 'eth0', learning: false, mac: '0a:bb:cc:dd:ee:ff', mtu: 1450, ...change,
    });
    const before = ns().links.get('flannel.100')!.index;
    await register();
    const link = ns().links.get('flannel.100')!;
    expect(link.index).not.toBe(before);
    expect(link.mac).toBe('0a:bb:cc:dd:ee:ff');
    expect(link.vxlan).toMatchObject({ vni: 100, local: '192.168.100.1', learning: false });
    expect(logs.join('\n')).toMatch(/incompatible configuration/);
  });

  it('removes a stale address of an earlier lease (no Network given: every other v4 address)', async () => {
    await register();
    await kernel.ensureAddr('flannel.100', '10.10.32.0/32');
    await register();
    expect(ns().addrs.filter((a) => a.dev === 'flannel.100').map((a) => a.cidr)).toEqual(['10.10.16.0/32']);
  });

  it('gives the IPv6 device MTU − 70', async () => {
    const ext: ExternalInterface = { ...EXT, ifaceV6Addr: parseIP('fd00::1'), extV6Addr: parseIP('fd00::1') };
    const ac = new AbortController();
    controllers.push(ac);
    const nw = await createVxlanBackend(deps({ extIface: ext })).registerNetwork(ac.signal, { enableIPv4: true, enableIPv6: true, backend: BACKEND });
    expect(ns().links.get('flannel.100')!.mtu).toBe(1450);
    expect(ns().links.get('flannel-v6.100')!.mtu).toBe(1430);
    expect(ns().addrs.filter((a) => a.dev === 'flannel-v6.100').map((a) => a.cidr)).toEqual(['fd00:10:16::/128']);
    expect(nw.mtu()).toBe(1430);
    const attrs = manager.acquired[0]!;
    expect((attrs.backendV6Data as { VtepMAC: string }).VtepMAC).toBe(ns().links.get('flannel-v6.100')!.mac);
  });
});
