// startTraffic (main.go's traffic sequence), the nftables manager on FakeNft, the blackhole route loop,
// and the kernel-side verbs the traffic manager added to shared/kernel/iptables.ts (argv and stdin).
import { describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../../shared/log.js';
import { ensureBlackholeRoutes, runBlackholeRoutes } from '../../../../daemon/traffic/blackhole.js';
import { forwardRules, ipTablesBootstrap, masqRules } from '../../../../daemon/traffic/iptables-manager.js';
import { NFTablesManager, masqCommands } from '../../../../daemon/traffic/nftables-manager.js';
import { startTraffic } from '../../../../daemon/traffic/start.js';
import type { TrafficOptions } from '../../../../daemon/traffic/traffic-manager.js';
import { KernelError } from '../../../../shared/kernel/errors.js';
import { FakeIptables } from '../../../../shared/kernel/fake/fake-iptables.js';
import { FakeKernel } from '../../../../shared/kernel/fake/fake-kernel.js';
import { FakeNft } from '../../../../shared/kernel/fake/fake-nft.js';
import { createIptables } from '../../../../shared/kernel/iproute2/iptables.js';
import { createKernel } from '../../../../shared/kernel/iproute2/kernel.js';
import { parseNet } from '../../../../shared/net/ip.js';
import { manualClock } from './helpers.js';

const NET = parseNet('10.244.0.0/16');
const POD = parseNet('10.244.1.0/24');
const NET6 = parseNet('2001:cafe:42::/56');
const POD6 = parseNet('2001:cafe:42:1::/64');

function world() {
  const k = { iptables: { 4: new FakeIptables(4), 6: new FakeIptables(6) }, nft: new FakeNft(), routes: new FakeKernel() };
  return { k, log: memoryLogger(), clock: manualClock(), ac: new AbortController() };
}

const opts = (o: Partial<TrafficOptions> = {}): TrafficOptions => ({
  enableNFTables: false,
  ipMasq: true,
  ipMasqFullyRandomDisable: false,
  iptablesForwardRules: true,
  ipBlackholeRoute: false,
  iptablesResync: 5,
  network: NET,
  subnet: POD,
  previous: {},
  ...o,
});

/** The nft ruleset of a FakeNft table as `nft list` would show the interesting bits. */
async function nftRules(nft: FakeNft, family: 'ip' | 'ip6', table: string, chain: string): Promise<string[]> {
  const t = await nft.listTable(family, table);
  return (t?.rules ?? []).filter((r) => r.chain === chain).map((r) => JSON.stringify(r.expr));
}

describe('startTraffic (main.go order)', () => {
  it('iptables mode: nftables leftovers removed, masq + forward rules, FLANNEL chains, loops until abort', async () => {
    const { k, log, clock, ac } = world();
    await k.nft.apply([{ add: { table: { family: 'ip', name: 'flannel-ipv4' } } }, { add: { table: { family: 'ip6', name: 'flannel-ipv6' } } }]);
    const t = await startTraffic(ac.signal, opts(), k, log, clock.sleep);
    expect(k.nft.tables.size).toBe(0);
    expect(await k.iptables[4].chainExists('nat', 'FLANNEL-POSTRTG')).toBe(true);
    expect(await k.iptables[4].chainExists('filter', 'FLANNEL-FWD')).toBe(true);
    expect(log.lines.slice(0, 3)).toEqual(['I Starting flannel in iptables mode...', 'I Setting up masking rules', 'I bootstrap done']);
    await clock.settle(2);
    ac.abort();
    await t.done;
  });

  it('no --ip-masq: no nat rules; --iptables-forward-rules=false: no filter rules', async () => {
    const { k, log, clock, ac } = world();
    const t = await startTraffic(ac.signal, opts({ ipMasq: false, iptablesForwardRules: false }), k, log, clock.sleep);
    expect(k.iptables[4].restores).toEqual([]);
    expect(await k.iptables[4].chainExists('nat', 'FLANNEL-POSTRTG')).toBe(false);
    ac.abort();
    await t.done;
    const w = world();
    const t2 = await startTraffic(w.ac.signal, opts({ ipMasq: false }), w.k, w.log, w.clock.sleep);
    expect(await w.k.iptables[4].chainExists('nat', 'FLANNEL-POSTRTG')).toBe(false);
    expect(await w.k.iptables[4].chainExists('filter', 'FLANNEL-FWD')).toBe(true);
    w.ac.abort();
    await t2.done;
  });

  it('a failed recycle is fatal with Go\'s words; a failed bootstrap is not', async () => {
    const { k, log, clock, ac } = world();
    const OLD = parseNet('10.244.9.0/24');
    await ipTablesBootstrap(k.iptables[4], masqRules(NET, OLD, true));
    k.iptables[4].failNextRestore('iptables-restore: line 2 failed');
    await expect(startTraffic(ac.signal, opts({ previous: { network: NET, subnet: OLD } }), k, log, clock.sleep)).rejects.toThrow(
      /^Failed to setup masq rules, unable to teardown iptables: /,
    );
    ac.abort();
    const w = world();
    w.k.iptables[4].failNextRestore();
    const t = await startTraffic(w.ac.signal, opts(), w.k, w.log, w.clock.sleep);
    expect(w.log.lines).toContainEqual(expect.stringMatching(/^E Failed to bootstrap IPTables: /));
    w.ac.abort();
    await t.done;
  });

  it('--iptables-resync below 1 is taken as 1 s (Go would spin)', async () => {
    const { k, log, clock, ac } = world();
    const t = await startTraffic(ac.signal, opts({ iptablesResync: 0, ipBlackholeRoute: true }), k, log, clock.sleep);
    await clock.settle(3);
    expect(clock.pending()).toEqual([1000, 1000, 1000]);
    expect(log.lines).toContain('W --iptables-resync=0 is below 1 second: resyncing every 1 s');
    ac.abort();
    await t.done;
  });

  it('nftables mode: FLANNEL iptables chains of a previous run removed; the two tables with Go\'s rules', async () => {
    const { k, log, clock, ac } = world();
    await ipTablesBootstrap(k.iptables[4], masqRules(NET, POD, true));
    await ipTablesBootstrap(k.iptables[4], forwardRules(NET));
    const t = await startTraffic(ac.signal, opts({ enableNFTables: true, ipv6Network: NET6, ipv6Subnet: POD6 }), k, log, clock.sleep);
    await t.done; // no resync loops in nftables mode
    expect(await k.iptables[4].chainExists('nat', 'FLANNEL-POSTRTG')).toBe(false);
    expect(k.iptables[4].save('nat', 'POSTROUTING')).toEqual(['-P POSTROUTING ACCEPT']);
    expect(await k.iptables[4].chainExists('filter', 'FLANNEL-FWD')).toBe(false);
    expect([...k.nft.tables.keys()]).toEqual(['ip flannel-ipv4', 'ip6 flannel-ipv6']);
    const v4 = await k.nft.listTable('ip', 'flannel-ipv4');
    expect(v4!.chains.map((c) => [c.name, c.type, c.hook, c.prio, c.policy])).toEqual([
      ['postrtg', 'nat', 'postrouting', 100, 'accept'],
      ['forward', 'filter', 'forward', 0, 'accept'],
    ]);
    const pfx = (a: string, len: number) => ({ prefix: { addr: a, len } });
    const m = (op: string, field: string, right: unknown, proto = 'ip') => ({ match: { op, left: { payload: { protocol: proto, field } }, right } });
    expect(await nftRules(k.nft, 'ip', 'flannel-ipv4', 'postrtg')).toEqual(
      [
        [{ match: { op: '==', left: { meta: { key: 'mark' } }, right: 0x4000 } }, { return: null }],
        [m('==', 'saddr', pfx('10.244.1.0', 24)), m('==', 'daddr', pfx('10.244.0.0', 16)), { return: null }],
        [m('==', 'saddr', pfx('10.244.0.0', 16)), m('==', 'daddr', pfx('10.244.1.0', 24)), { return: null }],
        [m('!=', 'saddr', pfx('10.244.1.0', 24)), m('==', 'daddr', pfx('10.244.0.0', 16)), { return: null }],
        [m('==', 'saddr', pfx('10.244.0.0', 16)), m('!=', 'daddr', pfx('224.0.0.0', 4)), { masquerade: { flags: 'fully-random' } }],
        [m('!=', 'saddr', pfx('10.244.0.0', 16)), m('==', 'daddr', pfx('10.244.0.0', 16)), { masquerade: { flags: 'fully-random' } }],
      ].map((e) => JSON.stringify(e)),
    );
    expect(await nftRules(k.nft, 'ip', 'flannel-ipv4', 'forward')).toEqual(
      [[m('==', 'saddr', pfx('10.244.0.0', 16)), { accept: null }], [m('==', 'daddr', pfx('10.244.0.0', 16)), { accept: null }]].map((e) => JSON.stringify(e)),
    );
    const v6 = await nftRules(k.nft, 'ip6', 'flannel-ipv6', 'postrtg');
    expect(v6[4]).toBe(JSON.stringify([m('==', 'saddr', pfx('2001:cafe:42::', 56), 'ip6'), m('!=', 'daddr', pfx('ff00::', 8), 'ip6'), { masquerade: { flags: 'fully-random' } }]));
    expect(log.lines).toContain('I Starting flannel in nftables mode...');
    expect(log.lines).toContain('I nftables: setting up masking rules (ipv4)');
    expect(log.lines).toContain('I nftables: setting up masking rules (ipv6)');
  });

  it('nftables mode: a second start refills the chains instead of adding duplicates; --ip-masq-fully-random-disable', async () => {
    const { k, log, clock, ac } = world();
    await (await startTraffic(ac.signal, opts({ enableNFTables: true }), k, log, clock.sleep)).done;
    await (await startTraffic(ac.signal, opts({ enableNFTables: true, ipMasqFullyRandomDisable: true }), k, log, clock.sleep)).done;
    const rules = await nftRules(k.nft, 'ip', 'flannel-ipv4', 'postrtg');
    expect(rules).toHaveLength(6);
    expect(rules.filter((r) => r.includes('"masquerade":null'))).toHaveLength(2);
    expect(await nftRules(k.nft, 'ip', 'flannel-ipv4', 'forward')).toHaveLength(2);
  });

  it('nftables mode: no fully-random in this kernel → masquerade without it; nft unusable → fatal init', async () => {
    const { k, log, clock, ac } = world();
    const nft = new NFTablesManager({ nft: k.nft, log });
    await nft.init();
    k.nft.failNext('Operation not supported');
    await nft.setupAndEnsureMasqRules(ac.signal, { network: NET, subnet: POD, resyncSeconds: 5, randomFullyDisable: false });
    expect(log.lines).toContainEqual(expect.stringMatching(/^W nftables: random fully unsupported/));
    expect((await nftRules(k.nft, 'ip', 'flannel-ipv4', 'postrtg')).filter((r) => r.includes('"masquerade":null'))).toHaveLength(2);
    const w = world();
    w.k.nft.failNext('Operation not permitted');
    await expect(startTraffic(w.ac.signal, opts({ enableNFTables: true }), w.k, w.log, w.clock.sleep)).rejects.toThrow(
      /^Failed to initialize the traffic manager: nftables: couldn't initialise table flannel-ipv4: /,
    );
    expect(masqCommands(4, NET, POD, false)).toHaveLength(8);
    ac.abort();
  });
});

describe('blackhole route (--ip-blackhole-route)', () => {
  const rootNs = (k: FakeKernel) => k.world.namespaces.get('/')!;
  const blackholes = (k: FakeKernel) => rootNs(k).routes.filter((r) => r.type === 'blackhole').map((r) => r.dst);
  const added = (lines: string[]) => lines.filter((l) => l.startsWith('I Added blackhole route for '));

  it('added at start for each subnet, again when it disappears; present → nothing', async () => {
    const { k, log, clock, ac } = world();
    const t = await startTraffic(ac.signal, opts({ ipMasq: false, iptablesForwardRules: false, ipBlackholeRoute: true, ipv6Network: NET6, ipv6Subnet: POD6 }), k, log, clock.sleep);
    await clock.settle(1); // the first pass runs in the background (Go: a goroutine)
    expect(blackholes(k.routes)).toEqual(['10.244.1.0/24', '2001:cafe:42:1::/64']);
    expect(log.lines).toContain('I Added blackhole route for 10.244.1.0/24');
    await clock.tick();
    expect(added(log.lines)).toHaveLength(2);
    rootNs(k.routes).routes = rootNs(k.routes).routes.filter((r) => r.dst !== '10.244.1.0/24');
    await clock.tick();
    expect(blackholes(k.routes)).toEqual(['2001:cafe:42:1::/64', '10.244.1.0/24']);
    expect(added(log.lines)).toHaveLength(3);
    expect(clock.pending()).toEqual([5000]);
    ac.abort();
    await t.done;
  });

  it('a failure (another route holds the prefix) is logged once, not every period, and never ends the loop', async () => {
    const kernel = new FakeKernel();
    const connected = { family: 4 as const, dst: '10.244.1.0/24', dev: 'cni0', proto: 'kernel', scope: 'link' as const };
    rootNs(kernel).routes.push(connected);
    const log = memoryLogger();
    const clock = manualClock();
    const ac = new AbortController();
    const loop = runBlackholeRoutes(ac.signal, kernel, [POD], 5000, log, clock.sleep);
    await clock.settle(1);
    await clock.tick();
    await clock.tick();
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).toMatch(/^E Failed to ensure the blackhole route for 10\.244\.1\.0\/24: .*File exists$/);
    expect(rootNs(kernel).routes).toEqual([connected]);
    rootNs(kernel).routes = [];
    await clock.tick();
    expect(blackholes(kernel)).toEqual(['10.244.1.0/24']);
    ac.abort();
    await loop;
  });

  it('a /32 listed by ip without its prefix length counts as present', async () => {
    const kernel = new FakeKernel();
    rootNs(kernel).routes.push({ family: 4, dst: '10.9.9.9', type: 'blackhole' });
    const log = memoryLogger();
    await ensureBlackholeRoutes(kernel, [parseNet('10.9.9.9/32')], log);
    expect(blackholes(kernel)).toEqual(['10.9.9.9']);
    expect(log.lines).toEqual([]);
  });
});

