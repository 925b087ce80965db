// Our built bridge plugin in netns hosts: every config field, both stacks, DEL idempotence, CHECK.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { canUseNetns, cleanupNetns } from '../../helpers/netns.js';
import {
  addrShow,
  conf,
  globalAddrs,
  haveOurHostLocal,
  haveOurs,
  ipamFiles,
  ipamPath,
  makeWorld,
  OUR_BRIDGE,
  routes,
  sysctl,
  type World,
} from './harness.js';
import { runIn, type PluginRun } from '../../helpers/run-plugin.js';
import { formatChainName } from '../../../shared/cni/utils.js';

const IPAMS: Array<'go' | 'ours'> = haveOurHostLocal ? ['go', 'ours'] : ['go'];

describe.skipIf(!canUseNetns || !haveOurs)('bridge plugin (built) in netns hosts', () => {
  let w: World;
  let seq = 0;
  beforeAll(() => {
    execFileSync('node', ['scripts/build.mjs', 'bridge'], { cwd: new URL('../../..', import.meta.url).pathname, stdio: 'pipe' });
  });
  afterEach(() => w?.dispose());
  afterAll(cleanupNetns);

  const run = (cmd: string, c: Record<string, unknown>, o: { pod?: number; id?: string; ifname?: string; args?: string; netns?: string; ipam?: 'go' | 'ours' } = {}): PluginRun =>
    runIn(w.host, OUR_BRIDGE, {
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: o.id ?? `ctr-${seq}`,
      CNI_NETNS: o.netns ?? w.pod(o.pod ?? 0).path,
      CNI_IFNAME: o.ifname ?? 'eth0',
      CNI_PATH: ipamPath(o.ipam ?? 'go'),
      ...(o.args !== undefined ? { CNI_ARGS: o.args } : {}),
    }, JSON.stringify(c));
  const ok = (r: PluginRun): Record<string, unknown> => {
    if (r.code !== 0) throw new Error(`plugin failed (${r.code}): ${r.stdout} ${r.stderr}`);
    return r.json ?? {};
  };
  const fresh = (pods = 1) => {
    seq++;
    w = makeWorld(`b${seq}`, pods);
  };

  describe.each(IPAMS)('with %s host-local', (ipam) => {
    it('IPv4 with isDefaultGateway: result, host and pod state, DEL twice', () => {
      fresh();
      const c = conf(w, { isDefaultGateway: true, mtu: 1400 }, { subnet: '10.1.2.0/24', routes: [{ dst: '10.9.0.0/16' }] });
      const res = ok(run('ADD', c, { ipam }));
      expect(res.cniVersion).toBe('1.0.0');
      const ifaces = res.interfaces as Array<{ name: string; mac: string; sandbox?: string }>;
      expect(ifaces.map((i) => i.name)).toEqual(['br-t', expect.stringMatching(/^veth[0-9a-f]{8}$/), 'eth0']);
      for (const i of ifaces) expect(i.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      expect(ifaces[2]!.sandbox).toBe(w.pod().path);
      expect(ifaces[0]!.mac).not.toBe(ifaces[1]!.mac);
      expect(res.ips).toEqual([{ interface: 2, address: '10.1.2.2/24', gateway: '10.1.2.1' }]);
      expect(res.routes).toEqual([{ dst: '10.9.0.0/16' }, { dst: '0.0.0.0/0', gw: '10.1.2.1' }]);
      expect(res.dns).toEqual({});

      const hostVeth = ifaces[1]!.name;
      expect(w.hostLinks()).toEqual(['br-t', 'lo', hostVeth].sort());
      const br = addrShow(w.host, 'br-t')[0]!;
      expect(br.mtu).toBe(1400);
      expect(br.address).toBe(ifaces[0]!.mac);
      expect(br.addr_info.find((a) => a.family === 'inet')).toMatchObject({ local: '10.1.2.1', prefixlen: 24, broadcast: '10.1.2.255' });
      const veth = addrShow(w.host, hostVeth)[0]!;
      expect(veth).toMatchObject({ mtu: 1400, master: 'br-t', operstate: 'UP', address: ifaces[1]!.mac });
      expect(veth.linkinfo?.info_slave_data?.hairpin).toBe(false);
      expect(sysctl(w.host, 'net/ipv6/conf/br-t/accept_ra')).toBe('0');
      expect(sysctl(w.host, `net/ipv6/conf/${hostVeth}/accept_ra`)).toBe('0');
      expect(sysctl(w.host, 'net/ipv4/ip_forward')).toBe('1');

      const eth0 = addrShow(w.pod(), 'eth0')[0]!;
      expect(eth0).toMatchObject({ mtu: 1400, address: ifaces[2]!.mac, operstate: 'UP' });
      expect(globalAddrs(w.pod(), 'eth0')).toEqual(['10.1.2.2/24']);
      expect(routes(w.pod(), 4)).toEqual(['default via 10.1.2.1 dev eth0', '10.1.2.0/24 dev eth0', '10.9.0.0/16 via 10.1.2.1 dev eth0']);
      expect(sysctl(w.pod(), 'net/ipv4/conf/eth0/arp_notify')).toBe('1');
      expect(sysctl(w.pod(), 'net/ipv6/conf/eth0/accept_dad')).toBe('0');
      expect(ipamFiles(w)).toEqual(['10.1.2.2']);
      // the pod reaches its gateway
      expect(w.pod().exec(['ping', '-c', '1', '-W', '2', '10.1.2.1'], { allowFail: true }).status).toBe(0);

      expect(ok(run('DEL', c, { ipam }))).toEqual({});
      expect(run('DEL', c, { ipam }).code).toBe(0);
      expect(w.hostLinks()).toEqual(['br-t', 'lo']); // the bridge stays
      expect(addrShow(w.pod()).map((l) => l.ifname)).toEqual(['lo']);
      expect(ipamFiles(w)).toEqual([]);
    });

    it('IPv6 and dual stack: addresses, gateways and one default route per family', () => {
      fresh();
      const c = conf(w, { isDefaultGateway: true }, null);
      c.ipam = { type: 'host-local', dataDir: `${w.dir}/ipam`, ranges: [[{ subnet: '10.7.0.0/24' }], [{ subnet: 'fd00:7::/64' }]] };
      const res = ok(run('ADD', c, { ipam }));
      expect(res.ips).toEqual([
        { interface: 2, address: '10.7.0.2/24', gateway: '10.7.0.1' },
        { interface: 2, address: 'fd00:7::2/64', gateway: 'fd00:7::1' },
      ]);
      expect(res.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.7.0.1' }, { dst: '::/0', gw: 'fd00:7::1' }]);
      expect(globalAddrs(w.host, 'br-t')).toEqual(['10.7.0.1/24', 'fd00:7::1/64']);
      expect(globalAddrs(w.pod(), 'eth0')).toEqual(['10.7.0.2/24', 'fd00:7::2/64']);
      expect(routes(w.pod(), 6)).toContain('default via fd00:7::1 dev eth0');
      expect(sysctl(w.host, 'net/ipv6/conf/all/forwarding')).toBe('1');
      expect(sysctl(w.pod(), 'net/ipv6/conf/eth0/keep_addr_on_down')).toBe('1');
      expect(run('CHECK', c, { ipam }).code).toBe(1); // no prevResult
      const withPrev = { ...c, prevResult: res };
      expect(run('CHECK', withPrev, { ipam })).toMatchObject({ code: 0, stdout: '' });
      ok(run('DEL', c, { ipam }));
      expect(ipamFiles(w)).toEqual([]);

      // IPv6 only
      const c6 = conf(w, { isGateway: true }, { subnet: '2001:db8::/64' });
      const r6 = ok(run('ADD', c6, { ipam, id: 'v6only' }));
      expect(r6.ips).toEqual([{ interface: 2, address: '2001:db8::2/64', gateway: '2001:db8::1' }]);
      expect(r6.routes).toBeUndefined();
      expect(globalAddrs(w.host, 'br-t')).toEqual(['10.7.0.1/24', '2001:db8::1/64', 'fd00:7::1/64'].filter((a) => globalAddrs(w.host, 'br-t').includes(a)));
      expect(globalAddrs(w.host, 'br-t')).toContain('2001:db8::1/64'); // non-overlapping v6 coexist
      ok(run('DEL', c6, { ipam, id: 'v6only' }));
    });
  });

  it('L2 mode (ipam {}): 3 interfaces, no ips, container up', () => {
    fresh();
    const c = conf(w, { ipam: {} });
    const res = ok(run('ADD', c));
    expect((res.interfaces as unknown[]).length).toBe(3);
    expect(res.ips).toBeUndefined();
    expect(addrShow(w.pod(), 'eth0')[0]!.flags).toContain('UP');
    expect(globalAddrs(w.host, 'br-t')).toEqual([]);
    // L2: the bridge MAC follows its port (not pinned)
    const ifaces = res.interfaces as Array<{ mac: string }>;
    expect(ifaces[0]!.mac).toBe(ifaces[1]!.mac);
    ok(run('DEL', c));
  });

  it('disableContainerInterface: container iface stays down; with IPAM it is an error', () => {
    fresh();
    const res = ok(run('ADD', conf(w, { ipam: {}, disableContainerInterface: true })));
    expect((res.interfaces as unknown[]).length).toBe(3);
    expect(addrShow(w.pod(), 'eth0')[0]!.flags).not.toContain('UP');
    ok(run('DEL', conf(w, { ipam: {}, disableContainerInterface: true })));
    const bad = run('ADD', conf(w, { disableContainerInterface: true }), { id: 'x2' });
    expect(bad.code).toBe(1);
    expect(bad.json).toEqual({ code: 999, msg: 'cannot use IPAM when DisableContainerInterface flag is set' });
  });

  it('hairpinMode, promiscMode (and both at once), portIsolation', () => {
    fresh(3);
    const r1 = ok(run('ADD', conf(w, { hairpinMode: true, portIsolation: true }), { pod: 0, id: 'a' }));
    const v1 = (r1.interfaces as Array<{ name: string }>)[1]!.name;
    expect(addrShow(w.host, v1)[0]!.linkinfo?.info_slave_data).toMatchObject({ hairpin: true, isolated: true });
    const r2 = ok(run('ADD', conf(w, { promiscMode: true }), { pod: 1, id: 'b' }));
    expect(addrShow(w.host, 'br-t')[0]!.flags).toContain('PROMISC');
    expect(addrShow(w.host, (r2.interfaces as Array<{ name: string }>)[1]!.name)[0]!.linkinfo?.info_slave_data).toMatchObject({ hairpin: false, isolated: false });
    const both = run('ADD', conf(w, { promiscMode: true, hairpinMode: true }), { pod: 2, id: 'c' });
    expect(both.json).toEqual({ code: 999, msg: 'cannot set hairpin mode and promiscuous mode at the same time' });
  });

  it('forceAddress: a conflicting bridge address is an error without it and replaced with it', () => {
    fresh(2);
    ok(run('ADD', conf(w, { isGateway: true }, { subnet: '10.1.2.0/24' }), { pod: 0, id: 'a' }));
    const bad = run('ADD', conf(w, { isGateway: true }, { subnet: '10.5.0.0/16' }), { pod: 1, id: 'b' });
    expect(bad.code).toBe(1);
    expect(bad.json).toEqual({ code: 999, msg: 'failed to set bridge addr: "br-t" already has an IP address different from 10.5.0.1/16' });
    expect(globalAddrs(w.host, 'br-t')).toEqual(['10.1.2.1/24']);
    expect(ipamFiles(w)).toEqual(['10.1.2.2']); // the failed ADD released its IP
    run('DEL', conf(w, { isGateway: true }, { subnet: '10.5.0.0/16' }), { pod: 1, id: 'b' });
    ok(run('ADD', conf(w, { isGateway: true, forceAddress: true }, { subnet: '10.5.0.0/16' }), { pod: 1, id: 'b' }));
    expect(globalAddrs(w.host, 'br-t')).toEqual(['10.5.0.1/16']);
  });

  it('a non-bridge device with the bridge name is an error; an existing bridge is reused', () => {
    fresh(2);
    w.host.exec(['ip', 'link', 'add', 'br-t', 'type', 'veth', 'peer', 'name', 'br-t-peer']);
    const bad = run('ADD', conf(w));
    expect(bad.json).toEqual({ code: 999, msg: 'failed to create bridge "br-t": "br-t" already exists but is not a bridge' });
    expect(addrShow(w.pod()).map((l) => l.ifname)).toEqual(['lo']);
    w.host.exec(['ip', 'link', 'del', 'br-t']);
    w.host.exec(['ip', 'link', 'add', 'br-t', 'type', 'bridge']);
    const index = addrShow(w.host, 'br-t')[0]! as unknown as { ifindex: number };
    ok(run('ADD', conf(w, { isGateway: true }), { pod: 0, id: 'a' }));
    expect((addrShow(w.host, 'br-t')[0]! as unknown as { ifindex: number }).ifindex).toBe(index.ifindex);
    // default bridge name
    const c = conf(w, {}, { subnet: '10.3.0.0/24' });
    delete c.bridge;
    ok(run('ADD', c, { pod: 1, id: 'b' }));
    expect(w.hostLinks()).toContain('cni0');
  });

  it('container MAC: CNI_ARGS < args.cni.mac < runtimeConfig.mac', () => {
    fresh(3);
    const r1 = ok(run('ADD', conf(w), { pod: 0, id: 'a', args: 'IgnoreUnknown=1;K8S_POD_NAME=x;MAC=02:00:00:00:00:01' }));
    expect((r1.interfaces as Array<{ mac: string }>)[2]!.mac).toBe('02:00:00:00:00:01');
    expect(addrShow(w.pod(0), 'eth0')[0]!.address).toBe('02:00:00:00:00:01');
    const r2 = ok(run('ADD', conf(w, { args: { cni: { mac: '02:00:00:00:00:02' } } }), { pod: 1, id: 'b', args: 'IgnoreUnknown=1;MAC=02:00:00:00:00:01' }));
    expect((r2.interfaces as Array<{ mac: string }>)[2]!.mac).toBe('02:00:00:00:00:02');
    const r3 = ok(run('ADD', conf(w, { args: { cni: { mac: '02:00:00:00:00:02' } }, RuntimeConfig: { mac: '02:00:00:00:00:03' } }), { pod: 2, id: 'c', args: 'IgnoreUnknown=1;MAC=02:00:00:00:00:01' }));
    expect(addrShow(w.pod(2), 'eth0')[0]!.address).toBe('02:00:00:00:00:03');
    expect((r3.interfaces as Array<{ mac: string }>)[2]!.mac).toBe('02:00:00:00:00:03');
    const bad = run('ADD', conf(w), { pod: 0, id: 'd', ifname: 'eth1', args: 'K8S_POD_NAME=x' });
    expect(bad.json).toEqual({ code: 999, msg: 'ARGS: unknown args ["K8S_POD_NAME=x"]' });
  });

  it('enabledad and dns override', () => {
    fresh();
    const c = conf(w, { enabledad: true, dns: { nameservers: ['192.0.2.53'], search: ['example.org'] } }, { subnet: 'fd00:9::/64' });
    const res = ok(run('ADD', c));
    expect(sysctl(w.pod(), 'net/ipv6/conf/eth0/accept_dad')).toBe('1');
    expect(res.dns).toEqual({ nameservers: ['192.0.2.53'], search: ['example.org'] });
  });

  it('ipMasq: chain CNI-<sha512(name+id)[:24]> with the comment; DEL removes it, even when the link is gone', async () => {
    fresh(2);
    const c = conf(w, { isGateway: true, ipMasq: true });
    ok(run('ADD', c, { id: 'masq-1' }));
    const chain = formatChainName('testnet', 'masq-1');
    expect(chain).toMatch(/^CNI-[0-9a-f]{24}$/);
    const nat = w.host.exec(['iptables', '-t', 'nat', '-S']).stdout;
    const comment = '"name: \\"testnet\\" id: \\"masq-1\\""';
    expect(nat).toContain(`-A POSTROUTING -s 10.1.2.2/32 -m comment --comment ${comment} -j ${chain}`);
    expect(nat).toContain(`-A ${chain} -d 10.1.2.0/24 -m comment --comment ${comment} -j ACCEPT`);
    expect(nat).toContain(`-A ${chain} ! -d 224.0.0.0/4 -m comment --comment ${comment} -j MASQUERADE`);
    ok(run('DEL', c, { id: 'masq-1' }));
    expect(w.host.exec(['iptables', '-t', 'nat', '-S']).stdout).not.toContain(chain);
    ok(run('DEL', c, { id: 'masq-1' })); // chain already gone

    // link deleted behind our back: DEL still removes the chain and the POSTROUTING rule
    ok(run('ADD', c, { id: 'masq-2', pod: 1 }));
    w.pod(1).exec(['ip', 'link', 'del', 'eth0']);
    ok(run('DEL', c, { id: 'masq-2', pod: 1 }));
    expect(w.host.exec(['iptables', '-t', 'nat', '-S']).stdout).not.toContain(formatChainName('testnet', 'masq-2'));
    expect(ipamFiles(w)).toEqual([]);
  });

  it('DEL succeeds when the netns is gone, the veth is gone, or CNI_NETNS is empty, and releases IPAM', () => {
    fresh(3);
    const c = conf(w, { isGateway: true });
    ok(run('ADD', c, { id: 'a', pod: 0 }));
    ok(run('ADD', c, { id: 'b', pod: 1 }));
    ok(run('ADD', c, { id: 'c', pod: 2 }));
    expect(ipamFiles(w)).toEqual(['10.1.2.2', '10.1.2.3', '10.1.2.4']);
    const gonePath = w.pod(0).path;
    w.pod(0).delete();
    expect(run('DEL', c, { id: 'a', netns: gonePath })).toMatchObject({ code: 0, stdout: '' });
    w.pod(1).exec(['ip', 'link', 'del', 'eth0']);
    expect(run('DEL', c, { id: 'b', pod: 1 })).toMatchObject({ code: 0, stdout: '' });
    expect(run('DEL', c, { id: 'c', netns: '' })).toMatchObject({ code: 0, stdout: '' });
    expect(ipamFiles(w)).toEqual([]);
    // the veth of "c" remains (netns was not given), as upstream
    expect(w.hostLinks().filter((l) => l.startsWith('veth'))).toHaveLength(1);
  });

  it('ADD fails if the interface exists; the IP is released', () => {
    fresh();
    const c = conf(w);
    ok(run('ADD', c, { id: 'a' }));
    const again = run('ADD', c, { id: 'b' });
    expect(again.code).toBe(1);
    expect(again.json?.msg).toMatch(/^container veth name \("eth0"\) peer provided \("veth[0-9a-f]{8}"\) already exists$/);
    expect(ipamFiles(w)).toEqual(['10.1.2.2']);
  });

  it('CHECK detects a missing route and a wrong MAC', () => {
    fresh();
    const c = conf(w, { isDefaultGateway: true });
    const res = ok(run('ADD', c));
    expect(run('CHECK', { ...c, prevResult: res }).code).toBe(0);
    const badMac = structuredClone(res) as { interfaces: Array<{ mac: string }> };
    badMac.interfaces[2]!.mac = '02:00:00:00:00:99';
    expect(run('CHECK', { ...c, prevResult: badMac }).json?.msg).toMatch(/^Interface eth0 Mac 02:00:00:00:00:99 doesn't match container Mac: /);
    w.pod().exec(['ip', 'route', 'del', 'default']);
    expect(run('CHECK', { ...c, prevResult: res }).json?.msg).toBe('Expected Route {Dst:0.0.0.0/0 GW:10.1.2.1} not found in routing table');
    expect(run('CHECK', { ...c, cniVersion: '0.3.1', prevResult: res }).json).toMatchObject({ code: 1, msg: 'config version does not allow CHECK' });
  });

  it('renders every spec version', () => {
    fresh(5);
    const versions = ['0.1.0', '0.2.0', '0.3.1', '0.4.0', '1.0.0'];
    versions.forEach((v, i) => {
      const res = ok(run('ADD', conf(w, { cniVersion: v, isGateway: true }), { pod: i, id: `v${i}` }));
      expect(res.cniVersion).toBe(v);
      if (v === '0.1.0' || v === '0.2.0') expect(res.ip4).toEqual({ ip: `10.1.2.${i + 2}/24`, gateway: '10.1.2.1' });
      else if (v === '1.0.0') expect(res.ips).toEqual([{ interface: 2, address: `10.1.2.${i + 2}/24`, gateway: '10.1.2.1' }]);
      else expect(res.ips).toEqual([{ version: '4', interface: 2, address: `10.1.2.${i + 2}/24`, gateway: '10.1.2.1' }]);
    });
  });
});
