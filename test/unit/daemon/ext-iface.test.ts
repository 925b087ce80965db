import { describe, expect, it } from 'vitest';
import { FakeKernel } from '../../../shared/kernel/fake/fake-kernel.js';
import { formatIP } from '../../../shared/net/ip.js';
import { lookupExtIface, type ExtIfaceOptions } from '../../../daemon/ext-iface.js';
import { memoryLogger } from '../../../shared/log.js';

// match_test.go's setup: dummy0 with several addresses, plus eth0 holding the default route.
function world(): FakeKernel {
  const k = new FakeKernel();
  const ns = k.ns;
  ns.links.set('eth0', { name: 'eth0', index: 2, kind: 'veth', mtu: 1500, mac: '02:00:00:00:00:01', up: true });
  ns.links.set('dummy0', { name: 'dummy0', index: 3, kind: 'dummy', mtu: 1400, mac: '02:00:00:00:00:02', up: true });
  ns.addrs.push(
    { dev: 'lo', family: 4, cidr: '127.0.0.1/8', scope: 'host' },
    { dev: 'eth0', family: 4, cidr: '192.168.1.10/24', scope: 'global' },
    { dev: 'eth0', family: 6, cidr: 'fe80::1/64', scope: 'link' },
    { dev: 'eth0', family: 6, cidr: '2001:db8:1::10/64', scope: 'global' },
    { dev: 'dummy0', family: 4, cidr: '1.10.100.1/24', scope: 'global' },
    { dev: 'dummy0', family: 4, cidr: '192.168.200.5/24', scope: 'global' },
    { dev: 'dummy0', family: 6, cidr: '2001:db8::1/64', scope: 'global' },
  );
  ns.routes.push(
    { family: 4, dst: 'default', via: '192.168.1.1', dev: 'eth0' },
    { family: 4, dst: '192.168.1.0/24', dev: 'eth0', src: '192.168.1.10' },
    { family: 4, dst: '1.10.100.0/24', dev: 'dummy0', src: '1.10.100.1' },
    { family: 6, dst: 'default', via: 'fe80::ff', dev: 'eth0' },
  );
  return k;
}

const base: ExtIfaceOptions = { ifaces: [], ifaceRegex: [], enableIPv4: true, enableIPv6: false };

describe('lookupExtIface (match_test.go TestLookupExtIface)', () => {
  it('regex on IPs gives that IP', async () => {
    const e = await lookupExtIface(world(), { ...base, ifaceRegex: ['192\\.168\\.200\\.\\d+'] }, memoryLogger());
    expect(e.iface.name).toBe('dummy0');
    expect(formatIP(e.ifaceAddr!)).toBe('192.168.200.5');
  });

  it('regex on names gives the first address', async () => {
    const e = await lookupExtIface(world(), { ...base, ifaceRegex: ['dummy\\d+'] }, memoryLogger());
    expect(e.iface.name).toBe('dummy0');
    expect(formatIP(e.ifaceAddr!)).toBe('1.10.100.1');
    expect(e.iface.mtu).toBe(1400);
  });

  it('by name and by IP', async () => {
    expect((await lookupExtIface(world(), { ...base, ifaces: ['dummy0'] }, memoryLogger())).iface.name).toBe('dummy0');
    const byIP = await lookupExtIface(world(), { ...base, ifaces: ['192.168.200.5'] }, memoryLogger());
    expect(byIP.iface.name).toBe('dummy0');
    expect(formatIP(byIP.ifaceAddr!)).toBe('192.168.200.5');
  });

  it('tries each --iface in order, the first match wins', async () => {
    const log = memoryLogger();
    const e = await lookupExtIface(world(), { ...base, ifaces: ['nope0', 'eth0', 'dummy0'] }, log);
    expect(e.iface.name).toBe('eth0');
    expect(log.lines.join('\n')).toContain('Could not find valid interface matching nope0');
  });

  it('dual stack picks up the v6 address', async () => {
    const e = await lookupExtIface(world(), { ...base, ifaces: ['dummy0'], enableIPv6: true }, memoryLogger());
    expect(formatIP(e.ifaceV6Addr!)).toBe('2001:db8::1');
    expect(formatIP(e.extV6Addr!)).toBe('2001:db8::1');
  });

  it('global addresses come before link-local ones', async () => {
    const e = await lookupExtIface(world(), { ...base, ifaces: ['eth0'], enableIPv6: true }, memoryLogger());
    expect(formatIP(e.ifaceV6Addr!)).toBe('2001:db8:1::10');
  });

  it('--public-ip overrides ExtAddr, not IfaceAddr', async () => {
    const e = await lookupExtIface(world(), { ...base, ifaces: ['dummy0'], publicIP: '203.0.113.7' }, memoryLogger());
    expect(formatIP(e.extAddr!)).toBe('203.0.113.7');
    expect(formatIP(e.ifaceAddr!)).toBe('1.10.100.1');
  });

  it('--iface-can-reach picks the route device and source', async () => {
    const e = await lookupExtIface(world(), { ...base, ifaceCanReach: '1.10.100.77' }, memoryLogger());
    expect(e.iface.name).toBe('dummy0');
    expect(formatIP(e.ifaceAddr!)).toBe('1.10.100.1');
  });

  it('no flags: the default-route interface', async () => {
    const e = await lookupExtIface(world(), base, memoryLogger());
    expect(e.iface.name).toBe('eth0');
    expect(formatIP(e.extAddr!)).toBe('192.168.1.10');
  });

  it('dual stack: v4 and v6 default routes must use the same interface', async () => {
    const k = world();
    k.ns.routes = k.ns.routes.map((r) => (r.family === 6 ? { ...r, dev: 'dummy0' } : r));
    await expect(lookupExtIface(k, { ...base, enableIPv6: true }, memoryLogger())).rejects.toThrow(
      'Failed to find any valid interface to use: v6 default route interface dummy0 must be the same with v4 default route interface eth0',
    );
  });

  it('explicit flags that match nothing fail with Go message', async () => {
    await expect(lookupExtIface(world(), { ...base, ifaces: ['nope0'], ifaceRegex: ['zz\\d'] }, memoryLogger())).rejects.toThrow(
      'Failed to find interface to use that matches the interfaces and/or regexes provided',
    );
  });

  it('lo (host scope only) is usable, with a warning', async () => {
    const log = memoryLogger();
    const e = await lookupExtIface(world(), { ...base, ifaces: ['lo'] }, log);
    expect(formatIP(e.ifaceAddr!)).toBe('127.0.0.1');
    expect(log.lines.some((l) => l.startsWith('W') && l.includes('no global or link-local'))).toBe(true);
  });

  it('rejects a bad --public-ip', async () => {
    await expect(lookupExtIface(world(), { ...base, publicIP: 'fd00::1' }, memoryLogger())).rejects.toThrow('invalid public IP address');
  });
});
