// macspoofchk against the Go reference (/usr/lib/cni/bridge 1.1.1): the same nftables ruleset in the
// host netns for the same input (veth names and the container MAC normalized), a spoofed source MAC
// from the pod dropped while the real one passes, each DEL removing the other's rules, the rollback of
// a failed ADD, and DEL when the veth, the netns or CNI_NETNS are gone.
//
// Every plugin runs inside a "host" netns the test made, so every nft rule lands there. The root
// namespace's ruleset is only read, to check that no rule of these tests reached it.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canUseNetns } from '../../helpers/netns.js';
import { GO_BRIDGE, OUR_BRIDGE, conf, haveGo, haveOurs, ipamFiles, ipamPath, worldsPerTest, type World } from './harness.js';
import { runIn, type RawEnv } from '../../helpers/run-plugin.js';

const haveNft = (() => {
  try {
    execFileSync('nft', ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
})();

/** container IDs carry the pid, so the root-namespace check can tell our rules from anyone's */
const TAG = `msc${process.pid}`;

const rootRuleset = (): string => {
  try {
    return execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return '';
  }
};

describe.skipIf(!canUseNetns || !haveOurs || !haveGo || !haveNft)('bridge macspoofchk: ours vs the Go reference', () => {
  const world = worldsPerTest('m');
  beforeAll(() => {
    expect(rootRuleset()).not.toContain(TAG);
  });
  afterAll(() => {
    expect(rootRuleset()).not.toContain(TAG);
  });

  const env = (w: World, cmd: string, o: { id?: string; pod?: number; netns?: string; args?: string } = {}): RawEnv => ({
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: `${TAG}-${o.id ?? 'c1'}`,
    CNI_NETNS: o.netns ?? w.pod(o.pod ?? 0).path,
    CNI_IFNAME: 'eth0',
    CNI_PATH: ipamPath('go'),
    ...(o.args !== undefined ? { CNI_ARGS: o.args } : {}),
  });

  /**
   * `nft -j list ruleset` of the host netns, without the metainfo, grouped by family (order within a
   * family kept) and without the tables' handles: nft lists and numbers tables in creation order, and
   * ours creates the ip/ip6 nat tables (ipMasq, started beside the kernel work) before the bridge table
   * where Go creates them after it.
   */
  const ruleset = (w: World): unknown[] => {
    const doc = JSON.parse(w.host.exec(['nft', '-j', 'list', 'ruleset']).stdout) as { nftables: Array<Record<string, unknown>> };
    const family = (o: Record<string, unknown>) => String((Object.values(o)[0] as { family?: string } | undefined)?.family ?? '');
    const unnumbered = (o: Record<string, unknown>) => {
      if (!('table' in o)) return o;
      const { handle: _handle, ...table } = o.table as Record<string, unknown>;
      return { table };
    };
    return doc.nftables
      .filter((o) => !('metainfo' in o))
      .sort((a, b) => family(a).localeCompare(family(b)))
      .map(unnumbered);
  };
  /** the ruleset with the veth names, the pod MACs and the test's tag normalized */
  const normalized = (w: World, macs: Record<string, string> = {}): unknown => {
    let s = JSON.stringify(ruleset(w)).replace(/veth[0-9a-f]{8}/g, 'vethXXXXXXXX').replaceAll(TAG, 'TAG');
    for (const [mac, name] of Object.entries(macs)) s = s.replaceAll(mac, name);
    return JSON.parse(s) as unknown;
  };
  const podMac = (w: World, pod = 0): string => {
    const [l] = JSON.parse(w.pod(pod).exec(['ip', '-j', 'link', 'show', 'eth0']).stdout) as Array<{ address: string }>;
    return l!.address;
  };
  /** `ruleset` of the bridge family only (ipMasq adds iptables-nft's ip/ip6 nat tables) */
  const bridgeRuleset = (w: World): unknown[] =>
    ruleset(w).filter((o) => Object.values(o as Record<string, { family?: string }>)[0]?.family === 'bridge');
  /** names of the CNI chains in table bridge nat, and the comments of PREROUTING's rules */
  const cniState = (w: World) => {
    const items = bridgeRuleset(w) as Array<{ chain?: { name: string }; rule?: { chain: string; comment?: string } }>;
    return {
      chains: items.flatMap((i) => (i.chain && i.chain.name !== 'PREROUTING' ? [i.chain.name.replaceAll(TAG, 'TAG')] : [])),
      prerouting: items.flatMap((i) => (i.rule?.chain === 'PREROUTING' ? [(i.rule.comment ?? '').replaceAll(TAG, 'TAG')] : [])),
    };
  };
  const EMPTY_NAT = [
    { table: { family: 'bridge', name: 'nat' } },
    { chain: { family: 'bridge', table: 'nat', name: 'PREROUTING', handle: 1, type: 'filter', hook: 'prerouting', prio: -300, policy: 'accept' } },
  ];
  const ping = (w: World, dst: string, pod = 0): boolean => w.pod(pod).exec(['ping', '-c', '1', '-W', '1', dst], { allowFail: true }).status === 0;

  const CASES: Array<[string, Record<string, unknown>, Record<string, unknown> | null, string | undefined]> = [
    ['L3 isGateway, random MAC', { isGateway: true, macspoofchk: true }, { subnet: '10.1.2.0/24' }, undefined],
    ['L3 isDefaultGateway + ipMasq, dual stack', { isDefaultGateway: true, ipMasq: true, macspoofchk: true }, { ranges: [[{ subnet: '10.7.0.0/24' }], [{ subnet: 'fd00:7::/64' }]] }, undefined],
    ['L2, MAC from CNI_ARGS in mixed case', { ipam: {}, macspoofchk: true }, null, 'MAC=0A:58:0a:01:02:4F'],
    ['0.3.1, MAC from args.cni', { cniVersion: '0.3.1', isGateway: true, macspoofchk: true, args: { cni: { mac: '02:00:00:00:00:42' } } }, { subnet: '10.1.2.0/24' }, undefined],
  ];

  it.each(CASES)('%s: the same ruleset as Go after ADD and after DEL', (_name, o, ipam, cniArgs) => {
    const go = world();
    const ours = world();
    const rGo = runIn(go.host, GO_BRIDGE, env(go, 'ADD', { args: cniArgs }), JSON.stringify(conf(go, o, ipam)));
    const rOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'ADD', { args: cniArgs }), JSON.stringify(conf(ours, o, ipam)));
    expect([rGo.code, rGo.stderr]).toEqual([0, '']);
    expect([rOurs.code, rOurs.stderr]).toEqual([0, '']);
    if (cniArgs !== undefined) expect(podMac(ours)).toBe('0a:58:0a:01:02:4f');
    // the MAC in the rule is the pod's eth0 (and the result's) MAC, in lower case
    const ourMac = podMac(ours);
    expect((rOurs.json?.interfaces as Array<{ mac: string }>)[2]!.mac).toBe(ourMac);
    expect(JSON.stringify(ruleset(ours))).toContain(`"right":"${ourMac}"`);
    expect(normalized(ours, { [ourMac]: 'PODMAC' })).toEqual(normalized(go, { [podMac(go)]: 'PODMAC' }));
    expect(cniState(ours)).toEqual({
      chains: ['cni-br-iface-TAG-c1-eth0', 'cni-br-iface-TAG-c1-eth0-mac'],
      prerouting: ['macspoofchk-TAG-c1-eth0'],
    });

    const dGo = runIn(go.host, GO_BRIDGE, env(go, 'DEL', { args: cniArgs }), JSON.stringify(conf(go, o, ipam)));
    const dOurs = runIn(ours.host, OUR_BRIDGE, env(ours, 'DEL', { args: cniArgs }), JSON.stringify(conf(ours, o, ipam)));
    expect([dGo.code, dOurs.code, dOurs.stdout, dOurs.stderr]).toEqual([0, 0, '', '']);
    expect(ruleset(ours)).toEqual(ruleset(go));
    expect(bridgeRuleset(ours)).toEqual(EMPTY_NAT); // the table and the base chain stay, as upstream
  });

  it.each([
    ['ours', OUR_BRIDGE],
    ['Go', GO_BRIDGE],
  ])('%s: a spoofed source MAC from the pod is dropped, the real one passes; without macspoofchk it passes', (_name, bin) => {
    for (const macspoofchk of [true, false]) {
      const w = world();
      const r = runIn(w.host, bin, env(w, 'ADD'), JSON.stringify(conf(w, { isGateway: true, macspoofchk }, { subnet: '10.1.2.0/24' })));
      expect(r.code).toBe(0);
      const real = podMac(w);
      expect(ping(w, '10.1.2.1')).toBe(true);
      w.pod().exec(['ip', 'link', 'set', 'eth0', 'address', '02:de:ad:be:ef:01']);
      w.pod().exec(['ip', 'neigh', 'flush', 'all']);
      expect(ping(w, '10.1.2.1')).toBe(!macspoofchk);
      w.pod().exec(['ip', 'link', 'set', 'eth0', 'address', real]);
      w.pod().exec(['ip', 'neigh', 'flush', 'all']);
      expect(ping(w, '10.1.2.1')).toBe(true);
    }
  });

  it('ours: the drop is per port: a second pod on the bridge is unaffected by the first one spoofing', () => {
    const w = world(2);
    const c = JSON.stringify(conf(w, { isGateway: true, macspoofchk: true }, { subnet: '10.1.2.0/24' }));
    expect(runIn(w.host, OUR_BRIDGE, env(w, 'ADD', { id: 'a', pod: 0 }), c).code).toBe(0);
    expect(runIn(w.host, OUR_BRIDGE, env(w, 'ADD', { id: 'b', pod: 1 }), c).code).toBe(0);
    expect(ping(w, '10.1.2.3', 0)).toBe(true);
    w.pod(0).exec(['ip', 'link', 'set', 'eth0', 'address', '02:de:ad:be:ef:02']);
    w.pod(0).exec(['ip', 'neigh', 'flush', 'all']);
    expect(ping(w, '10.1.2.3', 0)).toBe(false);
    expect(ping(w, '10.1.2.1', 1)).toBe(true);
  });

  it.each([
    ['Go ADD, our DEL', GO_BRIDGE, OUR_BRIDGE],
    ['our ADD, Go DEL', OUR_BRIDGE, GO_BRIDGE],
  ])('%s removes the rules', (_name, adder, deleter) => {
    const w = world();
    const c = JSON.stringify(conf(w, { isGateway: true, macspoofchk: true }, { subnet: '10.1.2.0/24' }));
    expect(runIn(w.host, adder, env(w, 'ADD'), c).code).toBe(0);
    expect(cniState(w).chains).toHaveLength(2);
    const d = runIn(w.host, deleter, env(w, 'DEL'), c);
    expect([d.code, d.stdout]).toEqual([0, '']);
    expect(ruleset(w)).toEqual(EMPTY_NAT);
    expect(ipamFiles(w)).toEqual([]);
  });

  it('Go and ours on one bridge: each DEL removes only its own container rules', () => {
    const w = world(3);
    const c = JSON.stringify(conf(w, { isGateway: true, macspoofchk: true }, { subnet: '10.1.2.0/24' }));
    expect(runIn(w.host, GO_BRIDGE, env(w, 'ADD', { id: 'go', pod: 0 }), c).code).toBe(0);
    expect(runIn(w.host, OUR_BRIDGE, env(w, 'ADD', { id: 'ts', pod: 1 }), c).code).toBe(0);
    expect(runIn(w.host, GO_BRIDGE, env(w, 'ADD', { id: 'go2', pod: 2 }), c).code).toBe(0);
    expect(cniState(w).prerouting).toEqual(['macspoofchk-TAG-go-eth0', 'macspoofchk-TAG-ts-eth0', 'macspoofchk-TAG-go2-eth0']);
    expect(runIn(w.host, OUR_BRIDGE, env(w, 'DEL', { id: 'go', pod: 0 }), c).code).toBe(0);
    expect(cniState(w)).toEqual({
      chains: ['cni-br-iface-TAG-ts-eth0', 'cni-br-iface-TAG-ts-eth0-mac', 'cni-br-iface-TAG-go2-eth0', 'cni-br-iface-TAG-go2-eth0-mac'],
      prerouting: ['macspoofchk-TAG-ts-eth0', 'macspoofchk-TAG-go2-eth0'],
    });
    // the remaining pods still reach the gateway; their rules are whole
    expect(ping(w, '10.1.2.1', 1)).toBe(true);
    expect(ping(w, '10.1.2.1', 2)).toBe(true);
    expect(runIn(w.host, GO_BRIDGE, env(w, 'DEL', { id: 'ts', pod: 1 }), c).code).toBe(0);
    expect(runIn(w.host, OUR_BRIDGE, env(w, 'DEL', { id: 'go2', pod: 2 }), c).code).toBe(0);
    expect(ruleset(w)).toEqual(EMPTY_NAT);
  });

  it('ours: DEL when the pod interface is already gone removes the rules; a repeated DEL is silent', () => {
    const w = world();
    const c = JSON.stringify(conf(w, { isGateway: true, macspoofchk: true }, { subnet: '10.1.2.0/24' }));
    expect(runIn(w.host, OUR_BRIDGE, env(w, 'ADD'), c).code).toBe(0);
    w.pod().exec(['ip', 'link', 'del', 'eth0']);
    expect(w.hostLinks()).toEqual(['br-t', 'lo']); // the host veth died with it
    for (let i = 0; i < 2; i++) {
      const d = runIn(w.host, OUR_BRIDGE, env(w, 'DEL'), c);
      expect([d.code, d.stdout, d.stderr]).toEqual([0, '', '']);
      expect(ruleset(w)).toEqual(EMPTY_NAT);
    }
    // and with no table at all
    w.host.exec(['nft', 'delete', 'table', 'bridge', 'nat']);
    const d = runIn(w.host, OUR_BRIDGE, env(w, 'DEL'), c);
    expect([d.code, d.stdout, d.stderr]).toEqual([0, '', '']);
  });

  // Divergence: upstream returns before its teardown when CNI_NETNS is empty or the netns is gone, and
  // leaves the rules behind; ours needs no netns to find them and removes them.
  it.each([
    ['CNI_NETNS empty', ''],
    ['the netns gone', 'gone'],
  ])('DEL with %s: ours removes the rules, Go leaves them', (_name, how) => {
    for (const bin of [OUR_BRIDGE, GO_BRIDGE]) {
      const w = world();
      const c = JSON.stringify(conf(w, { isGateway: true, macspoofchk: true }, { subnet: '10.1.2.0/24' }));
      expect(runIn(w.host, bin, env(w, 'ADD'), c).code).toBe(0);
      let netns = '';
      if (how === 'gone') {
        netns = w.pod().path;
        w.pod().delete();
      }
      const d = runIn(w.host, bin, env(w, 'DEL', { netns }), c);
      expect([d.code, d.stdout]).toEqual([0, '']);
      expect(ipamFiles(w)).toEqual([]);
      if (bin === OUR_BRIDGE) expect(ruleset(w)).toEqual(EMPTY_NAT);
      else expect(cniState(w).chains).toHaveLength(2);
    }
  });

  it('a failed ADD (route via an unreachable gateway) removes its rules and releases the IP, as Go', () => {
    const results: Array<{ code: number; nat: unknown; ipam: string[] }> = [];
    for (const bin of [GO_BRIDGE, OUR_BRIDGE]) {
      const w = world();
      const c = JSON.stringify(conf(w, { isGateway: true, macspoofchk: true }, { subnet: '10.1.2.0/24', routes: [{ dst: '10.9.0.0/16', gw: '192.168.99.1' }] }));
      const r = runIn(w.host, bin, env(w, 'ADD'), c);
      expect(r.json?.msg).toMatch(/^failed to add route .* via 192\.168\.99\.1 dev eth0': /);
      results.push({ code: r.code, nat: ruleset(w), ipam: ipamFiles(w) });
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[1]).toEqual({ code: 1, nat: EMPTY_NAT, ipam: [] });
  });

  it('CHECK does not look at the rules (as Go): it passes with them removed', () => {
    for (const bin of [OUR_BRIDGE, GO_BRIDGE]) {
      const w = world();
      const c = conf(w, { isGateway: true, macspoofchk: true }, { subnet: '10.1.2.0/24' });
      const r = runIn(w.host, bin, env(w, 'ADD'), JSON.stringify(c));
      expect(r.code).toBe(0);
      w.host.exec(['nft', 'delete', 'table', 'bridge', 'nat']);
      const k = runIn(w.host, bin, env(w, 'CHECK'), JSON.stringify({ ...c, prevResult: r.json }));
      expect([k.code, k.stdout]).toEqual([0, '']);
    }
  });
});