describe('shared/kernel/iptables.ts verbs for the traffic manager (argv and stdin)', () => {
  function recorder(out: (argv: readonly string[]) => string | Error = () => '') {
    const calls: Array<{ argv: readonly string[]; input?: string }> = [];
    const exec = async (argv: readonly string[], input?: string) => {
      calls.push(input === undefined ? { argv } : { argv, input });
      const r = out(argv);
      if (r instanceof Error) throw r;
      return r;
    };
    return { calls, exec };
  }
  const bin = (argv: readonly string[]) => argv.map((a) => a.replace(/^\/.*\//, ''));

  it('restore: one iptables-restore --noflush --wait in the netns, the payload on stdin; none for no lines', async () => {
    const r = recorder();
    const ipt = createIptables(6, { netns: '/run/netns/x', exec: r.exec });
    await ipt.restore('nat', []);
    await ipt.restore('nat', [{ action: '-A', chain: 'FLANNEL-POSTRTG', rule: ['-m', 'comment', '--comment', 'flanneld masq', '-j', 'RETURN'] }]);
    expect(r.calls).toHaveLength(1);
    expect(bin(r.calls[0]!.argv)).toEqual(['nsenter', '--net=/run/netns/x', 'ip6tables-restore', '--noflush', '--wait']);
    expect(r.calls[0]!.input).toBe('*nat\n-A FLANNEL-POSTRTG -m comment --comment "flanneld masq" -j RETURN\nCOMMIT\n');
  });

  it('chainExists reads -S of the table; clearChain is -N, then -F when it exists; hasRandomFully reads --version once', async () => {
    const r = recorder((argv) => {
      if (argv.includes('-S')) return '-P POSTROUTING ACCEPT\n-N FLANNEL-POSTRTG\n-A FLANNEL-POSTRTG -j RETURN\n';
      if (argv.includes('-N')) return new KernelError('exists', { argv, exitCode: 1, stderr: 'iptables: Chain already exists.' });
      if (argv.includes('--version')) return 'iptables v1.8.9 (nf_tables)\n';
      return '';
    });
    const ipt = createIptables(4, { exec: r.exec });
    expect(await ipt.chainExists('nat', 'FLANNEL-POSTRTG')).toBe(true);
    expect(await ipt.chainExists('nat', 'POSTROUTING')).toBe(true);
    expect(await ipt.chainExists('nat', 'FLANNEL')).toBe(false);
    await ipt.clearChain('nat', 'FLANNEL-POSTRTG');
    expect(await ipt.hasRandomFully()).toBe(true);
    expect(await ipt.hasRandomFully()).toBe(true);
    expect(r.calls.map((c) => bin(c.argv).join(' '))).toEqual([
      'iptables -t nat -S --wait',
      'iptables -t nat -S --wait',
      'iptables -t nat -S --wait',
      'iptables -t nat -N FLANNEL-POSTRTG --wait',
      'iptables -t nat -F FLANNEL-POSTRTG --wait',
      'iptables --version',
    ]);
  });

  it('blackhole routes through the iproute2 adapter: ip route show type blackhole per family; one ip -batch with route add blackhole', async () => {
    const r = recorder((argv) => (argv.includes('show') ? '[{"type":"blackhole","dst":"2001:db8:1::/64","dev":"lo","metric":1024,"flags":[]}]\n' : ''));
    const k = createKernel({ netns: '/run/netns/y', exec: r.exec });
    expect((await k.listRoutes({ family: 6, type: 'blackhole' })).map((x) => x.dst)).toEqual(['2001:db8:1::/64']);
    await k.batch([{ op: 'addRoute', route: { dst: '10.244.1.0/24', type: 'blackhole' } }]);
    expect(r.calls.map((c) => [bin(c.argv).join(' '), c.input])).toEqual([
      ['nsenter --net=/run/netns/y ip -json -6 route show type blackhole', undefined],
      ['nsenter --net=/run/netns/y ip -batch -', 'route add blackhole 10.244.1.0/24\n'],
    ]);
  });
});
