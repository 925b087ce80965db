import { describe, expect, it } from 'vitest';
import { calcGateways, cmdAdd, cmdDel, cmdGc, cmdStatus } from '../../../../plugins/bridge/bridge.js';
import { cmdCheck } from '../../../../plugins/bridge/check.js';
import { planEnsureAddr } from '../../../../plugins/bridge/ops.js';
import { formatChainName, formatComment } from '../../../../shared/cni/utils.js';
import { collectVlanTrunk, parseBridgeConf } from '../../../../plugins/bridge/netconf.js';
import { FakeKernel, withVethOperstate } from '../../../../shared/kernel/fake/fake-kernel.js';
import type { Result } from '../../../../shared/cni/types.js';
import { fakeBridge, POD } from './fake-bridge.js';
import { CniError } from '../../../../shared/cni/errors.js';

describe('parseBridgeConf', () => {
  it('defaults', () => {
    const n = parseBridgeConf('{"cniVersion":"1.0.0","name":"n","type":"bridge"}', '');
    expect(n).toMatchObject({ bridge: 'cni0', isGateway: false, mtu: 0, vlan: 0, ipamType: '', preserveDefaultVlan: false, dns: {} });
    expect(n.vlans).toBeUndefined();
    expect(n.mac).toBeUndefined();
  });
  it('keys are case-insensitive, unknown keys ignored', () => {
    const n = parseBridgeConf('{"name":"n","Bridge":"br-ci","ISGATEWAY":true,"MTU":1400,"whatever":[1],"IPAM":{"Type":"host-local"}}', '');
    expect(n).toMatchObject({ bridge: 'br-ci', isGateway: true, mtu: 1400, ipamType: 'host-local' });
  });
  it.each([
    ['{"name":"n","portIsolation":"true"}', 'failed to load netconf: json: cannot unmarshal string into Go struct field main.NetConf.portIsolation of type bool'],
    ['{"name":"n","mtu":"1500"}', 'failed to load netconf: json: cannot unmarshal string into Go struct field main.NetConf.mtu of type int'],
    ['{"name":"n","vlan":4095}', 'invalid VLAN ID 4095 (must be between 0 and 4094)'],
    ['{"name":"n","vlan":-1}', 'invalid VLAN ID -1 (must be between 0 and 4094)'],
    ['{"name":"n","vlan":10,"vlanTrunk":[{"id":11}]}', 'cannot set vlan and vlanTrunk at the same time'],
    ['{"name":"n","vlanTrunk":[{"minID":0,"maxID":5}]}', 'incorrect trunk minID parameter'],
    ['{"name":"n","vlanTrunk":[{"minID":1,"maxID":5000}]}', 'incorrect trunk maxID parameter'],
    ['{"name":"n","vlanTrunk":[{"id":0}]}', 'incorrect trunk id parameter'],
    ['{"name":"n","vlanTrunk":[{"minID":1}]}', 'minID and maxID should be configured simultaneously, maxID is missing'],
    ['{"name":"n","vlanTrunk":[{"maxID":1}]}', 'minID and maxID should be configured simultaneously, minID is missing'],
    ['{"name":"n","vlanTrunk":[{"minID":9,"maxID":5}]}', 'minID is greater than maxID in trunk parameter'],
  ])('%s → %s', (json, msg) => {
    expect(() => parseBridgeConf(json, '')).toThrow(msg);
  });
  it('vlanTrunk collects sorted unique ids; empty → none', () => {
    expect(collectVlanTrunk([{ id: 101 }, { minID: 200, maxID: 203 }, { id: 201 }])).toEqual([101, 200, 201, 202, 203]);
    expect(collectVlanTrunk([])).toBeUndefined();
  });
  it('MAC precedence: runtimeConfig > args.cni > CNI_ARGS', () => {
    const base = { name: 'n' };
    expect(parseBridgeConf(JSON.stringify(base), 'MAC=02:00:00:00:00:01').mac).toBe('02:00:00:00:00:01');
    expect(parseBridgeConf(JSON.stringify({ ...base, args: { cni: { mac: '02:00:00:00:00:02' } } }), 'MAC=02:00:00:00:00:01').mac).toBe('02:00:00:00:00:02');
    expect(parseBridgeConf(JSON.stringify({ ...base, args: { cni: { mac: '02:00:00:00:00:02' } }, runtimeConfig: { mac: '02:00:00:00:00:03' } }), 'MAC=02:00:00:00:00:01').mac).toBe('02:00:00:00:00:03');
    expect(() => parseBridgeConf(JSON.stringify(base), 'K8S_POD_NAME=x')).toThrow('ARGS: unknown args ["K8S_POD_NAME=x"]');
    expect(parseBridgeConf(JSON.stringify(base), 'IgnoreUnknown=1;K8S_POD_NAME=x').mac).toBeUndefined();
  });
});

