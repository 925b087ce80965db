// The iptables traffic manager (Go's pkg/trafficmngr/iptables) on FakeIptables: exact rule text and order, the
// iptables-restore bootstrap (-D then -A), the resync loop, recycling the previous run's rules, IPv6.
import { describe, expect, it } from 'vitest';
import { memoryLogger } from '../../../../shared/log.js';
import {
  IPTablesManager,
  ensureIPTables,
  forwardRules,
  ipTablesBootstrap,
  masqRules,
  teardownIPTables,
} from '../../../../daemon/traffic/iptables-manager.js';
import type { MasqParams } from '../../../../daemon/traffic/traffic-manager.js';
import { FakeIptables } from '../../../../shared/kernel/fake/fake-iptables.js';
import { restoreScript, versionHasRandomFully } from '../../../../shared/kernel/iptables.js';
import { parseNet } from '../../../../shared/net/ip.js';
import { manualClock } from './helpers.js';

const NET = parseNet('10.244.0.0/16');
const POD = parseNet('10.244.1.0/24');
const NET6 = parseNet('2001:cafe:42::/56');
const POD6 = parseNet('2001:cafe:42:1::/64');

/** Go's masqRules, as `iptables -t nat -S FLANNEL-POSTRTG` prints it */
const GOLDEN_POSTRTG = [
  '-N FLANNEL-POSTRTG',
  '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
  '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
  '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
];
const GOLDEN_POSTROUTING = ['-P POSTROUTING ACCEPT', '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG'];
const GOLDEN_FWD = [
  '-N FLANNEL-FWD',
  '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
  '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
];
const GOLDEN_FORWARD = ['-P FORWARD ACCEPT', '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD'];

function world() {
  const ipt4 = new FakeIptables(4);
  const ipt6 = new FakeIptables(6);
  const log = memoryLogger();
  const clock = manualClock();
  const ac = new AbortController();
  const tm = new IPTablesManager({ iptables: { 4: ipt4, 6: ipt6 }, log, sleep: clock.sleep });
  return { ipt4, ipt6, log, clock, ac, tm };
}

const masq = (o: Partial<MasqParams> = {}): MasqParams => ({ network: NET, subnet: POD, resyncSeconds: 5, randomFullyDisable: false, ...o });

describe('rule sets (Go masqRules / forwardRules)', () => {
  it('v4 masq rules, in order, with and without --random-fully', async () => {
    const ipt = new FakeIptables();
    await ipTablesBootstrap(ipt, masqRules(NET, POD, true));
    expect(ipt.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG);
    expect(ipt.save('nat', 'POSTROUTING')).toEqual(GOLDEN_POSTROUTING);
    const plain = masqRules(NET, POD, false).map((r) => r.rulespec.join(' '));
    expect(plain[5]).toBe('-s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment flanneld masq -j MASQUERADE');
    expect(plain[6]).toBe('! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment flanneld masq -j MASQUERADE');
  });

  it('v6 masq rules use ff00::/8; forward rules accept from and to the Network', async () => {
    const r6 = masqRules(NET6, POD6, true).map((r) => `-A ${r.chain} ${r.rulespec.join(' ')}`);
    expect(r6).toEqual([
      '-A POSTROUTING -m comment --comment flanneld masq -j FLANNEL-POSTRTG',
      '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment flanneld masq -j RETURN',
      '-A FLANNEL-POSTRTG -s 2001:cafe:42:1::/64 -d 2001:cafe:42::/56 -m comment --comment flanneld masq -j RETURN',
      '-A FLANNEL-POSTRTG -s 2001:cafe:42::/56 -d 2001:cafe:42:1::/64 -m comment --comment flanneld masq -j RETURN',
      '-A FLANNEL-POSTRTG ! -s 2001:cafe:42::/56 -d 2001:cafe:42:1::/64 -m comment --comment flanneld masq -j RETURN',
      '-A FLANNEL-POSTRTG -s 2001:cafe:42::/56 ! -d ff00::/8 -m comment --comment flanneld masq -j MASQUERADE --random-fully',
      '-A FLANNEL-POSTRTG ! -s 2001:cafe:42::/56 -d 2001:cafe:42::/56 -m comment --comment flanneld masq -j MASQUERADE --random-fully',
    ]);
    const ipt = new FakeIptables();
    await ipTablesBootstrap(ipt, forwardRules(NET));
    expect(ipt.save('filter', 'FLANNEL-FWD')).toEqual(GOLDEN_FWD);
    expect(ipt.save('filter', 'FORWARD')).toEqual(GOLDEN_FORWARD);
  });

  it('the iptables-restore payload: *table, lines, COMMIT; the comment always double-quoted (Go test)', () => {
    expect(restoreScript('filter', [{ action: '-A', chain: 'INPUT', rule: ['-s', '127.0.0.1', '-m', 'comment', '--comment', 'flanneld masq', '-j', 'MASQUERADE', '--random-fully'] }])).toBe(
      '*filter\n-A INPUT -s 127.0.0.1 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully\nCOMMIT\n',
    );
    expect(restoreScript('nat', [{ action: '-D', chain: 'X', rule: ['-m', 'comment', '--comment', 'one', '-j', 'RETURN'] }])).toBe('*nat\n-D X -m comment --comment "one" -j RETURN\nCOMMIT\n');
  });

  it('--random-fully needs iptables ≥ 1.6.2 (go-iptables)', () => {
    expect(versionHasRandomFully('iptables v1.8.9 (nf_tables)\n')).toBe(true);
    expect(versionHasRandomFully('iptables v1.6.2')).toBe(true);
    expect(versionHasRandomFully('iptables v1.6.1')).toBe(false);
    expect(versionHasRandomFully('iptables v1.4.21')).toBe(false);
    expect(versionHasRandomFully('garbage')).toBe(false);
  });
});

