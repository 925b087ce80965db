// Our bridge against the Go reference (/usr/lib/cni/bridge, containernetworking-plugins 1.1.1):
// same input → same result bytes modulo MACs and the random veth name, same kernel state; DEL of one
// cleans what the other created; garbage input → same error code, exit 1, host untouched (ours).
// Mix and match the other way round too: the Go bridge with OUR host-local as its IPAM (CNI_PATH =
// dist/bin) must give what the Go bridge gives with Go's host-local, on the kernel and on disk.
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns } from '../../helpers/netns.js';
import {
  GO_BRIDGE,
  OUR_BRIDGE,
  addrShow,
  conf,
  globalAddrs,
  haveGo,
  haveOurHostLocal,
  haveOurs,
  ipamFiles,
  ipamPath,
  worldsPerTest,
  routes,
  sysctl,
  type World,
} from './harness.js';
import { runIn, type PluginRun, type RawEnv } from '../../helpers/run-plugin.js';

const normalize = (s: string) => s.replace(/[0-9a-f]{2}(:[0-9a-f]{2}){5}/g, 'MAC').replace(/veth[0-9a-f]{8}/g, 'vethXXXXXXXX');

describe.skipIf(!canUseNetns || !haveOurs || !haveGo)('bridge: ours vs the Go reference', () => {
  const world = worldsPerTest('i');
  const env = (w: World, cmd: string, o: { id?: string; pod?: number; netns?: string; ipam?: 'go' | 'ours' } = {}): RawEnv => ({
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: o.id ?? 'ctr-1',
    CNI_NETNS: o.netns ?? w.pod(o.pod ?? 0).path,
    CNI_IFNAME: 'eth0',
    CNI_PATH: ipamPath(o.ipam ?? 'go'),
  });

  /** host + pod state that both implementations must leave identically */
  const state = (w: World, bridge = 'br-t') => ({
    hostLinks: w.hostLinks().map((l) => l.replace(/^veth[0-9a-f]{8}$/, 'vethXXXXXXXX')),
    bridgeAddrs: w.hostLinks().includes(bridge) ? globalAddrs(w.host, bridge) : [],
    bridgeMtu: w.hostLinks().includes(bridge) ? addrShow(w.host, bridge)[0]!.mtu : 0,
    podLinks: addrShow(w.pod()).map((l) => `${l.ifname} ${l.mtu} ${l.operstate}`),
    podAddrs: addrShow(w.pod()).some((l) => l.ifname === 'eth0') ? globalAddrs(w.pod(), 'eth0') : [],
    podRoutes4: routes(w.pod(), 4),
    podRoutes6: routes(w.pod(), 6),
    forward: sysctl(w.host, 'net/ipv4/ip_forward'),
    arpNotify: addrShow(w.pod()).some((l) => l.ifname === 'eth0') ? sysctl(w.pod(), 'net/ipv4/conf/eth0/arp_notify') : '',
    ipam: ipamFiles(w),
    // in order: a container's chain holds its rules in the order the appends left them
    nat: w.host.exec(['iptables', '-t', 'nat', '-S']).stdout.split('\n').filter((l) => l.includes('CNI-')),
    nat6: w.host.exec(['ip6tables', '-t', 'nat', '-S']).stdout.split('\n').filter((l) => l.includes('CNI-')),
  });

  const dual = { ranges: [[{ subnet: '10.7.0.0/24' }], [{ subnet: 'fd00:7::/64' }]] };
  const CASES: Array<[string, Record<string, unknown>, Record<string, unknown> | null]> = [
    ['v4 isDefaultGateway + routes + mtu', { isDefaultGateway: true, mtu: 1400 }, { subnet: '10.1.2.0/24', routes: [{ dst: '10.9.0.0/16' }, { dst: '10.10.0.0/16', gw: '10.1.2.9' }] }],
    ['v4 isGateway, hairpin, ipMasq', { isGateway: true, hairpinMode: true, ipMasq: true }, { subnet: '10.1.2.0/24' }],
    ['v6 isDefaultGateway', { isDefaultGateway: true }, { subnet: '2001:db8::/64' }],
    ['dual stack isDefaultGateway', { isDefaultGateway: true }, dual],
    ['no gateway', {}, { subnet: '10.1.2.0/24', gateway: '10.1.2.254' }],
    ['L2', { ipam: {} }, null],
    ['0.3.1 dual', { cniVersion: '0.3.1', isDefaultGateway: true }, dual],
    ['0.4.0', { cniVersion: '0.4.0', isGateway: true }, { subnet: '10.1.2.0/24' }],
    ['0.2.0', { cniVersion: '0.2.0', isDefaultGateway: true }, { subnet: '10.1.2.0/24' }],
    ['0.1.0 (no cniVersion)', { cniVersion: undefined, isGateway: true }, { subnet: '10.1.2.0/24' }],
    ['case-insensitive keys', { Bridge: 'br-t', ISGATEWAY: true, MTU: 1300 }, { subnet: '10.1.2.0/24' }],
  ];

  it('ipMasq with two v4 addresses and a v6 one: the same chains as Go; DEL cleans where Go 1.1.1 fails and leaks', () => {
    const go = world();
    const ours = world();
    // no gateway: a bridge takes one v4 gateway address
    const ipam = { ranges: [[{ subnet: '10.7.0.0/24' }], [{ subnet: '10.8.0.0/24' }], [{ subnet: 'fd00:7::/64' }]] };
    const cGo = conf(go, { ipMasq: true }, ipam);
    const cOurs = conf(ours, { ipMasq: true }, ipam);
    expect(runIn(go.host, GO_BRIDGE, env(go, 'ADD'), JSON.stringify(cGo)).code).toBe(0);
    expect(runIn(ours.host, OUR_BRIDGE, env(ours, 'ADD'), JSON.stringify(cOurs)).code).toBe(0);
    const s = state(ours);
    expect(s).toEqual(state(go));
    // Go's appends leave: ACCEPT 10.7/24, MASQUERADE, ACCEPT 10.8/24, and one jump per address
    expect(s.nat.filter((l) => l.startsWith('-A CNI-')).map((l) => l.split(' -m comment')[0]!.replace(/CNI-\w+/, 'C'))).toEqual([
      '-A C -d 10.7.0.0/24',
      '-A C ! -d 224.0.0.0/4',
      '-A C -d 10.8.0.0/24',
    ]);
    expect(s.nat.filter((l) => l.startsWith('-A POSTROUTING'))).toHaveLength(2);

    // Go 1.1.1 deletes the chain after the first address while the second's jump still uses it
    const dGo = runIn(go.host, GO_BRIDGE, env(go, 'DEL'), JSON.stringify(cGo));
    expect(dGo.code).toBe(1);
    expect(dGo.stdout).toMatch(/CHAIN_DEL failed \(Device or resource busy\)/);
    const dOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'DEL'), JSON.stringify(cOurs));
    expect(dOurs).toMatchObject({ code: 0, stdout: '' });
    expect(state(ours).nat).toEqual([]);
    expect(state(ours).nat6).toEqual([]);
  });

  it.each(CASES)('%s: same result bytes and state, ADD then DEL', (_name, o, ipam) => {
    const go = world();
    const ours = world();
    const cGo = conf(go, o, ipam);
    const cOurs = conf(ours, o, ipam);
    const rGo = runIn(go.host, GO_BRIDGE, env(go, 'ADD'), JSON.stringify(cGo));
    const rOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'ADD'), JSON.stringify(cOurs));
    expect(rGo.code).toBe(0);
    expect(rOurs.code).toBe(0);
    const sub = (s: string, w: World) => normalize(s).replaceAll(w.pod().path, 'PODNS');
    expect(sub(rOurs.stdout, ours)).toBe(sub(rGo.stdout, go));
    expect(state(ours)).toEqual(state(go));

    const dGo = runIn(go.host, GO_BRIDGE, env(go, 'DEL'), JSON.stringify(cGo));
    const dOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'DEL'), JSON.stringify(cOurs));
    expect([dOurs.code, dOurs.stdout]).toEqual([dGo.code, dGo.stdout]);
    expect(state(ours)).toEqual(state(go));
  });

  it.each([
    ['Go ADD, our DEL', GO_BRIDGE, OUR_BRIDGE],
    ['our ADD, Go DEL', OUR_BRIDGE, GO_BRIDGE],
  ])('%s cleans veth, IP reservation and masquerade chain', (_name, adder, deleter) => {
    const w = world();
    const c = conf(w, { isGateway: true, ipMasq: true }, { subnet: '10.1.2.0/24' });
    const before = state(w);
    const a = runIn(w.host, adder, env(w, 'ADD'), JSON.stringify(c));
    expect(a.code).toBe(0);
    expect(state(w).nat.length).toBeGreaterThan(0);
    expect(ipamFiles(w)).toEqual(['10.1.2.2']);
    const d = runIn(w.host, deleter, env(w, 'DEL'), JSON.stringify(c));
    expect(d).toMatchObject({ code: 0, stdout: '' });
    const after = state(w);
    expect(after.nat).toEqual([]);
    expect(after.ipam).toEqual([]);
    expect(after.podLinks).toEqual(before.podLinks);
    expect(after.hostLinks).toEqual(['br-t', 'lo']);
    // and the other one's CHECK-free re-ADD works on the same bridge
    expect(runIn(w.host, deleter, env(w, 'ADD', { id: 'ctr-2' }), JSON.stringify(c)).code).toBe(0);
  });

  it('both on one bridge: each CHECKs and DELs only its own container', () => {
    const w = world(2);
    const c = conf(w, { isDefaultGateway: true }, { subnet: '10.1.2.0/24' });
    const g = runIn(w.host, GO_BRIDGE, env(w, 'ADD', { id: 'go', pod: 0 }), JSON.stringify(c));
    const o = runIn(w.host, OUR_BRIDGE, env(w, 'ADD', { id: 'ts', pod: 1 }), JSON.stringify(c));
    expect([g.code, o.code]).toEqual([0, 0]);
    expect(ipamFiles(w)).toEqual(['10.1.2.2', '10.1.2.3']);
    // CHECK each other's result
    expect(runIn(w.host, OUR_BRIDGE, env(w, 'CHECK', { id: 'go', pod: 0 }), JSON.stringify({ ...c, prevResult: g.json })).code).toBe(0);
    expect(runIn(w.host, GO_BRIDGE, env(w, 'CHECK', { id: 'ts', pod: 1 }), JSON.stringify({ ...c, prevResult: o.json })).stdout).toBe('');
    // pods reach each other through the shared bridge
    expect(w.pod(1).exec(['ping', '-c', '1', '-W', '2', '10.1.2.2'], { allowFail: true }).status).toBe(0);
    expect(runIn(w.host, OUR_BRIDGE, env(w, 'DEL', { id: 'go', pod: 0 }), JSON.stringify(c)).code).toBe(0);
    expect(ipamFiles(w)).toEqual(['10.1.2.3']);
    expect(runIn(w.host, GO_BRIDGE, env(w, 'DEL', { id: 'ts', pod: 1 }), JSON.stringify(c)).code).toBe(0);
    expect(ipamFiles(w)).toEqual([]);
    expect(w.hostLinks()).toEqual(['br-t', 'lo']);
  });

  // The Go bridge with our host-local: CNI_PATH=dist/bin, so the Go bridge execs OUR host-local as IPAM.
  describe.skipIf(!haveOurHostLocal)('the Go bridge with our host-local as its IPAM', () => {
    beforeAll(() => {
      execFileSync('node', ['scripts/build.mjs', 'host-local'], { cwd: new URL('../../..', import.meta.url).pathname, stdio: 'pipe' });
    });

    /** every file of the host-local store (the network's directory): name → mode and bytes */
    const store = (w: World, network = 'testnet'): Record<string, { mode: string; data: string }> | undefined => {
      const d = join(w.dir, 'ipam', network);
      if (!existsSync(d)) return undefined;
      const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);
      const out: Record<string, { mode: string; data: string }> = { '.': { mode: mode(d), data: '' } };
      for (const f of readdirSync(d).sort()) out[f] = { mode: mode(join(d, f)), data: readFileSync(join(d, f), 'latin1') };
      return out;
    };
    /**
     * What the Go host-local wrote, with the one difference between the Go 1.1.1 binary here and HEAD,
     * which ours follows (plugins/ipam/host-local/backend/disk): HEAD creates the IP and last_reserved_ip.N files 0600, 1.1.1 0644.
     */
    const asHead = (s: ReturnType<typeof store>) =>
      s === undefined
        ? s
        : Object.fromEntries(Object.entries(s).map(([f, v]) => [f, ['.', 'lock'].includes(f) ? v : { ...v, mode: v.mode === '644' ? '600' : v.mode }]));
    const sub = (s: string, w: World) => normalize(s).replaceAll(w.pod().path, 'PODNS');

    const MIX: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
      ['v4 isDefaultGateway + routes + mtu', { isDefaultGateway: true, mtu: 1400 }, { subnet: '10.1.2.0/24', routes: [{ dst: '10.9.0.0/16' }, { dst: '10.10.0.0/16', gw: '10.1.2.9' }] }],
      ['v4 isGateway + ipMasq, range with gateway', { isGateway: true, ipMasq: true }, { ranges: [[{ subnet: '10.1.2.0/24', rangeStart: '10.1.2.10', rangeEnd: '10.1.2.20', gateway: '10.1.2.254' }]] }],
      ['v6 isDefaultGateway', { isDefaultGateway: true }, { subnet: '2001:db8::/64' }],
      ['dual stack isDefaultGateway', { isDefaultGateway: true }, dual],
      ['dual stack isGateway + ipMasq', { isGateway: true, ipMasq: true }, dual],
      ['0.3.1 dual', { cniVersion: '0.3.1', isDefaultGateway: true }, dual],
      ['0.4.0 v4', { cniVersion: '0.4.0', isGateway: true }, { subnet: '10.1.2.0/24' }],
      ['0.2.0 v4', { cniVersion: '0.2.0', isDefaultGateway: true }, { subnet: '10.1.2.0/24' }],
    ];

    it.each(MIX)('%s: same result, kernel state and store as Go+Go; DEL through the Go bridge releases', (_name, o, ipam) => {
      const go = world(); // Go bridge + Go host-local
      const mix = world(); // Go bridge + our host-local
      const cGo = conf(go, o, ipam);
      const cMix = conf(mix, o, ipam);
      const rGo = runIn(go.host, GO_BRIDGE, env(go, 'ADD'), JSON.stringify(cGo));
      const rMix = runIn(mix.host, GO_BRIDGE, env(mix, 'ADD', { ipam: 'ours' }), JSON.stringify(cMix));
      expect(rGo.code).toBe(0);
      expect([rMix.code, rMix.stderr]).toEqual([0, '']);
      expect(sub(rMix.stdout, mix)).toBe(sub(rGo.stdout, go));
      expect(state(mix)).toEqual(state(go));
      expect(ipamFiles(mix)).not.toEqual([]);
      expect(store(mix)).toEqual(asHead(store(go)));

      const dGo = runIn(go.host, GO_BRIDGE, env(go, 'DEL'), JSON.stringify(cGo));
      const dMix = runIn(mix.host, GO_BRIDGE, env(mix, 'DEL', { ipam: 'ours' }), JSON.stringify(cMix));
      expect([dMix.code, dMix.stdout]).toEqual([dGo.code, dGo.stdout]);
      expect(ipamFiles(mix)).toEqual([]);
      expect(state(mix)).toEqual(state(go));
      expect(store(mix)).toEqual(asHead(store(go))); // the address released, last_reserved_ip.N and lock kept
    });

    it('a sequence of ADDs and DELs leaves the store Go would; Go host-local continues where ours left off', () => {
      const go = world(3);
      const mix = world(3);
      const c = (w: World) => conf(w, { isGateway: true }, dual);
      const steps: Array<[cmd: string, id: string, pod: number]> = [
        ['ADD', 'a', 0],
        ['ADD', 'b', 1],
        ['DEL', 'a', 0],
        ['ADD', 'c', 2],
        ['DEL', 'b', 1],
      ];
      for (const [cmd, id, pod] of steps) {
        const g = runIn(go.host, GO_BRIDGE, env(go, cmd, { id, pod }), JSON.stringify(c(go)));
        const m = runIn(mix.host, GO_BRIDGE, env(mix, cmd, { id, pod, ipam: 'ours' }), JSON.stringify(c(mix)));
        expect([m.code, m.stderr]).toEqual([0, '']);
        expect([cmd, id, sub(m.stdout, mix).replaceAll(mix.pod(pod).path, 'PODNS')]).toEqual([cmd, id, sub(g.stdout, go).replaceAll(go.pod(pod).path, 'PODNS')]);
        expect([cmd, id, store(mix)]).toEqual([cmd, id, asHead(store(go))]);
      }
      expect(ipamFiles(mix)).toEqual(['10.7.0.4', 'fd00:7::4']);
      // Go's host-local reads what ours wrote: next after last_reserved_ip, and it releases ours' "c"
      const next = runIn(mix.host, GO_BRIDGE, env(mix, 'ADD', { id: 'd', pod: 0 }), JSON.stringify(c(mix)));
      expect(next.code).toBe(0);
      expect((next.json?.ips as Array<{ address: string }>).map((i) => i.address)).toEqual(['10.7.0.5/24', 'fd00:7::5/64']);
      expect(runIn(mix.host, GO_BRIDGE, env(mix, 'DEL', { id: 'c', pod: 2 }), JSON.stringify(c(mix))).code).toBe(0);
      expect(ipamFiles(mix)).toEqual(['10.7.0.5', 'fd00:7::5']);
    });

    it.each([
      ['v4 isGateway + ipMasq', { isGateway: true, ipMasq: true }, { subnet: '10.1.2.0/24' }],
      ['dual stack isDefaultGateway + ipMasq', { isDefaultGateway: true, ipMasq: true }, dual],
    ] as Array<[string, Record<string, unknown>, Record<string, unknown>]>)(
      '%s: Go bridge + our host-local ADD, then our bridge + our host-local DEL cleans up',
      (_name, o, ipam) => {
        const w = world();
        const c = conf(w, o, ipam);
        const before = state(w);
        const a = runIn(w.host, GO_BRIDGE, env(w, 'ADD', { ipam: 'ours' }), JSON.stringify(c));
        expect(a.code).toBe(0);
        expect(state(w).nat.length).toBeGreaterThan(0);
        expect(ipamFiles(w).length).toBe((a.json?.ips as unknown[]).length);
        // our CHECK accepts the Go bridge's result
        expect(runIn(w.host, OUR_BRIDGE, env(w, 'CHECK', { ipam: 'ours' }), JSON.stringify({ ...c, prevResult: a.json }))).toMatchObject({ code: 0, stdout: '' });
        const d = runIn(w.host, OUR_BRIDGE, env(w, 'DEL', { ipam: 'ours' }), JSON.stringify(c));
        expect(d).toMatchObject({ code: 0, stdout: '' });
        const after = state(w);
        expect(after.nat).toEqual([]);
        expect(after.ipam).toEqual([]);
        expect(after.podLinks).toEqual(before.podLinks);
        expect(after.hostLinks).toEqual(['br-t', 'lo']);
        expect(Object.keys(store(w) ?? {}).filter((f) => f !== '.' && f !== 'lock' && !f.startsWith('last_reserved_ip'))).toEqual([]);
        // a second DEL is fine too, with either bridge
        expect(runIn(w.host, OUR_BRIDGE, env(w, 'DEL', { ipam: 'ours' }), JSON.stringify(c))).toMatchObject({ code: 0, stdout: '' });
        expect(runIn(w.host, GO_BRIDGE, env(w, 'DEL', { ipam: 'ours' }), JSON.stringify(c))).toMatchObject({ code: 0, stdout: '' });
      },
    );
  });

  // Garbage input: both exit 1 with the same code; ours prints valid error JSON and leaves the host as it was.
  const GARBAGE: Array<[string, (w: World) => { env: RawEnv; stdin: string }]> = [
    ['empty stdin', (w) => ({ env: env(w, 'ADD'), stdin: '' })],
    ['broken JSON', (w) => ({ env: env(w, 'ADD'), stdin: '{"cniVersion":"1.0.0","name":' })],
    ['not an object', (w) => ({ env: env(w, 'ADD'), stdin: '[1,2]' })],
    ['unknown cniVersion', (w) => ({ env: env(w, 'ADD'), stdin: JSON.stringify(conf(w, { cniVersion: '9.9.9' })) })],
    ['missing name', (w) => ({ env: env(w, 'ADD'), stdin: JSON.stringify({ ...conf(w), name: undefined }) })],
    ['bad network name', (w) => ({ env: env(w, 'ADD'), stdin: JSON.stringify(conf(w, { name: 'a b/c' })) })],
    ['missing CNI_NETNS', (w) => ({ env: { ...env(w, 'ADD'), CNI_NETNS: undefined }, stdin: JSON.stringify(conf(w)) })],
    ['missing CNI_PATH and CNI_IFNAME', (w) => ({ env: { ...env(w, 'ADD'), CNI_PATH: undefined, CNI_IFNAME: undefined }, stdin: JSON.stringify(conf(w)) })],
    ['missing CNI_CONTAINERID on DEL', (w) => ({ env: { ...env(w, 'DEL'), CNI_CONTAINERID: undefined }, stdin: JSON.stringify(conf(w)) })],
    ['unknown CNI_COMMAND', (w) => ({ env: env(w, 'FROB'), stdin: JSON.stringify(conf(w)) })],
    ['hostile container ID', (w) => ({ env: env(w, 'ADD', { id: '../../etc/passwd;rm -rf /' }), stdin: JSON.stringify(conf(w)) })],
    ['hostile ifname', (w) => ({ env: { ...env(w, 'ADD'), CNI_IFNAME: 'eth0/../x' }, stdin: JSON.stringify(conf(w)) })],
    ['netns path that does not exist', (w) => ({ env: env(w, 'ADD', { netns: '/var/run/netns/ftest-none-here' }), stdin: JSON.stringify(conf(w)) })],
    ['netns path that is not a netns', (w) => ({ env: env(w, 'ADD', { netns: '/etc/hostname' }), stdin: JSON.stringify(conf(w)) })],
    ['wrong type for a bool', (w) => ({ env: env(w, 'ADD'), stdin: JSON.stringify(conf(w, { isGateway: 'true' })) })],
    ['vlan out of range', (w) => ({ env: env(w, 'ADD'), stdin: JSON.stringify(conf(w, { vlan: 5000 })) })],
    ['bad CNI_ARGS', (w) => ({ env: { ...env(w, 'ADD'), CNI_ARGS: 'FOO' }, stdin: JSON.stringify(conf(w)) })],
    ['hairpin + promisc', (w) => ({ env: env(w, 'ADD'), stdin: JSON.stringify(conf(w, { hairpinMode: true, promiscMode: true })) })],
    ['IPAM plugin missing', (w) => ({ env: env(w, 'ADD'), stdin: JSON.stringify(conf(w, { ipam: { type: 'no-such-ipam' } })) })],
  ];

  it.each(GARBAGE)('garbage: %s', (_name, make) => {
    const go = world();
    const ours = world();
    const before = ours.hostLinks();
    const i1 = make(go);
    const i2 = make(ours);
    const rGo = runIn(go.host, GO_BRIDGE, i1.env, i1.stdin);
    const rOurs: PluginRun = runIn(ours.host, OUR_BRIDGE, i2.env, i2.stdin);
    expect(rGo.code).toBe(1);
    expect(rOurs.code).toBe(1);
    expect(rOurs.json).toBeDefined();
    expect(Object.keys(rOurs.json!).filter((k) => !['code', 'msg', 'details'].includes(k))).toEqual([]);
    expect(typeof rOurs.json!.msg).toBe('string');
    expect(rOurs.json!.code).toBe(rGo.json?.code);
    if (_name !== 'IPAM plugin missing') expect(ours.hostLinks()).toEqual(before);
    if (_name !== 'IPAM plugin missing') expect(ours.pod().exec(['ip', '-br', 'link']).stdout.trim().split('\n')).toHaveLength(1);
    expect(ipamFiles(ours)).toEqual([]);
  });
});
