// match_test.go TestLookupExtIface on the real kernel (Go runs it with sudo on a dummy0 holding
// several addresses): lookupExtIface through the iproute kernel inside a namespace of our own, so
// the address order, scopes, link-local v6 addresses and `ip route get` sources are the kernel's.
// The unit test (test/unit/daemon/ext-iface.test.ts) covers the same cases on FakeKernel.
// No dummy module here: "dummy0" is one end of a veth pair, whose other end (dpeer, created first,
// so listed first) must not match `dummy\d+`: Go, like us, takes the first name match and then fails
// for want of an address.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKernel } from '../../../shared/kernel/iproute2/kernel.js';
import type { Kernel } from '../../../shared/kernel/kernel.js';
import { formatIP } from '../../../shared/net/ip.js';
import { type ExtIfaceOptions, lookupExtIface } from '../../../daemon/ext-iface.js';
import { memoryLogger } from '../../../shared/log.js';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';

const base: ExtIfaceOptions = { ifaces: [], ifaceRegex: [], enableIPv4: true, enableIPv6: false };

describe.skipIf(!canUseNetns)('lookupExtIface on a real kernel (TestLookupExtIface)', () => {
  let ns: Netns;
  let k: Kernel;
  const lookup = async (o: Partial<ExtIfaceOptions>) => {
    const e = await lookupExtIface(k, { ...base, ...o }, memoryLogger());
    return {
      name: e.iface.name,
      ifaceAddr: e.ifaceAddr && formatIP(e.ifaceAddr),
      extAddr: e.extAddr && formatIP(e.extAddr),
      ifaceV6Addr: e.ifaceV6Addr && formatIP(e.ifaceV6Addr),
      mtu: e.iface.mtu,
    };
  };

  beforeAll(() => {
    ns = createNetns('ext');
    const sh = (...argv: string[]) => ns.exec(argv);
    sh('ip', 'link', 'add', 'eth0', 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'eth0p');
    sh('ip', 'link', 'add', 'dummy0', 'mtu', '1400', 'type', 'veth', 'peer', 'name', 'dpeer');
    for (const l of ['eth0', 'eth0p', 'dummy0', 'dpeer']) sh('ip', 'link', 'set', l, 'up');
    sh('ip', 'addr', 'add', '192.168.1.10/24', 'dev', 'eth0');
    sh('ip', '-6', 'addr', 'add', '2001:db8:1::10/64', 'dev', 'eth0', 'nodad');
    sh('ip', 'addr', 'add', '1.10.100.1/24', 'dev', 'dummy0');
    sh('ip', 'addr', 'add', '192.168.200.5/24', 'dev', 'dummy0');
    sh('ip', '-6', 'addr', 'add', '2001:db8::1/64', 'dev', 'dummy0', 'nodad');
    sh('ip', 'route', 'add', 'default', 'via', '192.168.1.1', 'dev', 'eth0');
    k = createKernel().inNetns(ns.path);
  });
  afterAll(() => {
    ns?.delete();
    cleanupNetns();
  });

  it('regex 192\\.168\\.200\\.\\d+ gives that IP on dummy0', async () => {
    expect(await lookup({ ifaceRegex: ['192\\.168\\.200\\.\\d+'] })).toMatchObject({ name: 'dummy0', ifaceAddr: '192.168.200.5', mtu: 1400 });
  });

  it('regex dummy\\d+ gives dummy0 with its first address 1.10.100.1', async () => {
    expect(await lookup({ ifaceRegex: ['dummy\\d+'] })).toMatchObject({ name: 'dummy0', ifaceAddr: '1.10.100.1' });
  });

  it('by name and by IP', async () => {
    expect(await lookup({ ifaces: ['dummy0'] })).toMatchObject({ name: 'dummy0', ifaceAddr: '1.10.100.1' });
    expect(await lookup({ ifaces: ['192.168.200.5'] })).toMatchObject({ name: 'dummy0', ifaceAddr: '192.168.200.5' });
    expect(await lookup({ ifaces: ['nope0', '192.168.1.10'] })).toMatchObject({ name: 'eth0', ifaceAddr: '192.168.1.10' });
  });

  it('dual stack picks up 2001:db8::1, not the kernel-made link-local address', async () => {
    const ll = ns.exec(['ip', '-6', '-o', 'addr', 'show', 'dev', 'dummy0', 'scope', 'link']).stdout;
    expect(ll).toMatch(/inet6 fe80::/); // the kernel gave dummy0 one, and lists it
    expect(await lookup({ ifaces: ['dummy0'], enableIPv6: true })).toMatchObject({ ifaceAddr: '1.10.100.1', ifaceV6Addr: '2001:db8::1' });
  });

  it('PublicIP overrides ExtAddr, not IfaceAddr', async () => {
    expect(await lookup({ ifaces: ['dummy0'], publicIP: '203.0.113.7' })).toMatchObject({ ifaceAddr: '1.10.100.1', extAddr: '203.0.113.7' });
  });

  it('ifcanreach picks the route device and its Src', async () => {
    expect(await lookup({ ifaceCanReach: '192.168.200.77' })).toMatchObject({ name: 'dummy0', ifaceAddr: '192.168.200.5' });
    expect(await lookup({ ifaceCanReach: '8.8.8.8' })).toMatchObject({ name: 'eth0', ifaceAddr: '192.168.1.10' });
  });

  it('no flags: the default-route interface; explicit flags that match nothing: Go message', async () => {
    expect(await lookup({})).toMatchObject({ name: 'eth0', ifaceAddr: '192.168.1.10', extAddr: '192.168.1.10', mtu: 1500 });
    await expect(lookup({ ifaces: ['nope0'], ifaceRegex: ['^zz'] })).rejects.toThrow(
      'Failed to find interface to use that matches the interfaces and/or regexes provided',
    );
  });
});
