import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKernel } from '../../../shared/kernel/iproute2/kernel.js';
import { isExists, isNotFound, KernelError } from '../../../shared/kernel/errors.js';
import type { Kernel } from '../../../shared/kernel/kernel.js';
import { createIptables } from '../../../shared/kernel/iproute2/iptables.js';
import { countingExec, spawnExec } from '../../../shared/kernel/iproute2/exec.js';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';

describe.skipIf(!canUseNetns)('iproute kernel in a netns', () => {
  let host: Netns;
  let pod: Netns;
  let k: Kernel;

  beforeEach(() => {
    host = createNetns('kh');
    pod = createNetns('kp');
    k = createKernel().inNetns(host.path);
  });
  afterEach(() => {
    host.delete();
    pod.delete();
  });
  afterAll(cleanupNetns);

  it('reads lo and reports a missing link as undefined', async () => {
    const lo = await k.getLink('lo');
    expect(lo).toMatchObject({ name: 'lo', index: 1, kind: 'loopback', up: true });
    expect(await k.getLink('nope0')).toBeUndefined();
    const links = await k.listLinks();
    expect(links.map((l) => l.name)).toEqual(['lo']);
  });

  it('a bridge: strict create (EEXIST the second time), mtu, down, delete', async () => {
    await k.batch([{ op: 'addBridge', name: 'br0', mtu: 1400 }, { op: 'setLinkUp', dev: 'br0' }]);
    const a = await k.getLink('br0');
    expect(a).toMatchObject({ name: 'br0', kind: 'bridge', mtu: 1400, up: true, bridge: { vlanFiltering: false } });
    const again = await k.batch([{ op: 'addBridge', name: 'br0', mtu: 9000 }]).catch((e: unknown) => e);
    expect(again).toMatchObject({ code: 'EEXIST', index: 0, op: { op: 'addBridge' } });
    expect(isExists(again)).toBe(true);
    await k.batch([{ op: 'setLink', dev: 'br0', promisc: true }]);
    expect(await k.getLink('br0')).toMatchObject({ index: a!.index, mtu: 1400, promisc: true });
    await k.setLinkMtu('br0', 1300);
    expect((await k.getLink('br0'))?.mtu).toBe(1300);
    await k.setLinkDown('br0');
    expect((await k.getLink('br0'))?.up).toBe(false);
    await k.deleteLink('br0');
    expect(await k.getLink('br0')).toBeUndefined();
    await k.deleteLink('br0', { missingOk: true });
    const err = await k.deleteLink('br0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect(isNotFound(err)).toBe(true);
    await k.setLinkDown('br0', { missingOk: true });
  });

  it('creates a veth pair with the peer directly in another netns, enslaves it, sets port flags', async () => {
    await k.batch([{ op: 'addBridge', name: 'br0' }, { op: 'addVeth', name: 'vethaa', peer: 'eth0', peerNetns: pod.path, mtu: 1450, peerMac: '02:11:22:33:44:55' }]);
    const hostEnd = await k.getLink('vethaa');
    const podK = k.inNetns(pod.path);
    const podEnd = await podK.getLink('eth0');
    expect(hostEnd).toMatchObject({ kind: 'veth', mtu: 1450 });
    expect(podEnd).toMatchObject({ kind: 'veth', mtu: 1450, mac: '02:11:22:33:44:55', peerIndex: hostEnd!.index });
    expect(hostEnd!.peerIndex).toBe(podEnd!.index);
    expect(await k.getLink('eth0')).toBeUndefined();

    await k.batch([{ op: 'setLink', dev: 'vethaa', master: 'br0', mac: '02:aa:bb:cc:dd:ee' }, { op: 'setBridgePort', dev: 'vethaa', hairpin: true }]);
    const enslaved = await k.getLink('vethaa');
    expect(enslaved).toMatchObject({ master: 'br0', port: { hairpin: true, isolated: false }, mac: '02:aa:bb:cc:dd:ee' });
    await k.batch([{ op: 'setBridgePort', dev: 'vethaa', hairpin: false }]);
    expect((await k.getLink('vethaa'))?.port?.hairpin).toBe(false);

    // same peer name again: EEXIST, and nothing left behind
    const err = await k.batch([{ op: 'addVeth', name: 'vethbb', peer: 'eth0', peerNetns: pod.path }]).catch((e: unknown) => e);
    expect(isExists(err)).toBe(true);
    expect(await k.getLink('vethbb')).toBeUndefined();

    // deleting the pod end removes the host end
    await podK.deleteLink('eth0');
    expect(await k.getLink('vethaa')).toBeUndefined();
  });

  it('addresses: replace is idempotent, add is strict, delete reports a missing address as not found', async () => {
    await k.batch([{ op: 'addBridge', name: 'br0' }]);
    const add = [{ op: 'replaceAddr' as const, dev: 'br0', cidr: '10.244.1.1/24' }, { op: 'replaceAddr' as const, dev: 'br0', cidr: 'fd00:10:244:1::1/64' }];
    await k.batch(add);
    await k.batch(add);
    expect(await k.batch([{ op: 'addAddr', dev: 'br0', cidr: '10.244.1.1/24' }]).catch((e: unknown) => e)).toMatchObject({ code: 'EEXIST' });
    const addrs = await k.listAddrs({ dev: 'br0' });
    expect(addrs.filter((a) => a.scope === 'global')).toEqual([
      { dev: 'br0', family: 4, cidr: '10.244.1.1/24', scope: 'global' },
      { dev: 'br0', family: 6, cidr: 'fd00:10:244:1::1/64', scope: 'global', tentative: true }, // DAD still running
    ]);
    expect((await k.listAddrs({ family: 4 })).map((a) => a.cidr)).toEqual(['127.0.0.1/8', '10.244.1.1/24']);
    await k.deleteAddr('br0', '10.244.1.1/24');
    await k.deleteAddr('br0', '10.244.1.1/24', { missingOk: true });
    await k.deleteAddr('br0', 'fd00:10:244:1::1/64');
    await k.deleteAddr('br0', 'fd00:10:244:1::1/64', { missingOk: true });
    expect(isNotFound(await k.deleteAddr('br0', '10.244.1.1/24').catch((e: unknown) => e))).toBe(true);
    expect((await k.listAddrs({ dev: 'br0' })).filter((a) => a.scope === 'global')).toEqual([]);
    expect(isNotFound(await k.listAddrs({ dev: 'nope0' }).catch((e: unknown) => e))).toBe(true);
  });

  it('routes: replace twice, strict add fails with EEXIST, prepend adds beside, list, get, delete', async () => {
    await k.batch([{ op: 'addBridge', name: 'br0' }, { op: 'replaceAddr', dev: 'br0', cidr: '10.244.1.1/24' }, { op: 'replaceAddr', dev: 'br0', cidr: 'fd00:1::1/64' }, { op: 'setLinkUp', dev: 'br0' }]);
    const r = { dst: '10.5.0.0/16', via: '10.244.1.7', dev: 'br0', onlink: true, mtu: 1400, advmss: 1300, metric: 5 };
    await k.batch([{ op: 'replaceRoute', route: r }]);
    await k.batch([{ op: 'replaceRoute', route: r }]);
    expect(isExists(await k.batch([{ op: 'addRoute', route: r }]).catch((e: unknown) => e))).toBe(true);
    await k.batch([{ op: 'replaceRoute', route: { dst: 'default', via: '10.244.1.254' } }, { op: 'replaceRoute', route: { dst: 'default', via: 'fd00:1::fe', dev: 'br0' } }]);
    const v4 = await k.listRoutes({ family: 4 });
    expect(v4).toContainEqual({ family: 4, dst: '10.5.0.0/16', via: '10.244.1.7', dev: 'br0', onlink: true, mtu: 1400, advmss: 1300, metric: 5 });
    expect(v4.find((x) => x.dst === 'default')).toMatchObject({ via: '10.244.1.254', dev: 'br0' });
    expect(v4.find((x) => x.dst === '10.244.1.0/24')).toMatchObject({ proto: 'kernel', scope: 'link', src: '10.244.1.1' });
    const v6 = await k.listRoutes({ family: 6, dev: 'br0' });
    expect(v6.find((x) => x.dst === 'default')).toMatchObject({ family: 6, via: 'fd00:1::fe' });
    const both = await k.listRoutes();
    expect(both.some((x) => x.family === 4) && both.some((x) => x.family === 6)).toBe(true);
    expect(await k.listRoutes({ table: 200 })).toEqual([]);

    // prepend (Go's RouteAddEcmp): a route to the connected subnet beside the kernel's; the same one again is EEXIST
    const subnet = { dst: '10.244.1.0/24', via: '10.244.1.1', dev: 'br0' };
    expect(isExists(await k.batch([{ op: 'addRoute', route: subnet }]).catch((e: unknown) => e))).toBe(true);
    await k.batch([{ op: 'prependRoute', route: subnet }]);
    expect((await k.listRoutes({ family: 4, dev: 'br0' })).filter((x) => x.dst === '10.244.1.0/24')).toHaveLength(2);
    expect(isExists(await k.batch([{ op: 'prependRoute', route: subnet }]).catch((e: unknown) => e))).toBe(true);

    const got = await k.routeGet('10.5.1.1');
    expect(got).toMatchObject({ dst: '10.5.1.1', via: '10.244.1.7', dev: 'br0', prefsrc: '10.244.1.1' });
    const direct = await k.routeGet('10.244.1.9');
    expect(direct).toMatchObject({ dev: 'br0', prefsrc: '10.244.1.1' });

    await k.batch([{ op: 'deleteRoute', route: r }]);
    expect(isNotFound(await k.batch([{ op: 'deleteRoute', route: r }]).catch((e: unknown) => e))).toBe(true);
    await k.batch([{ op: 'deleteRoute', route: { dst: 'default', via: '10.244.1.254' } }]);
    await k.deleteLink('br0');
    await expect(k.routeGet('10.5.1.1')).rejects.toBeInstanceOf(KernelError);
  });

  it('blackhole routes: strict add, refused (EEXIST) while another route holds the dst, listed by type', async () => {
    await k.batch([{ op: 'addBridge', name: 'br0' }, { op: 'replaceAddr', dev: 'br0', cidr: '10.244.1.1/24' }, { op: 'setLinkUp', dev: 'br0' }]);
    await k.batch([{ op: 'addRoute', route: { dst: '10.244.0.0/16', type: 'blackhole' } }]);
    expect(isExists(await k.batch([{ op: 'addRoute', route: { dst: '10.244.1.0/24', type: 'blackhole' } }]).catch((e: unknown) => e))).toBe(true);
    expect(await k.listRoutes({ family: 4, type: 'blackhole' })).toEqual([{ family: 4, dst: '10.244.0.0/16', type: 'blackhole' }]);
    expect((await k.listRoutes({ family: 4 })).find((x) => x.dst === '10.244.0.0/16')).toMatchObject({ type: 'blackhole' });
  });

  it('addVxlan creates strictly with the lab recipe parameters', async () => {
    await k.batch([{ op: 'addVeth', name: 'ul0', peer: 'ul1' }, { op: 'replaceAddr', dev: 'ul0', cidr: '192.168.77.1/24' }, { op: 'setLinkUp', dev: 'ul0' }]);
    const spec = { vni: 100, port: 8472, local: '192.168.77.1', dev: 'ul0', learning: false, gbp: false, mtu: 1450, mac: '02:00:00:00:01:01' };
    await k.batch([{ op: 'addVxlan', name: 'flannel.100', ...spec }]);
    expect(await k.getLink('flannel.100')).toMatchObject({ kind: 'vxlan', mtu: 1450, mac: '02:00:00:00:01:01', vxlan: { vni: 100, port: 8472, local: '192.168.77.1', learning: false, gbp: false, dev: 'ul0' } });
    expect(isExists(await k.batch([{ op: 'addVxlan', name: 'flannel.100', ...spec }]).catch((e: unknown) => e))).toBe(true);
  });

  it('batch: neigh + fdb (replace twice does not fail), deletes, and sysctls in one exec', async () => {
    await k.batch([{ op: 'addVeth', name: 'ul0', peer: 'ul1' }, { op: 'replaceAddr', dev: 'ul0', cidr: '192.168.77.1/24' }, { op: 'setLinkUp', dev: 'ul0' }]);
    await k.batch([{ op: 'addVxlan', name: 'vx0', vni: 1, port: 8472, local: '192.168.77.1', dev: 'ul0', learning: false }]);
    await k.batch([{ op: 'replaceAddr', dev: 'vx0', cidr: '10.10.0.0/32' }, { op: 'setLinkUp', dev: 'vx0' }]);
    const peer = (mac: string, ip: string, under: string, net: string) => [
      { op: 'replaceNeigh' as const, dev: 'vx0', ip, mac },
      { op: 'replaceRoute' as const, route: { dst: net, via: ip, dev: 'vx0', onlink: true } },
      { op: 'replaceFdb' as const, dev: 'vx0', mac, dst: under },
    ];
    const ops = [...peer('6a:d6:be:ce:b2:b7', '10.10.16.0', '192.168.77.2', '10.10.16.0/20'), ...peer('6a:d6:be:ce:b2:b8', '10.10.32.0', '192.168.77.3', '10.10.32.0/20')];
    await k.batch(ops);
    await k.batch(ops); // replace twice
    await k.batch([{ op: 'appendFdb', dev: 'vx0', mac: '00:00:00:00:00:00', dst: '192.168.77.9' }]);
    await k.batch([{ op: 'appendFdb', dev: 'vx0', mac: '00:00:00:00:00:00', dst: '192.168.77.9' }]);
    expect((await k.listNeighs('vx0')).sort((x, y) => x.ip.localeCompare(y.ip))).toEqual([
      { dev: 'vx0', ip: '10.10.16.0', mac: '6a:d6:be:ce:b2:b7', permanent: true },
      { dev: 'vx0', ip: '10.10.32.0', mac: '6a:d6:be:ce:b2:b8', permanent: true },
    ]);
    const fdb = (await k.listFdb('vx0')).filter((f) => f.dst !== undefined);
    expect(fdb).toHaveLength(3);
    expect(fdb).toContainEqual({ dev: 'vx0', mac: '6a:d6:be:ce:b2:b7', dst: '192.168.77.2', self: true, permanent: true });
    expect(fdb).toContainEqual({ dev: 'vx0', mac: '00:00:00:00:00:00', dst: '192.168.77.9', self: true, permanent: true });
    expect((await k.listRoutes({ dev: 'vx0', family: 4 })).map((r) => r.dst)).toEqual(expect.arrayContaining(['10.10.16.0/20', '10.10.32.0/20']));
    expect((await k.listRoutes({ dev: 'vx0', family: 4 })).every((r) => r.dev === 'vx0')).toBe(true); // filled from the filter

    // a failing batch names its line and stops there
    const err = await k
      .batch([{ op: 'sysctl', key: 'net/ipv4/conf/vx0/arp_notify', value: '1' }, { op: 'replaceNeigh', dev: 'nope0', ip: '10.1.1.1', mac: '02:00:00:00:00:01' }, { op: 'deleteNeigh', dev: 'vx0', ip: '10.10.16.0' }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).line).toBe('neigh replace 10.1.1.1 lladdr 02:00:00:00:00:01 dev nope0 nud permanent');
    expect(isNotFound(err)).toBe(true);
    expect((err as KernelError).op).toMatchObject({ op: 'replaceNeigh', dev: 'nope0' });
    expect(await k.readSysctl('net/ipv4/conf/vx0/arp_notify')).toBe('1'); // ran before the failure
    expect((await k.listNeighs('vx0')).length).toBe(2); // not after it

    const dels = [
      { op: 'deleteNeigh' as const, dev: 'vx0', ip: '10.10.16.0' },
      { op: 'deleteRoute' as const, route: { dst: '10.10.16.0/20', via: '10.10.16.0', dev: 'vx0', onlink: true } },
      { op: 'deleteFdb' as const, dev: 'vx0', mac: '6a:d6:be:ce:b2:b7', dst: '192.168.77.2' },
    ];
    await k.batch(dels);
    expect(await k.listNeighs('vx0')).toHaveLength(1);
    expect(isNotFound(await k.batch(dels.slice(2)).catch((e: unknown) => e))).toBe(true);
  });

  it('inspect: writes and reads in one exec; missing links are absent', async () => {
    await k.batch([{ op: 'addBridge', name: 'br0' }, { op: 'addVeth', name: 'vethaa', peer: 'eth0', peerNetns: pod.path }]);
    const m = await k.inspect(['br0', 'vethaa'], [
      { op: 'setLink', dev: 'vethaa', master: 'br0', up: true },
      { op: 'setBridgePort', dev: 'vethaa', hairpin: true },
      { op: 'addAddr', dev: 'br0', cidr: '10.1.2.1/24' },
    ]);
    expect(m.get('vethaa')).toMatchObject({ kind: 'veth', master: 'br0', up: true, port: { hairpin: true } });
    expect(m.get('br0')?.addrs.filter((a) => a.family === 4)).toEqual([{ dev: 'br0', family: 4, cidr: '10.1.2.1/24', scope: 'global' }]);
    const r = await k.inspect(['nope0', 'br0']);
    expect([...r.keys()]).toEqual(['br0']);
    expect((await k.inspect(['nope0'])).size).toBe(0);
    await expect(k.inspect(['nope0'], [{ op: 'setLinkUp', dev: 'br0' }])).rejects.toBeInstanceOf(KernelError);
    const brd = k.inNetns(host.path);
    expect((await brd.listAddrs({ dev: 'br0', family: 4 }))[0]?.cidr).toBe('10.1.2.1/24');
    expect(host.exec(['ip', 'addr', 'show', 'dev', 'br0']).stdout).toContain('brd 10.1.2.255');
  });

  it('sysctls inside the netns do not touch the root namespace', async () => {
    const root = createKernel();
    const rootForward = await root.readSysctl('net/ipv4/ip_forward');
    await k.writeSysctl('net.ipv4.ip_forward', '1');
    expect(await k.readSysctl('net/ipv4/ip_forward')).toBe('1');
    expect(await root.readSysctl('net.ipv4.ip_forward')).toBe(rootForward);
    await k.batch([{ op: 'sysctl', key: 'net/ipv4/ip_forward', value: '0' }, { op: 'sysctl', key: 'net/ipv6/conf/nope0/accept_ra', value: '0', optional: true }]);
    expect(await k.readSysctl('net/ipv4/ip_forward')).toBe('0');
    expect(isNotFound(await k.writeSysctl('net/ipv6/conf/nope0/accept_ra', '0').catch((e: unknown) => e))).toBe(true);
    expect(isNotFound(await k.readSysctl('net/ipv6/conf/nope0/accept_ra').catch((e: unknown) => e))).toBe(true);
  });

  it('a missing netns path is "not found"', async () => {
    const gone = createKernel().inNetns('/var/run/netns/ftest-does-not-exist');
    const err = await gone.deleteLink('eth0').catch((e: unknown) => e);
    expect(isNotFound(err)).toBe(true);
  });

  it('iptables: ensure chain/rule twice, delete with missingOk', async () => {
    for (const family of [4, 6] as const) {
      const ipt = createIptables(family, { netns: host.path });
      const comment = ['-m', 'comment', '--comment', 'name: "cbr0" id: "c1"'];
      await ipt.ensureChain('nat', 'CNI-test');
      await ipt.ensureChain('nat', 'CNI-test');
      const rule = ['-s', family === 4 ? '10.244.1.3/32' : 'fd00::3/128', '-j', 'CNI-test', ...comment];
      await ipt.ensureRule('nat', 'POSTROUTING', rule);
      await ipt.ensureRule('nat', 'POSTROUTING', rule);
      const lines = await ipt.listRules('nat', 'POSTROUTING');
      expect(lines.filter((l) => l.includes('CNI-test'))).toHaveLength(1);
      expect(await ipt.hasRule('nat', 'POSTROUTING', rule)).toBe(true);
      await ipt.deleteRule('nat', 'POSTROUTING', rule);
      await ipt.deleteRule('nat', 'POSTROUTING', rule, { missingOk: true });
      await ipt.deleteChain('nat', 'CNI-test');
      await ipt.deleteChain('nat', 'CNI-test', { missingOk: true });
      await ipt.deleteRule('nat', 'CNI-gone', rule, { missingOk: true });
      expect(await ipt.hasRule('nat', 'POSTROUTING', rule)).toBe(false);
      await expect(ipt.deleteChain('nat', 'CNI-test')).rejects.toBeInstanceOf(KernelError);
    }
  });

  it('iptables: fillChains twice gives what ensureChain + ensureRule give, quotes and all', async () => {
    for (const family of [4, 6] as const) {
      const ipt = createIptables(family, { netns: host.path });
      const c = ['-m', 'comment', '--comment', 'name: "cbr0" id: "c\\1"'];
      const [net, src, mc] = family === 4 ? ['10.244.1.0/24', '10.244.1.3/32', '224.0.0.0/4'] : ['fd00::/64', 'fd00::3/128', 'ff00::/8'];
      const own = [{ chain: 'CNI-fill', rules: [['-d', net, '-j', 'ACCEPT', ...c], ['!', '-d', mc, '-j', 'MASQUERADE', ...c]] }];
      const jump = { chain: 'POSTROUTING', rule: ['-s', src, '-j', 'CNI-fill', ...c] };
      // a new chain: one iptables-restore; again (the chain exists): that one refused, then -C + restore
      const stats = { execs: 0 };
      const counted = createIptables(family, { netns: host.path, exec: countingExec(spawnExec, stats) });
      await counted.fillChains('nat', own, [jump]);
      expect(stats.execs).toBe(1);
      await counted.fillChains('nat', own, [jump]);
      expect(stats.execs).toBe(4);
      const filled = await ipt.listRules('nat');
      for (const r of [...own[0]!.rules.map((rule) => ({ chain: 'CNI-fill', rule })), jump]) {
        expect(await ipt.hasRule('nat', r.chain, r.rule)).toBe(true);
      }
      expect(filled.filter((l) => l.startsWith('-A CNI-fill'))).toHaveLength(2);
      expect(filled.filter((l) => l.startsWith('-A POSTROUTING'))).toHaveLength(1);

      // the same rules the one-by-one way, in a fresh chain: identical -S output but for the name
      await ipt.deleteRule('nat', 'POSTROUTING', jump.rule);
      await ipt.deleteChain('nat', 'CNI-fill');
      await ipt.ensureChain('nat', 'CNI-fill');
      for (const r of own[0]!.rules) await ipt.ensureRule('nat', 'CNI-fill', r);
      await ipt.ensureRule('nat', 'POSTROUTING', jump.rule);
      expect(await ipt.listRules('nat')).toEqual(filled);
      await ipt.deleteRule('nat', 'POSTROUTING', jump.rule);
      await ipt.deleteChain('nat', 'CNI-fill');
    }
  });

  it('iptables: dropChains removes chain and jump in one transaction, or refuses and changes nothing', async () => {
    for (const family of [4, 6] as const) {
      const ipt = createIptables(family, { netns: host.path });
      const c = ['-m', 'comment', '--comment', 'name: "cbr0" id: "c\\1"'];
      const [net, src] = family === 4 ? ['10.244.1.0/24', '10.244.1.3'] : ['fd00::/64', 'fd00::3'];
      const own = [{ chain: 'CNI-drop', rules: [['-d', net, '-j', 'ACCEPT', ...c]] }];
      const jump = { chain: 'POSTROUTING', rule: ['-s', src, '-j', 'CNI-drop', ...c] };
      const before = await ipt.listRules('nat');
      await ipt.fillChains('nat', own, [jump]);
      const filled = await ipt.listRules('nat');

      // a jump that is not there: refused whole, the chain and its rules untouched
      const absent = { chain: 'POSTROUTING', rule: ['-s', family === 4 ? '10.244.1.9' : 'fd00::9', '-j', 'CNI-drop', ...c] };
      expect(await ipt.dropChains('nat', ['CNI-drop'], [absent])).toBe(false);
      expect(await ipt.listRules('nat')).toEqual(filled);
      // another rule still jumping to the chain (an older plugin's <ip>/<prefix> form): refused too
      const legacy = ['-s', `${src}/${family === 4 ? 24 : 64}`, '-j', 'CNI-drop', ...c];
      await ipt.ensureRule('nat', 'POSTROUTING', legacy);
      const withLegacy = await ipt.listRules('nat');
      expect(await ipt.dropChains('nat', ['CNI-drop'], [jump])).toBe(false);
      expect(await ipt.listRules('nat')).toEqual(withLegacy);
      await ipt.deleteRule('nat', 'POSTROUTING', legacy);

      expect(await ipt.dropChains('nat', ['CNI-drop'], [jump])).toBe(true);
      expect(await ipt.listRules('nat')).toEqual(before);
    }
  });
});