describe('bootstrap, teardown, ensure (iptables_test.go)', () => {
  it('on an empty table: the chain is created and only -A lines go out, in order', async () => {
    const ipt = new FakeIptables();
    await ipTablesBootstrap(ipt, forwardRules(NET));
    expect(ipt.restores).toEqual([
      '*filter\n' +
        '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n' +
        '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT\n' +
        '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT\n' +
        'COMMIT\n',
    ]);
  });

  it('on an existing table: -D then -A per existing rule, so ours end up together, in order, at the end', async () => {
    const ipt = new FakeIptables();
    const rules = forwardRules(NET);
    await ipTablesBootstrap(ipt, rules);
    // someone appends a rule after our jump and drops one of ours
    await ipt.ensureRule('filter', 'FORWARD', ['-j', 'DOCKER-USER']);
    await ipt.deleteRule('filter', 'FLANNEL-FWD', rules[1]!.rulespec);
    await ipTablesBootstrap(ipt, rules);
    expect(ipt.restores[1]).toBe(
      '*filter\n' +
        '-D FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n' +
        '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n' +
        '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT\n' +
        '-D FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT\n' +
        '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT\n' +
        'COMMIT\n',
    );
    expect(ipt.save('filter', 'FORWARD')).toEqual(['-P FORWARD ACCEPT', '-A FORWARD -j DOCKER-USER', GOLDEN_FORWARD[1]]);
    expect(ipt.save('filter', 'FLANNEL-FWD')).toEqual(GOLDEN_FWD);
  });

  it('teardown deletes only the rules that exist; nothing there → no restore at all', async () => {
    const ipt = new FakeIptables();
    await teardownIPTables(ipt, masqRules(NET, POD, true));
    expect(ipt.restores).toEqual([]);
    await ipTablesBootstrap(ipt, masqRules(NET, POD, true));
    await ipt.deleteRule('nat', 'FLANNEL-POSTRTG', masqRules(NET, POD, true)[3]!.rulespec);
    await teardownIPTables(ipt, masqRules(NET, POD, true));
    expect(ipt.restores[1]!.split('\n').filter((l) => l.startsWith('-'))).toHaveLength(6);
    expect(ipt.restores[1]!.split('\n').every((l) => !l.startsWith('-A'))).toBe(true);
    expect(ipt.save('nat', 'FLANNEL-POSTRTG')).toEqual(['-N FLANNEL-POSTRTG']);
    expect(ipt.save('nat', 'POSTROUTING')).toEqual(['-P POSTROUTING ACCEPT']);
  });

  it('ensure does nothing when every rule exists, re-bootstraps the whole set when one is missing', async () => {
    const ipt = new FakeIptables();
    const log = memoryLogger();
    const rules = masqRules(NET, POD, true);
    await ipTablesBootstrap(ipt, rules);
    await ensureIPTables(ipt, rules, log);
    expect(ipt.restores).toHaveLength(1);
    expect(log.lines).toEqual([]);
    await ipt.deleteRule('nat', 'POSTROUTING', rules[0]!.rulespec);
    await ensureIPTables(ipt, rules, log);
    expect(log.lines).toEqual(['I Some iptables rules are missing; deleting and recreating rules', 'I bootstrap done']);
    expect(ipt.restores).toHaveLength(2);
    expect(ipt.restores[1]!.match(/^-D /gm)).toHaveLength(6); // every other rule was there
    expect(ipt.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG);
    expect(ipt.save('nat', 'POSTROUTING')).toEqual(GOLDEN_POSTROUTING);
  });

  it('ensure recreates a deleted chain', async () => {
    const ipt = new FakeIptables();
    const rules = masqRules(NET, POD, true);
    await ipTablesBootstrap(ipt, rules);
    await ipt.deleteRule('nat', 'POSTROUTING', rules[0]!.rulespec);
    await ipt.deleteChain('nat', 'FLANNEL-POSTRTG');
    await ensureIPTables(ipt, rules, memoryLogger());
    expect(ipt.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG);
    expect(ipt.save('nat', 'POSTROUTING')).toEqual(GOLDEN_POSTROUTING);
  });
});