describe('helpers', () => {
  it('chain name and comment as captured from the Go plugin', async () => {
    expect(formatChainName('cbr0', 'cnitool-77ee49a1b71f9963fd31')).toBe('CNI-dde01ccd4b7f286ae7ed43ff');
    expect(formatComment('cbr0', 'cnitool-77ee49a1b71f9963fd31')).toBe('name: "cbr0" id: "cnitool-77ee49a1b71f9963fd31"');
  });

  it('calcGateways fills gateways, appends defaults per family, collects bridge addresses', () => {
    const r: Result = {
      cniVersion: '1.0.0',
      ips: [{ address: '10.1.2.5/24' }, { address: 'fd00::5/64', gateway: 'fd00::fe' }],
      routes: [{ dst: '::/0', gw: 'fd00::1' }],
    };
    const { v4, v6 } = calcGateways(r, { isGateway: true, isDefaultGateway: true });
    expect(r.ips).toEqual([
      { address: '10.1.2.5/24', gateway: '10.1.2.1', interface: 2 },
      { address: 'fd00::5/64', gateway: 'fd00::fe', interface: 2 },
    ]);
    expect(r.routes).toEqual([{ dst: '::/0', gw: 'fd00::1' }, { dst: '0.0.0.0/0', gw: '10.1.2.1' }]);
    expect(v4.gws).toEqual(['10.1.2.1/24']);
    expect(v6.gws).toEqual(['fd00::fe/64']);
    const plain: Result = { cniVersion: '1.0.0', ips: [{ address: '10.1.2.5/24' }] };
    calcGateways(plain, { isGateway: false, isDefaultGateway: false });
    expect(plain.ips).toEqual([{ address: '10.1.2.5/24', interface: 2 }]);
    expect(plain.routes).toBeUndefined();
  });

  it('planEnsureAddr: v4 conflicts, v6 only when overlapping, force deletes', () => {
    expect(planEnsureAddr('cni0', 4, '10.1.2.1/24', ['10.1.2.1/24'], false)).toEqual([]);
    expect(() => planEnsureAddr('cni0', 4, '10.1.2.3/16', ['10.0.0.1/8'], false)).toThrow('"cni0" already has an IP address different from 10.1.2.3/16');
    expect(planEnsureAddr('cni0', 4, '10.1.2.3/16', ['10.0.0.1/8'], true)).toEqual([
      { op: 'deleteAddr', dev: 'cni0', cidr: '10.0.0.1/8' },
      { op: 'replaceAddr', dev: 'cni0', cidr: '10.1.2.3/16' },
    ]);
    expect(() => planEnsureAddr('cni0', 6, '2001:db8:1:2::1/64', ['2001:db8:1::1/48'], false)).toThrow('already has an IP address');
    expect(planEnsureAddr('cni0', 6, 'fd00:1234::1/64', ['2001:db8:1:2::1/64', 'fe80::1/64'], false)).toEqual([{ op: 'replaceAddr', dev: 'cni0', cidr: 'fd00:1234::1/64' }]);
  });
});

