// `vlan`, `vlanTrunk` and `preserveDefaultVlan` on the kernel: ADD/DEL through our bridge in one netns
// host and through the Go reference (/usr/lib/cni/bridge, containernetworking-plugins 1.1.1) with the
// same config in a sibling one, then the same kernel state: `bridge -j vlan show`, vlan_filtering, the
// links, the addresses on `<br>.<vlan>` (where isGateway puts the gateway when vlan is set), the pods.
//
// The Go binary here is 1.1.1; ours follows HEAD (plugins/main/bridge). Where the two differ by design, the Go
// state is turned into HEAD's by `asHead` below, one documented upstream change at a time:
//   - preserveDefaultVlan (1.3+; default false since 1.8): 1.1.1 keeps the bridge's default VLAN (vid 1,
//     "Egress Untagged" once the configured vid takes the PVID) on every port it tags; HEAD with
//     preserveDefaultVlan false first deletes all VLANs on the port (removeDefaultVlan);
//   - ensureVlanInterface: HEAD sets `<br>.<vlan>` up (LinkSetUp); 1.1.1 leaves it down.
// vlanTrunk does not exist in 1.1.1 (it is ignored, so Go's bridge gets no VLANs at all): for trunks the
// Go run still gives the reference for everything else, and the VLAN rows are checked against HEAD's bridge.go.
//
// Bridge VLAN filtering needs CONFIG_BRIDGE_VLAN_FILTERING. On a kernel without it, creating such a
// bridge and `bridge vlan add` fail with EOPNOTSUPP; that path is compared with Go instead.
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, createNetns, type Netns } from '../../helpers/netns.js';
import {
  GO_BRIDGE,
  OUR_BRIDGE,
  conf,
  globalAddrs,
  haveGo,
  haveOurs,
  ipamFiles,
  ipamPath,
  json,
  worldsPerTest,
  routes,
  sysctl,
  type World,
} from './harness.js';
import { runIn, type PluginRun, type RawEnv } from '../../helpers/run-plugin.js';

/** Whether this kernel can make a VLAN-filtering bridge (probed in a throwaway netns). */
function probeVlanFiltering(): boolean {
  if (!canUseNetns) return false;
  const ns = createNetns('vprobe');
  try {
    return ns.exec(['ip', 'link', 'add', 'br-probe', 'type', 'bridge', 'vlan_filtering', '1'], { allowFail: true }).status === 0;
  } finally {
    ns.delete();
  }
}
const canVlanFilter = probeVlanFiltering();

const normalize = (s: string) => s.replace(/[0-9a-f]{2}(:[0-9a-f]{2}){5}/g, 'MAC').replace(/veth[0-9a-f]{8}/g, 'vethXXXXXXXX');

interface LinkJson {
  ifname: string;
  flags: string[];
  mtu: number;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { vlan_filtering?: number } };
}

interface VlanRow {
  ifname: string;
  vlans?: Array<{ vlan: number; vlanEnd?: number; flags?: string[] }>;
}

type Conf = Record<string, unknown>;
type Ipam = Record<string, unknown> | null;