describe('IPTablesManager', () => {
  it('masq and forward rules, v4: golden text, one resync loop each at --iptables-resync', async () => {
    const { ipt4, ipt6, tm, clock, ac, log } = world();
    await tm.init();
    await tm.setupAndEnsureMasqRules(ac.signal, masq());
    await tm.setupAndEnsureForwardRules(ac.signal, { network: NET, resyncSeconds: 5 });
    expect(ipt4.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG);
    expect(ipt4.save('nat', 'POSTROUTING')).toEqual(GOLDEN_POSTROUTING);
    expect(ipt4.save('filter', 'FLANNEL-FWD')).toEqual(GOLDEN_FWD);
    expect(ipt4.save('filter', 'FORWARD')).toEqual(GOLDEN_FORWARD);
    expect(ipt6.tables.size).toBe(0);
    expect(log.lines).toEqual([
      'I Starting flannel in iptables mode...',
      'I Setting up masking rules',
      'I bootstrap done',
      'I Changing default FORWARD chain policy to ACCEPT',
      'I bootstrap done',
    ]);
    await clock.settle(2);
    expect(clock.pending()).toEqual([5000, 5000]);
    ac.abort();
    await tm.done();
  });

  it('--ip-masq-fully-random-disable, or an iptables without it: plain MASQUERADE', async () => {
    const setups = [
      () => masq({ randomFullyDisable: true }),
      (w: ReturnType<typeof world>) => {
        w.ipt4.randomFully = false; // iptables < 1.6.2
        return masq();
      },
    ];
    for (const setup of setups) {
      const w = world();
      await w.tm.setupAndEnsureMasqRules(w.ac.signal, setup(w));
      expect(w.ipt4.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG.map((l) => l.replace(' --random-fully', '')));
      w.ac.abort();
      await w.tm.done();
    }
  });

  it('resync: a deleted rule comes back at the next period, with Go\'s log line; nothing happens while all is there', async () => {
    const { ipt4, tm, clock, ac, log } = world();
    await tm.setupAndEnsureMasqRules(ac.signal, masq());
    await clock.settle(1);
    await clock.tick();
    expect(ipt4.restores).toHaveLength(1);
    const rule = masqRules(NET, POD, true)[5]!;
    await ipt4.deleteRule('nat', 'FLANNEL-POSTRTG', rule.rulespec);
    await clock.tick();
    expect(ipt4.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG);
    expect(log.lines.filter((l) => l.includes('Some iptables rules are missing; deleting and recreating rules'))).toHaveLength(1);
    ac.abort();
    await tm.done();
  });

  it('a failed resync is logged and retried; the loop keeps going', async () => {
    const { ipt4, tm, clock, ac, log } = world();
    await tm.setupAndEnsureForwardRules(ac.signal, { network: NET, resyncSeconds: 1 });
    await clock.settle(1);
    await ipt4.flushChain('filter', 'FLANNEL-FWD');
    ipt4.failNextRestore('iptables-restore: line 3 failed');
    await clock.tick();
    expect(log.lines.at(-1)).toMatch(/^E Failed to ensure iptables rules: error setting up rules: failed to apply partial iptables-restore: .*line 3 failed/);
    expect(ipt4.save('filter', 'FLANNEL-FWD')).toEqual(['-N FLANNEL-FWD']); // all or nothing
    await clock.tick();
    expect(ipt4.save('filter', 'FLANNEL-FWD')).toEqual(GOLDEN_FWD);
    expect(clock.pending()).toEqual([1000]);
    ac.abort();
    await tm.done();
  });

  it('a failed initial bootstrap is only logged (Go); the resync loop puts the rules in', async () => {
    const { ipt4, tm, clock, ac, log } = world();
    ipt4.failNextRestore('iptables-restore: permission denied');
    await tm.setupAndEnsureMasqRules(ac.signal, masq());
    expect(log.lines).toContainEqual(expect.stringMatching(/^E Failed to bootstrap IPTables: failed to apply partial iptables-restore: /));
    expect(ipt4.save('nat', 'FLANNEL-POSTRTG')).toEqual(['-N FLANNEL-POSTRTG']);
    await clock.settle(1);
    await clock.tick();
    expect(ipt4.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG);
    ac.abort();
    await tm.done();
  });

  it('an existing FLANNEL-POSTRTG is flushed first (CreateIP4Chain): stale rules of ours go', async () => {
    const { ipt4, tm, ac } = world();
    await ipt4.ensureChain('nat', 'FLANNEL-POSTRTG');
    await ipt4.ensureRule('nat', 'FLANNEL-POSTRTG', ['-s', '10.99.0.0/16', '-j', 'MASQUERADE']);
    await tm.setupAndEnsureMasqRules(ac.signal, masq());
    expect(ipt4.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG);
    ac.abort();
    await tm.done();
  });

  it('recycle: the previous network/subnet\'s rules are deleted when either changed, kept apart from that', async () => {
    const { ipt4, tm, ac, log } = world();
    const OLD_NET = parseNet('10.55.0.0/16');
    const OLD_POD = parseNet('10.55.7.0/24');
    // the previous run's rules, plus a foreign rule that must survive, in POSTROUTING
    await ipTablesBootstrap(ipt4, masqRules(OLD_NET, OLD_POD, true));
    await ipt4.ensureRule('nat', 'POSTROUTING', ['-j', 'KUBE-POSTROUTING']);
    await tm.setupAndEnsureMasqRules(ac.signal, masq({ prevNetwork: OLD_NET, prevSubnet: OLD_POD }));
    expect(log.lines).toContain(
      'I Current network or subnet (10.244.0.0/16, 10.244.1.0/24) is not equal to previous one (10.55.0.0/16, 10.55.7.0/24), trying to recycle old iptables rules',
    );
    expect(ipt4.restores[1]).toMatch(/^\*nat\n(-D [^\n]+\n){7}COMMIT\n$/);
    expect(ipt4.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG);
    expect(ipt4.save('nat', 'POSTROUTING')).toEqual(['-P POSTROUTING ACCEPT', '-A POSTROUTING -j KUBE-POSTROUTING', GOLDEN_POSTROUTING[1]]);
    ac.abort();
    await tm.done();
  });

  it('recycle: only the subnet changed → recycled; same network and subnet, or no previous subnet.env → not', async () => {
    for (const [prev, recycled] of [
      [{ prevNetwork: NET, prevSubnet: parseNet('10.244.9.0/24') }, true],
      [{ prevNetwork: NET, prevSubnet: POD }, false],
      [{}, false],
      [{ prevNetwork: parseNet('10.0.0.0/8') }, false], // no FLANNEL_SUBNET to rebuild the old rules from
    ] as const) {
      const { tm, ac, log } = world();
      await tm.setupAndEnsureMasqRules(ac.signal, masq(prev));
      expect(log.lines.some((l) => l.includes('trying to recycle old iptables rules'))).toBe(recycled);
      ac.abort();
      await tm.done();
    }
  });

  it('a failed recycle is the one error setupAndEnsureMasqRules throws (Go exits 1)', async () => {
    const { ipt4, tm, ac, log } = world();
    const OLD_POD = parseNet('10.244.9.0/24');
    await ipTablesBootstrap(ipt4, masqRules(NET, OLD_POD, true));
    ipt4.failNextRestore('iptables-restore: line 2 failed');
    await expect(tm.setupAndEnsureMasqRules(ac.signal, masq({ prevNetwork: NET, prevSubnet: OLD_POD }))).rejects.toThrow(/^unable to teardown iptables: /);
    expect(log.lines.at(-1)).toMatch(/^E Failed to teardown iptables: unable to teardown iptables: /);
    ac.abort();
    await tm.done();
  });

  it('IPv6 (dual stack): ip6tables gets the v6 rules, iptables the v4 ones; recycle per family', async () => {
    const { ipt4, ipt6, tm, ac, log, clock } = world();
    const OLD6 = parseNet('2001:cafe:42:9::/64');
    await ipTablesBootstrap(ipt6, masqRules(NET6, OLD6, true));
    await tm.setupAndEnsureMasqRules(ac.signal, masq({ ipv6Network: NET6, ipv6Subnet: POD6, prevNetwork: NET, prevSubnet: POD, prevIPv6Network: NET6, prevIPv6Subnet: OLD6 }));
    await tm.setupAndEnsureForwardRules(ac.signal, { network: NET, ipv6Network: NET6, resyncSeconds: 5 });
    expect(ipt4.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG);
    expect(ipt6.save('nat', 'FLANNEL-POSTRTG')).toEqual([
      '-N FLANNEL-POSTRTG',
      '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG -s 2001:cafe:42:1::/64 -d 2001:cafe:42::/56 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG -s 2001:cafe:42::/56 -d 2001:cafe:42:1::/64 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG ! -s 2001:cafe:42::/56 -d 2001:cafe:42:1::/64 -m comment --comment "flanneld masq" -j RETURN',
      '-A FLANNEL-POSTRTG -s 2001:cafe:42::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
      '-A FLANNEL-POSTRTG ! -s 2001:cafe:42::/56 -d 2001:cafe:42::/56 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
    ]);
    expect(ipt6.save('nat', 'POSTROUTING')).toEqual(GOLDEN_POSTROUTING);
    expect(ipt6.save('filter', 'FLANNEL-FWD')).toEqual(GOLDEN_FWD.map((l) => l.replace('10.244.0.0/16', '2001:cafe:42::/56')));
    expect(log.lines.filter((l) => l.includes('recycle'))).toHaveLength(1);
    expect(log.lines).toContain('I Setting up masking rules for IPv6');
    expect(log.lines).toContain('I IPv6: Changing default FORWARD chain policy to ACCEPT');
    await clock.settle(4);
    // a v6 rule deleted comes back, the v4 set is left alone
    await ipt6.deleteRule('filter', 'FORWARD', forwardRules(NET6)[0]!.rulespec);
    const v4restores = ipt4.restores.length;
    await clock.tick();
    expect(ipt6.save('filter', 'FORWARD')).toEqual(GOLDEN_FORWARD);
    expect(ipt4.restores).toHaveLength(v4restores);
    ac.abort();
    await tm.done();
  });

  it('cleanUp (nftables mode selected) removes the jumps and both chains; nothing there is fine', async () => {
    const { ipt4, ipt6, tm, ac } = world();
    await tm.cleanUp();
    await tm.setupAndEnsureMasqRules(ac.signal, masq());
    await tm.setupAndEnsureForwardRules(ac.signal, { network: NET, resyncSeconds: 5 });
    ac.abort();
    await tm.done();
    await ipt4.ensureRule('nat', 'POSTROUTING', ['-j', 'KUBE-POSTROUTING']);
    await tm.cleanUp();
    expect(ipt4.save('nat')).toEqual(['-P PREROUTING ACCEPT', '-P INPUT ACCEPT', '-P FORWARD ACCEPT', '-P OUTPUT ACCEPT', '-P POSTROUTING ACCEPT', '-A POSTROUTING -j KUBE-POSTROUTING']);
    expect(await ipt4.chainExists('filter', 'FLANNEL-FWD')).toBe(false);
    expect(ipt4.save('filter', 'FORWARD')).toEqual(['-P FORWARD ACCEPT']);
    expect(await ipt6.chainExists('nat', 'FLANNEL-POSTRTG')).toBe(false);
  });

  it('stops its loops when the signal aborts, leaving the rules in place', async () => {
    const { ipt4, tm, clock, ac } = world();
    await tm.setupAndEnsureMasqRules(ac.signal, masq());
    await clock.settle(1);
    ac.abort();
    await tm.done();
    expect(clock.pending()).toEqual([]);
    expect(ipt4.save('nat', 'FLANNEL-POSTRTG')).toEqual(GOLDEN_POSTRTG);
  });
});