describe('cmdAdd/cmdDel/cmdCheck on FakeKernel', () => {
  const setup = (ipamResult?: Partial<Result>) => fakeBridge(ipamResult);

  it('L3 ADD: state, result, kernel calls; DEL cleans and releases', async () => {
    const { world, kernel, deps, calls, args } = setup();
    const conf = { isDefaultGateway: true, mtu: 1450, ipam: { type: 'host-local' } };
    const calls0 = world.calls;
    const r = await cmdAdd(args(conf), deps);
    // Kernel calls: bridge read, host batch, pod batch, final read, and 4 sysctl files in our own namespace
    // (accept_ra ×2, ip_forward read + write: no exec with the iproute2 adapter). IPAM is separate.
    expect(world.calls - calls0).toBe(8);
    // random bytes: 1 = container MAC, 2 = bridge MAC to pin, 3 = veth name
    expect(r.interfaces).toEqual([
      { name: 'cni0', mac: '02:02:02:02:02:02' },
      { name: 'veth03030303', mac: expect.any(String) },
      { name: 'eth0', mac: '02:01:01:01:01:01', sandbox: POD },
    ]);
    expect(r.ips).toEqual([{ address: '10.1.2.2/24', gateway: '10.1.2.1', interface: 2 }]);
    expect(r.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.1.2.1' }]);
    expect(await kernel.listAddrs({ dev: 'cni0' })).toEqual([{ dev: 'cni0', family: 4, cidr: '10.1.2.1/24', scope: 'global' }]);
    expect(await kernel.getLink('veth03030303')).toMatchObject({ master: 'cni0', up: true, mtu: 1450, port: { hairpin: false }, operstate: 'UP' });
    const pod = kernel.inNetns(POD);
    expect(await pod.listAddrs({ dev: 'eth0' })).toEqual([{ dev: 'eth0', family: 4, cidr: '10.1.2.2/24', scope: 'global' }]);
    expect((await pod.listRoutes()).find((x) => x.dst === 'default')).toMatchObject({ via: '10.1.2.1', dev: 'eth0' });
    expect(await kernel.readSysctl('net/ipv4/ip_forward')).toBe('1');
    expect(await pod.readSysctl('net/ipv4/conf/eth0/arp_notify')).toBe('1');
    expect(calls).toEqual(['add host-local']);

    await cmdCheck(args({ ...conf, prevResult: r }), deps);
    expect(calls).toEqual(['add host-local', 'check host-local']);

    await cmdDel(args(conf), deps);
    expect(await kernel.getLink('veth03030303')).toBeUndefined();
    expect(await kernel.getLink('cni0')).toBeDefined();
    await cmdDel(args(conf), deps);
    world.deleteNetns(POD);
    await cmdDel(args(conf), deps);
    await cmdDel(args(conf, { netns: '' }), deps);
    expect(calls.filter((c) => c === 'del host-local')).toHaveLength(4);
  });

  it('a failure after IPAM releases the IP and leaves the veth', async () => {
    const { world, kernel, deps, calls, args } = setup();
    world.failOn('prependRoute', 'EPERM');
    await expect(cmdAdd(args({ isDefaultGateway: true, ipam: { type: 'host-local' } }), deps)).rejects.toThrow(/^failed to add route '0.0.0.0\/0 via 10.1.2.1 dev eth0'/);
    expect(calls).toEqual(['add host-local', 'del host-local']);
    expect(await kernel.getLink('veth03030303')).toBeDefined();
  });

  it('IPAM without IPs is an error', async () => {
    const { deps, args, calls } = setup({ ips: [] });
    await expect(cmdAdd(args({ ipam: { type: 'x' } }), deps)).rejects.toThrow('IPAM plugin returned missing IP config');
    expect(calls).toEqual(['add x', 'del x']);
  });

  it('ipMasq rules and teardown', async () => {
    const { deps, args, ipt4 } = setup();
    const conf = { isGateway: true, ipMasq: true, ipam: { type: 'host-local' } };
    await cmdAdd(args(conf), deps);
    const chain = formatChainName('net', 'c1');
    const c = ['-m', 'comment', '--comment', 'name: "net" id: "c1"'];
    expect(await ipt4.listRules('nat', chain)).toEqual([`-N ${chain}`, `-A ${chain} ${['-d', '10.1.2.0/24', '-j', 'ACCEPT', ...c].join(' ')}`, `-A ${chain} ${['!', '-d', '224.0.0.0/4', '-j', 'MASQUERADE', ...c].join(' ')}`]);
    expect(await ipt4.hasRule('nat', 'POSTROUTING', ['-s', '10.1.2.2', '-j', chain, ...c])).toBe(true);
    await cmdDel(args(conf), deps);
    expect(ipt4.tables.get('nat')?.has(chain)).toBe(false);
    expect(await ipt4.listRules('nat', 'POSTROUTING')).toEqual(['-N POSTROUTING']);
    // the DEL took one transaction (one iptables-restore); the second DEL, with nothing left, steps
    expect(ipt4.drops).toHaveLength(1);
    await cmdDel(args(conf), deps);
  });

  it('ipMasq teardown: an older plugin\'s <ip>/<prefix> jump makes the one transaction fail whole; the steps remove both', async () => {
    const { deps, args, ipt4 } = setup();
    const conf = { isGateway: true, ipMasq: true, ipam: { type: 'host-local' } };
    await cmdAdd(args(conf), deps);
    const chain = formatChainName('net', 'c1');
    const c = ['-m', 'comment', '--comment', 'name: "net" id: "c1"'];
    await ipt4.ensureRule('nat', 'POSTROUTING', ['-s', '10.1.2.2/24', '-j', chain, ...c]);
    await cmdDel(args(conf), deps);
    expect(ipt4.drops).toHaveLength(1); // tried, refused (the chain still referenced), nothing changed by it
    expect(ipt4.tables.get('nat')?.has(chain)).toBe(false);
    expect(await ipt4.listRules('nat', 'POSTROUTING')).toEqual(['-N POSTROUTING']);
  });

  it('ipMasq: an ADD failing after IPAM removes the masquerade rules it had started', async () => {
    const { world, deps, args, ipt4 } = setup();
    world.failOn('prependRoute', 'EPERM');
    await expect(cmdAdd(args({ isDefaultGateway: true, ipMasq: true, ipam: { type: 'host-local' } }), deps)).rejects.toThrow(/^failed to add route/);
    expect(ipt4.tables.get('nat')?.has(formatChainName('net', 'c1'))).toBe(false);
    expect(await ipt4.listRules('nat', 'POSTROUTING')).toEqual(['-N POSTROUTING']);
  });

  it('a veth name collision retries with a new name; an existing container iface is an error', async () => {
    const { kernel, deps, args } = setup();
    await kernel.batch([{ op: 'addVeth', name: 'veth02020202', peer: 'x0' }]);
    const r = await cmdAdd(args({ ipam: {} }), deps);
    expect(r.interfaces?.[1]?.name).toBe('veth03030303');
    await expect(cmdAdd(args({ ipam: {} }, { containerId: 'c2' }), deps)).rejects.toThrow(/^container veth name \("eth0"\) peer provided \("veth[0-9a-f]{8}"\) already exists$/);
  });

  it('L2 with disableContainerInterface leaves the iface down; port state is not polled', async () => {
    const { kernel, deps, args } = setup();
    const r = await cmdAdd(args({ ipam: {}, disableContainerInterface: true }), deps);
    expect(r.ips).toBeUndefined();
    expect((await kernel.inNetns(POD).getLink('eth0'))?.up).toBe(false);
  });

  it('L2: the container side failing to come up is an error', async () => {
    const { world, deps, args } = setup();
    world.failOn('setLinkUp', 'EPERM');
    await expect(cmdAdd(args({ ipam: {} }), deps)).rejects.toThrow(/^failed to set "eth0" up/);
  });

  it('the port never comes up: polled with sleeps 50, 500, 1000, 1000, then bridge port in error state', async () => {
    const { kernel, deps, args } = setup();
    const slept: number[] = [];
    deps.sleep = async (ms) => void slept.push(ms);
    deps.kernel = withVethOperstate(kernel, 'LOWERLAYERDOWN');
    await expect(cmdAdd(args({ ipam: {} }), deps)).rejects.toThrow('bridge port in error state: lower-layer-down');
    expect(slept).toEqual([50, 500, 1000, 1000]);
  });

  it('CHECK: prevResult required; L2 has no IPAM type', async () => {
    const { deps, args } = setup();
    await expect(cmdCheck(args({ ipam: { type: 'host-local' } }), deps)).rejects.toThrow('Required prevResult missing');
    await expect(cmdCheck(args({}), deps)).rejects.toThrow('no plugin name provided');
  });

  it('STATUS forwards to IPAM only when there is one', async () => {
    const { deps, args, calls } = setup();
    await cmdStatus(args({}), deps);
    await cmdStatus(args({ ipam: { type: 'host-local' } }), deps);
    expect(calls).toEqual(['status host-local']);
  });

  it('GC forwards to IPAM only when there is one (the reference bridge has no GC handler)', async () => {
    const { deps, args, calls } = setup();
    await cmdGc(args({}), deps);
    await cmdGc(args({ ipam: { type: 'host-local' } }), deps);
    expect(calls).toEqual(['gc host-local']);
  });

  it('a missing netns on ADD is an error worded like Go', async () => {
    const { deps, args } = setup();
    await expect(cmdAdd(args({}, { netns: '/nope' }), deps)).rejects.toThrow('failed to open netns "/nope": failed to Statfs "/nope": no such file or directory');
  });

  // VLANs as upstream HEAD sets them (plugins/main/bridge/bridge.go setupVeth, vlanTrunk); the same against the Go reference on a real kernel:
  // test/integration/bridge/vlan.test.ts (it needs CONFIG_BRIDGE_VLAN_FILTERING).
  describe('VLANs', () => {
    const vethOf = (r: Result) => r.interfaces?.[1]?.name ?? '';
    const untaggedPvid = (vid: number) => ({ vid, pvid: true, untagged: true });
    const tagged = (vid: number) => ({ vid, pvid: false, untagged: false });

    it('vlan: a vlan_filtering bridge; the port gets the vid as PVID untagged, its default VLAN removed', async () => {
      const { kernel, deps, args } = setup();
      const r = await cmdAdd(args({ vlan: 100, ipam: {} }), deps);
      expect(r.interfaces?.map((i) => i.name)).toEqual(['cni0', vethOf(r), 'eth0']);
      expect((await kernel.getLink('cni0'))?.bridge).toEqual({ vlanFiltering: true });
      expect(await kernel.listBridgeVlans(vethOf(r))).toEqual([untaggedPvid(100)]);
    });

    it('vlan + preserveDefaultVlan: vid 1 stays, untagged but no longer the PVID', async () => {
      const { kernel, deps, args } = setup();
      const r = await cmdAdd(args({ vlan: 100, preserveDefaultVlan: true, ipam: {} }), deps);
      expect(await kernel.listBridgeVlans(vethOf(r))).toEqual([{ vid: 1, pvid: false, untagged: true }, untaggedPvid(100)]);
    });

    it.each([true, false])('vlanTrunk (preserveDefaultVlan %s): the trunk vids tagged, vid 1 the native VLAN', async (preserveDefaultVlan) => {
      const { kernel, deps, args } = setup();
      const r = await cmdAdd(args({ vlanTrunk: [{ id: 101 }, { minID: 200, maxID: 202 }], preserveDefaultVlan, ipam: {} }), deps);
      expect((await kernel.getLink('cni0'))?.bridge).toEqual({ vlanFiltering: true });
      expect(await kernel.listBridgeVlans(vethOf(r))).toEqual([untaggedPvid(1), tagged(101), tagged(200), tagged(201), tagged(202)]);
    });

    it('vlan + isGateway: the gateway on the veth cni0.<vlan> (up, 4th interface), its peer a port on the VLAN; reused', async () => {
      const { world, kernel, deps, args } = setup();
      const conf = { vlan: 100, isGateway: true, ipam: { type: 'host-local' } };
      const r = await cmdAdd(args(conf), deps);
      expect(r.interfaces?.map((i) => i.name)).toEqual(['cni0', vethOf(r), 'eth0', 'cni0.100']);
      expect(await kernel.getLink('cni0.100')).toMatchObject({ kind: 'veth', up: true });
      expect(await kernel.getLink('cni0.100')).not.toHaveProperty('master');
      expect((await kernel.listAddrs({ dev: 'cni0.100' })).map((a) => a.cidr)).toEqual(['10.1.2.1/24']);
      expect(await kernel.listAddrs({ dev: 'cni0' })).toEqual([]);
      const ports = async () => (await kernel.listLinks()).filter((l) => l.master === 'cni0').map((l) => l.name);
      const [peer] = (await ports()).filter((n) => n !== vethOf(r));
      expect(await kernel.listBridgeVlans(peer!)).toEqual([untaggedPvid(100)]);
      expect(await kernel.listBridgeVlans(vethOf(r))).toEqual([untaggedPvid(100)]);
      expect(await kernel.readSysctl('net/ipv4/ip_forward')).toBe('1');

      world.addNetns('/var/run/netns/pod2');
      const r2 = await cmdAdd(args(conf, { containerId: 'c2', netns: '/var/run/netns/pod2' }), deps);
      expect(r2.interfaces?.[3]?.name).toBe('cni0.100');
      expect(await ports()).toHaveLength(3); // two pods and the one gateway peer
      expect((await kernel.listAddrs({ dev: 'cni0.100' })).map((a) => a.cidr)).toEqual(['10.1.2.1/24']);
    });

    // upstream builds <br>.<vlan> with ip.SetupVeth, which sets accept_ra=0 on the host-side end (here
    // the bridge-side peer), as for every pod's host veth
    it('vlan + isGateway: the bridge-side peer of cni0.<vlan> gets accept_ra=0, as upstream', async () => {
      const { kernel, deps, args } = setup();
      const r = await cmdAdd(args({ vlan: 100, isGateway: true, ipam: { type: 'host-local' } }), deps);
      expect(await kernel.readSysctl(`net/ipv6/conf/${vethOf(r)}/accept_ra`)).toBe('0');
      const [peer] = (await kernel.listLinks()).filter((l) => l.master === 'cni0' && l.name !== vethOf(r));
      expect(await kernel.readSysctl(`net/ipv6/conf/${peer!.name}/accept_ra`).catch(() => 'unset')).toBe('0');
    });

    // upstream pins a MAC in ensureAddr, on the device given the gateway address: with a vlan that is
    // <br>.<vlan>, so the bridge keeps a MAC that follows its ports (the fake random source)
    it('vlan + isGateway: <br>.<vlan> gets a set MAC, the bridge MAC is not pinned, as upstream', async () => {
      const { kernel, deps, args } = setup();
      await cmdAdd(args({ vlan: 100, isGateway: true, ipam: { type: 'host-local' } }), deps);
      expect((await kernel.getLink('cni0'))?.mac).not.toBe('02:02:02:02:02:02');
      expect((await kernel.getLink('cni0.100'))?.mac).toBe('06:04:04:04:04:04'); // randomMac over the fake's bytes
    });
  });

  it('IPAM runs beside the bridge read: a bridge error wins and the IP is released; a failed read releases it too', async () => {
    const { kernel, deps, args, calls } = setup();
    await kernel.batch([{ op: 'addVeth', name: 'cni0', peer: 'x0' }]); // "cni0" exists and is no bridge
    deps.ipam.add = async () => {
      calls.push('add host-local');
      throw new CniError(11, 'try later');
    };
    await expect(cmdAdd(args({ ipam: { type: 'host-local' } }), deps)).rejects.toThrow('"cni0" already exists but is not a bridge');

    const b = setup();
    b.deps.kernel = Object.assign(Object.create(b.kernel) as FakeKernel, {
      inspect: async () => {
        throw new Error('ip: cannot talk to the kernel');
      },
    });
    await expect(cmdAdd(b.args({ ipam: { type: 'host-local' } }), b.deps)).rejects.toThrow('ip: cannot talk to the kernel');
    expect(b.calls).toEqual(['add host-local', 'del host-local']);
  });

  it('CniErrors from IPAM pass through unchanged', async () => {
    const { deps, args } = setup();
    deps.ipam.add = async () => {
      throw new CniError(11, 'try later');
    };
    const err = await cmdAdd(args({ ipam: { type: 'x' } }), deps).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).code).toBe(11);
  });
});