describe.skipIf(!canUseNetns || !haveOurs || !haveGo)('bridge VLANs: ours vs the Go reference', () => {
  const world = worldsPerTest('v');
  const env = (w: World, cmd: string, pod = 0): RawEnv => ({
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: `ctr-${pod}`,
    CNI_NETNS: w.pod(pod).path,
    CNI_IFNAME: 'eth0',
    CNI_PATH: ipamPath('go'),
  });
  const dual = { ranges: [[{ subnet: '10.7.0.0/24' }], [{ subnet: 'fd00:7::/64' }]] };
  const links = (ns: Netns) => json(ns, ['ip', '-j', '-d', 'link', 'show']) as LinkJson[];

  /** Names for the host's links that do not depend on the random veth names. */
  const labeler = (podVeths: readonly string[]) => (name: string) => {
    const i = podVeths.indexOf(name);
    if (i >= 0) return `veth:pod${i}`;
    return /^veth[0-9a-f]{8}$/.test(name) ? 'veth:gw' : name; // the bridge-side peer of <br>.<vlan>
  };

  /** `bridge -j vlan show` of the host: label → ["<vid> [PVID] [Egress Untagged]", ...] */
  const bridgeVlans = (w: World, label: (n: string) => string): Record<string, string[]> => {
    const out: Record<string, string[]> = {};
    for (const row of json(w.host, ['bridge', '-j', 'vlan', 'show']) as VlanRow[]) {
      const list: string[] = [];
      for (const v of row.vlans ?? []) {
        for (let id = v.vlan; id <= (v.vlanEnd ?? v.vlan); id++) list.push([String(id), ...(v.flags ?? [])].join(' '));
      }
      out[label(row.ifname)] = list;
    }
    return out;
  };

  /** The host and pod state ours and Go's must agree on (modulo asHead). */
  const state = (w: World, podVeths: readonly string[], vlan: number) => {
    const label = labeler(podVeths);
    const host = links(w.host);
    const by = (n: string) => host.find((l) => l.ifname === n);
    const br = by('br-t');
    const vlanIf = by(`br-t.${vlan}`);
    const gwPeer = host.find((l) => label(l.ifname) === 'veth:gw');
    return {
      hostLinks: host.map((l) => `${label(l.ifname)} ${l.linkinfo?.info_kind ?? ''} mtu ${l.mtu}${l.master ? ` master ${l.master}` : ''}`).sort(),
      vlanFiltering: br?.linkinfo?.info_data?.vlan_filtering,
      bridgeAddrs: br ? globalAddrs(w.host, 'br-t') : [],
      vlans: bridgeVlans(w, label),
      vlanIf: vlanIf && {
        kind: vlanIf.linkinfo?.info_kind,
        up: vlanIf.flags.includes('UP'),
        addrs: globalAddrs(w.host, vlanIf.ifname),
        acceptRa: sysctl(w.host, `net/ipv6/conf/${vlanIf.ifname}/accept_ra`),
      },
      gwPeer: gwPeer && { up: gwPeer.flags.includes('UP'), acceptRa: sysctl(w.host, `net/ipv6/conf/${gwPeer.ifname}/accept_ra`) },
      pods: w.pods.map((p) => {
        const eth0 = links(p).find((l) => l.ifname === 'eth0');
        return eth0 && { up: eth0.flags.includes('UP'), mtu: eth0.mtu, addrs: globalAddrs(p, 'eth0'), routes4: routes(p, 4), routes6: routes(p, 6) };
      }),
      forward: sysctl(w.host, 'net/ipv4/ip_forward'),
      ipam: ipamFiles(w),
    };
  };
  type State = ReturnType<typeof state>;

  /** Go 1.1.1's state as HEAD would leave it (see the header). */
  const asHead = (s: State, c: Conf): State => {
    const out = structuredClone(s);
    if (c.preserveDefaultVlan !== true) {
      // removeDefaultVlan deletes whatever the port had (the bridge's default PVID, 1 unless changed)
      for (const [port, list] of Object.entries(out.vlans)) {
        if (port.startsWith('veth:')) out.vlans[port] = list.filter((v) => v.split(' ')[0] === String(c.vlan));
      }
    }
    if (out.vlanIf !== undefined) out.vlanIf.up = true;
    return out;
  };

  const resultText = (r: PluginRun, w: World) => w.pods.reduce((s, p, i) => s.replaceAll(p.path, `PODNS${i}`), normalize(r.stdout));
  const hostVeth = (r: PluginRun) => (r.json?.interfaces as Array<{ name: string }> | undefined)?.[1]?.name ?? '';

  describe.skipIf(!canVlanFilter)('on a kernel with bridge VLAN filtering', () => {
    /** [name, config, ipam, bridge made beforehand]: two pods, each ADDed and then DELed, through both bridges */
    const CASES: Array<[string, Conf, Ipam, string[]?]> = [
      ['vlan 100, L2 (preserveDefaultVlan default: false)', { vlan: 100, ipam: {} }, null],
      ['vlan 100, L2, preserveDefaultVlan true', { vlan: 100, preserveDefaultVlan: true, ipam: {} }, null],
      ['vlan 100, L3 without gateway', { vlan: 100 }, { subnet: '10.1.2.0/24' }],
      ['vlan 100, isGateway, mtu 1400: the gateway on br-t.100', { vlan: 100, isGateway: true, mtu: 1400 }, { subnet: '10.1.2.0/24' }],
      ['vlan 100, isGateway, preserveDefaultVlan true', { vlan: 100, isGateway: true, preserveDefaultVlan: true }, { subnet: '10.1.2.0/24' }],
      ['vlan 4094, isDefaultGateway, dual stack, preserveDefaultVlan false', { vlan: 4094, isDefaultGateway: true, preserveDefaultVlan: false }, dual],
      // an existing bridge whose default PVID is not 1, or none (what containernetworking/plugins#667 advises)
      ['existing bridge with vlan_default_pvid 5, vlan 100, L2', { vlan: 100, ipam: {} }, null, ['vlan_filtering', '1', 'vlan_default_pvid', '5']],
      ['existing bridge with vlan_default_pvid 0, vlan 100, isGateway', { vlan: 100, isGateway: true }, { subnet: '10.1.2.0/24' }, ['vlan_filtering', '1', 'vlan_default_pvid', '0']],
    ];

    it.each(CASES)('%s: same result and kernel state as Go, ADD and DEL', (_name, o, ipam, pre) => {
      const vlan = o.vlan as number;
      const go = world(2);
      const ours = world(2);
      if (pre !== undefined) for (const w of [go, ours]) w.host.exec(['ip', 'link', 'add', 'br-t', 'type', 'bridge', ...pre]);
      const cGo = conf(go, o, ipam);
      const cOurs = conf(ours, o, ipam);
      const goVeths: string[] = [];
      const ourVeths: string[] = [];
      for (const pod of [0, 1]) {
        const rGo = runIn(go.host, GO_BRIDGE, env(go, 'ADD', pod), JSON.stringify(cGo));
        const rOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'ADD', pod), JSON.stringify(cOurs));
        expect([rGo.code, rGo.stdout]).toEqual([0, expect.any(String)]);
        expect([rOurs.code, rOurs.stderr]).toEqual([0, '']);
        expect(resultText(rOurs, ours)).toBe(resultText(rGo, go));
        goVeths.push(hostVeth(rGo));
        ourVeths.push(hostVeth(rOurs));
        expect(state(ours, ourVeths, vlan)).toEqual(asHead(state(go, goVeths, vlan), o));
      }
      const s = state(ours, ourVeths, vlan);
      expect(s.vlanFiltering).toBe(1);
      expect(s.vlans['veth:pod0']).toContain(`${vlan} PVID Egress Untagged`);
      if (o.isGateway === true || o.isDefaultGateway === true) {
        expect(s.vlanIf).toMatchObject({ kind: 'veth', up: true });
        expect(s.bridgeAddrs).toEqual([]); // the gateway is on br-t.<vlan>, not on the bridge
        expect(s.vlans['veth:gw']).toContain(`${vlan} PVID Egress Untagged`);
        // HEAD's fix (the interface is up): the pods reach their gateway through the VLAN
        const gw = (ipam === dual ? '10.7.0.1' : '10.1.2.1');
        expect(ours.pod(0).exec(['ping', '-c', '1', '-W', '2', gw], { allowFail: true }).status).toBe(0);
      } else {
        expect(s.vlanIf).toBeUndefined();
      }
      if (ipam !== null) {
        const peer = (ipam === dual ? '10.7.0.3' : '10.1.2.3');
        expect(ours.pod(0).exec(['ping', '-c', '1', '-W', '2', peer], { allowFail: true }).status).toBe(0);
      }

      for (const pod of [0, 1]) {
        const dGo = runIn(go.host, GO_BRIDGE, env(go, 'DEL', pod), JSON.stringify(cGo));
        const dOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'DEL', pod), JSON.stringify(cOurs));
        expect([dOurs.code, dOurs.stdout]).toEqual([dGo.code, dGo.stdout]);
        expect(state(ours, ourVeths, vlan)).toEqual(asHead(state(go, goVeths, vlan), o));
      }
      expect(ipamFiles(ours)).toEqual([]);
    });

    // Upstream pins a MAC in ensureAddr, on the device that gets the gateway address: with vlan that is
    // <br>.<vlan>, and the bridge keeps a kernel-chosen MAC that follows its ports (addr_assign_type 1;
    // a pinned MAC reads 3).
    it('vlan + isGateway: the bridge and <br>.<vlan> MACs are pinned (or not) as Go pins them', () => {
      const go = world();
      const ours = world();
      const o = { vlan: 100, isGateway: true };
      expect(runIn(go.host, GO_BRIDGE, env(go, 'ADD'), JSON.stringify(conf(go, o))).code).toBe(0);
      expect(runIn(ours.host, OUR_BRIDGE, env(ours, 'ADD'), JSON.stringify(conf(ours, o))).code).toBe(0);
      const assignTypes = (w: World) => ({
        bridge: readIn(w.host, '/sys/class/net/br-t/addr_assign_type'),
        vlanIf: readIn(w.host, '/sys/class/net/br-t.100/addr_assign_type'),
      });
      expect(assignTypes(ours)).toEqual(assignTypes(go));
    });

    const TRUNK = [{ id: 101 }, { minID: 200, maxID: 203 }];
    const TRUNK_VIDS = ['101', '200', '201', '202', '203'];
    // Go 1.1.1 ignores vlanTrunk; the VLAN rows are HEAD's: with preserveDefaultVlan true the port keeps
    // the bridge's default VLAN 1 (PVID, untagged) and gets the trunk vids tagged; with false all VLANs
    // are deleted first and, with no `vlan`, vid 1 comes back as the native (PVID, untagged) one.
    // NOTE: the upstream setupVeth read for this (v1.3–v1.7) adds no native vid; the 1.1.1 binary cannot
    // tell. See the report.
    it.each([
      ['vlanTrunk, preserveDefaultVlan true, L2', { vlanTrunk: TRUNK, preserveDefaultVlan: true, ipam: {} }, null],
      ['vlanTrunk (preserveDefaultVlan default: false), L2', { vlanTrunk: TRUNK, ipam: {} }, null],
      ['vlanTrunk, preserveDefaultVlan false, L3 isGateway', { vlanTrunk: TRUNK, preserveDefaultVlan: false, isGateway: true }, { subnet: '10.1.2.0/24' }],
    ] as Array<[string, Conf, Ipam]>)('%s: trunk vids on the port, the rest as Go', (_name, o, ipam) => {
      const go = world(2);
      const ours = world(2);
      const goVeths: string[] = [];
      const ourVeths: string[] = [];
      for (const pod of [0, 1]) {
        const rGo = runIn(go.host, GO_BRIDGE, env(go, 'ADD', pod), JSON.stringify(conf(go, o, ipam)));
        const rOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'ADD', pod), JSON.stringify(conf(ours, o, ipam)));
        expect(rGo.code).toBe(0);
        expect([rOurs.code, rOurs.stderr]).toEqual([0, '']);
        expect(resultText(rOurs, ours)).toBe(resultText(rGo, go));
        goVeths.push(hostVeth(rGo));
        ourVeths.push(hostVeth(rOurs));
      }
      const s = state(ours, ourVeths, 0);
      const g = state(go, goVeths, 0);
      expect({ ...s, vlans: undefined, vlanFiltering: undefined }).toEqual({ ...g, vlans: undefined, vlanFiltering: undefined });
      expect(s.vlanFiltering).toBe(1);
      const port = ['1 PVID Egress Untagged', ...TRUNK_VIDS];
      expect(s.vlans).toEqual({ 'br-t': ['1 PVID Egress Untagged'], 'veth:pod0': port, 'veth:pod1': port });
      for (const pod of [0, 1]) expect(runIn(ours.host, OUR_BRIDGE, env(ours, 'DEL', pod), JSON.stringify(conf(ours, o, ipam)))).toMatchObject({ code: 0, stdout: '' });
      expect(bridgeVlans(ours, labeler(ourVeths))).toEqual({ 'br-t': ['1 PVID Egress Untagged'] });
    });
  });

  describe.skipIf(canVlanFilter)('on a kernel without bridge VLAN filtering', () => {
    /** The plugin's own words, without the kernel's: ours quotes the failed iproute2 line and its strerror. */
    const ownWords = (msg: unknown) => String(msg).replace(/: "(?:link|vlan|addr|route) [^"]*": /, ': ').replace(/veth[0-9a-f]{8}/g, 'vethX').toLowerCase();
    const podLinks = (w: World) => links(w.pod()).map((l) => `${l.ifname} ${l.flags.includes('UP') ? 'up' : 'down'}`).sort();
    const hostLinks = (w: World) => w.hostLinks().map((l) => l.replace(/^veth[0-9a-f]{8}$/, 'vethX'));
    const storeFiles = (w: World) => (existsSync(join(w.dir, 'ipam', 'testnet')) ? readdirSync(join(w.dir, 'ipam', 'testnet')).sort() : []);

    const VLAN_CONFS: Array<[string, Conf, Ipam]> = [
      ['vlan 100, L2', { vlan: 100, ipam: {} }, null],
      ['vlan 100, isGateway', { vlan: 100, isGateway: true }, { subnet: '10.1.2.0/24' }],
      ['vlan 100, isDefaultGateway, dual stack, preserveDefaultVlan false', { vlan: 100, isDefaultGateway: true, preserveDefaultVlan: false }, dual],
      ['vlan 100, isGateway, preserveDefaultVlan true', { vlan: 100, isGateway: true, preserveDefaultVlan: true }, { subnet: '10.1.2.0/24' }],
    ];

    /** ADD in a fresh go and ours world; `existing`: the bridge exists already (without vlan_filtering). */
    const addBoth = (o: Conf, ipam: Ipam, existing: boolean) => {
      const go = world();
      const ours = world();
      if (existing) for (const w of [go, ours]) w.host.exec(['ip', 'link', 'add', 'br-t', 'type', 'bridge']);
      const cGo = conf(go, o, ipam);
      const cOurs = conf(ours, o, ipam);
      const rGo = runIn(go.host, GO_BRIDGE, env(go, 'ADD'), JSON.stringify(cGo));
      const rOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'ADD'), JSON.stringify(cOurs));
      return { go, ours, cGo, cOurs, rGo, rOurs };
    };

    it.each(VLAN_CONFS)('new bridge, %s: both fail to create it, same code and words, nothing left, no IP held', (_name, o, ipam) => {
      const { go, ours, cGo, cOurs, rGo, rOurs } = addBoth(o, ipam, false);
      expect(rGo.json?.msg).toBe('failed to create bridge "br-t": could not add "br-t": operation not supported');
      expect([rOurs.code, rOurs.json?.code]).toEqual([rGo.code, rGo.json?.code]);
      expect(ownWords(rOurs.json?.msg)).toBe(ownWords(rGo.json?.msg));
      expect(hostLinks(ours)).toEqual(hostLinks(go));
      expect(podLinks(ours)).toEqual(podLinks(go));
      expect(ipamFiles(ours)).toEqual([]);
      // the runtime's DEL after the failed ADD
      const dGo = runIn(go.host, GO_BRIDGE, env(go, 'DEL'), JSON.stringify(cGo));
      const dOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'DEL'), JSON.stringify(cOurs));
      expect([dOurs.code, dOurs.stdout]).toEqual([dGo.code, dGo.stdout]);
      expect(hostLinks(ours)).toEqual(hostLinks(go));
      expect(ipamFiles(ours)).toEqual([]);
    });

    it.each(VLAN_CONFS)('existing bridge, %s: both fail to tag the port, same code and words, same leftovers, DEL cleans', (_name, o, ipam) => {
      const { go, ours, cGo, cOurs, rGo, rOurs } = addBoth(o, ipam, true);
      expect(rGo.json?.msg).toMatch(/^failed to setup vlan tag on interface "veth[0-9a-f]{8}": operation not supported$/);
      expect([rOurs.code, rOurs.json?.code]).toEqual([rGo.code, rGo.json?.code]);
      expect(ownWords(rOurs.json?.msg)).toBe(ownWords(rGo.json?.msg));
      // as upstream, the veth stays for the runtime's DEL; the IP (if any) was released
      expect(hostLinks(ours)).toEqual(['br-t', 'lo', 'vethX']);
      expect(hostLinks(ours)).toEqual(hostLinks(go));
      expect(podLinks(ours)).toEqual(podLinks(go));
      expect(ipamFiles(ours)).toEqual([]);
      const dGo = runIn(go.host, GO_BRIDGE, env(go, 'DEL'), JSON.stringify(cGo));
      const dOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'DEL'), JSON.stringify(cOurs));
      expect([dOurs.code, dOurs.stdout]).toEqual([dGo.code, dGo.stdout]);
      expect(hostLinks(ours)).toEqual(['br-t', 'lo']);
      expect(podLinks(ours)).toEqual(podLinks(go));
    });

    // Known divergence: ours quotes the failed iproute2 batch line and iproute2's strerror
    // ("...: \"link add br-t type bridge vlan_filtering 1\": Operation not supported"); Go prints the
    // netlink errno alone ("...: operation not supported"). Same code (999), same words of our own.
    it.fails('the error text is byte-identical to Go\'s (kernel part included)', () => {
      const { rGo, rOurs } = addBoth({ vlan: 100, ipam: {} }, null, false);
      expect(rOurs.json?.msg).toBe(rGo.json?.msg);
    });

    // Known divergence: ours runs the IPAM ADD in parallel with the bridge read, before the bridge is
    // created (bridge.ts design notes), so a failure at bridge creation has already allocated and then
    // released an address: last_reserved_ip.0 advanced, the next pod gets .3 where Go's would get .2.
    // Go runs IPAM after the bridge and the veth, so its store is untouched by this failure.
    it.fails('a failed bridge creation leaves the IPAM store untouched, as Go\'s', () => {
      const { go, ours } = addBoth({ vlan: 100, isGateway: true }, { subnet: '10.1.2.0/24' }, false);
      expect(storeFiles(ours)).toEqual(storeFiles(go));
    });

    // Go 1.1.1 has no vlanTrunk (it ignores the key and succeeds without VLANs); HEAD creates the bridge
    // with vlan_filtering for a trunk too, so on this kernel it fails where ours fails.
    it('vlanTrunk: ours fails to create the VLAN-filtering bridge, host untouched, no IP held', () => {
      const ours = world();
      const r = runIn(ours.host, OUR_BRIDGE, env(ours, 'ADD'), JSON.stringify(conf(ours, { vlanTrunk: [{ id: 101 }], isGateway: true })));
      expect(r.code).toBe(1);
      expect(ownWords(r.json?.msg)).toBe('failed to create bridge "br-t": could not add "br-t": operation not supported');
      expect(hostLinks(ours)).toEqual(['lo']);
      expect(podLinks(ours)).toEqual(['lo up']);
      expect(ipamFiles(ours)).toEqual([]);
    });
  });
});

/** Reads a file inside the namespace (`ip netns exec` remounts /sys for it). */
function readIn(ns: Netns, path: string): string {
  return ns.exec(['cat', path]).stdout.trim();
}
