// LocalManager on the in-memory registry: flannel's subnet_test.go cases plus our fixes.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatIP, formatNet, parseIP, parseNet } from '../../../../../shared/net/ip.js';
import { until } from '../../../../helpers/until.js';
import { abortLast, signal } from './test-signal.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../../../../../daemon/lease.js';
import { memoryLogger } from '../../../../../shared/log.js';
import { LocalManager, type LocalManagerOptions } from '../../../../../daemon/subnet/etcd/local-manager.js';
import { MemoryRegistry } from '../../../../../daemon/subnet/etcd/memory-registry.js';
import { marshalLeaseAttrs } from '../../../../../daemon/subnet/lease-json.js';

const PREFIX = '/coreos.com/network/subnets/';
const CONFIG = '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0" }';
const attrs = (ip = '1.2.3.4'): LeaseAttrs => ({ publicIP: parseIP(ip) });

/** subnet_test.go's fixture: 10.3.1/2/4/5.0/24 in range and 10.3.31.0/24 out of it, all PublicIP 1.1.1.1 */
function fixture(config = CONFIG): MemoryRegistry {
  const r = new MemoryRegistry(config);
  for (const s of ['10.3.1.0-24', '10.3.2.0-24', '10.3.4.0-24', '10.3.5.0-24', '10.3.31.0-24']) {
    r.putRaw(PREFIX + s, '{"PublicIP":"1.1.1.1","PublicIPv6":null}', 86400);
  }
  return r;
}

afterEach(() => {
  vi.useRealTimers();
});

function manager(registry: MemoryRegistry, o: Partial<LocalManagerOptions> = {}) {
  const log = memoryLogger();
  return { sm: new LocalManager({ registry, log, ...o }), log };
}

/**
 * With setTimeout faked: lets due callbacks and pending promise chains run, without moving the
 * clock, until `f` holds.
 */
async function settle(f: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (f()) return;
    await vi.advanceTimersByTimeAsync(0);
  }
  throw new Error(`never saw ${what}`);
}

/** Timers and Date under the test's control (renewals due hours later run in a few ms). */
const fakeClock = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });

/**
 * completeLease's own-key watch has read the key and watches from the next revision on, so any
 * later change of the key reaches it (acquireLease never watches, so the call is its).
 */
const ownKeyWatched = (reg: MemoryRegistry) => () => reg.calls.includes('watchSubnets');
const count = (reg: MemoryRegistry, op: string) => reg.calls.filter((c) => c === op).length;

/** Collects watchLeases batches in the background. */
function collect(it: AsyncIterable<LeaseEvent[]>): LeaseEvent[][] {
  const out: LeaseEvent[][] = [];
  void (async () => {
    for await (const b of it) out.push(b);
  })();
  return out;
}
const show = (b: LeaseEvent[]) => b.map((e) => `${e.type} ${formatNet(e.lease.subnet)}`);

describe('LocalManager.acquireLease (TestAcquireLease)', () => {
  it('gets a subnet in range, then the same one again for the same PublicIP (a restart with subnet.env)', async () => {
    const reg = fixture();
    const { sm } = manager(reg);
    const l = await sm.acquireLease(attrs(), signal());
    expect(l.subnet.prefix).toBe(24);
    expect(l.subnet.base >= parseIP('10.3.1.0').value && l.subnet.base <= parseIP('10.3.25.0').value).toBe(true);
    expect(['10.3.1.0/24', '10.3.2.0/24', '10.3.4.0/24', '10.3.5.0/24']).not.toContain(formatNet(l.subnet));
    expect(l.expiration - Date.now()).toBeGreaterThan(86390_000);
    const again = await manager(reg, { previous: { subnet: l.subnet } }).sm.acquireLease(attrs(), signal());
    expect(formatNet(again.subnet)).toBe(formatNet(l.subnet));
    expect(reg.keys().filter((k) => reg.getRaw(k)!.value.includes('1.2.3.4'))).toHaveLength(1);
  });

  it('reuses a free previous subnet (10.3.6.0/24)', async () => {
    const { sm, log } = manager(fixture(), { previous: { subnet: parseNet('10.3.6.0/24') } });
    const l = await sm.acquireLease(attrs(), signal());
    expect(formatNet(l.subnet)).toBe('10.3.6.0/24');
    expect(log.lines.join('\n')).toContain('Found previously leased subnet (10.3.6.0/24), reusing');
  });

  it('does not reuse a previous subnet outside the Network (10.4.1.0/24)', async () => {
    const { sm, log } = manager(fixture(), { previous: { subnet: parseNet('10.4.1.0/24') } });
    const l = await sm.acquireLease(attrs(), signal());
    expect(formatNet(l.subnet)).not.toBe('10.4.1.0/24');
    expect(log.lines.join('\n')).toContain('not compatible with the Etcd network config, ignoring');
  });

  it('does not take a previous subnet another node holds', async () => {
    const { sm } = manager(fixture(), { previous: { subnet: parseNet('10.3.2.0/24') } });
    expect(formatNet((await sm.acquireLease(attrs(), signal())).subnet)).not.toBe('10.3.2.0/24');
  });

  it('TestConfigChanged: after the Network changes to 10.4.0.0/16 the lease moves into it', async () => {
    const reg = fixture();
    const l1 = await manager(reg).sm.acquireLease(attrs(), signal());
    reg.config = '{ "Network": "10.4.0.0/16" }';
    const { sm, log } = manager(reg, { previous: { subnet: l1.subnet } });
    const l2 = await sm.acquireLease(attrs(), signal());
    expect(formatNet(l2.subnet).startsWith('10.4.')).toBe(true);
    expect(reg.getRaw(PREFIX + `${formatIP({ family: 4, value: l1.subnet.base })}-24`)).toBeUndefined(); // old one deleted
    expect(log.lines.join('\n')).toContain('not compatible with current config, deleting');
  });

  it('writes the Go value bytes', async () => {
    const reg = new MemoryRegistry(CONFIG);
    const l = await manager(reg).sm.acquireLease(attrs(), signal());
    const key = reg.keys()[0]!;
    expect(key).toBe(`${PREFIX}${formatIP({ family: 4, value: l.subnet.base })}-24`);
    expect(reg.getRaw(key)!.value).toBe('{"PublicIP":"1.2.3.4","PublicIPv6":null}');
  });

  it('a reservation (key without lease) for our IP is reused and stays without TTL (#1329 fixed)', async () => {
    const reg = new MemoryRegistry(CONFIG);
    reg.putRaw(PREFIX + '10.3.9.0-24', '{"PublicIP":"1.2.3.4","PublicIPv6":null}'); // no ttl
    const l = await manager(reg).sm.acquireLease({ ...attrs(), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'x' } }, signal());
    expect(formatNet(l.subnet)).toBe('10.3.9.0/24');
    expect(l.reservation).toBe(true);
    const raw = reg.getRaw(PREFIX + '10.3.9.0-24')!;
    expect(raw.ttlSec).toBeUndefined();
    expect(raw.value).toContain('"BackendType":"vxlan"'); // attrs updated
  });

  it('reserved subnets of others count as taken', async () => {
    const reg = new MemoryRegistry('{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.0","SubnetMax":"10.3.2.0"}');
    reg.putRaw(PREFIX + '10.3.1.0-24', '{"PublicIP":"9.9.9.9","PublicIPv6":null}');
    expect(formatNet((await manager(reg).sm.acquireLease(attrs(), signal())).subnet)).toBe('10.3.2.0/24');
  });

  it('out of subnets fails with Go message', async () => {
    const reg = new MemoryRegistry('{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.0","SubnetMax":"10.3.1.0"}');
    reg.putRaw(PREFIX + '10.3.1.0-24', '{"PublicIP":"9.9.9.9","PublicIPv6":null}', 100);
    await expect(manager(reg).sm.acquireLease(attrs(), signal())).rejects.toThrow('failed to acquire lease: out of subnets');
  });

  it('retries through an etcd outage', async () => {
    const reg = fixture();
    reg.failNext = 3;
    const { sm, log } = manager(reg);
    const l = await sm.acquireLease(attrs(), signal());
    expect(l.subnet.prefix).toBe(24);
    expect(log.lines.filter((x) => x.includes('trying again'))).toHaveLength(3);
  });

  it('20 managers racing on a network with 24 subnets all get distinct subnets', async () => {
    const reg = new MemoryRegistry('{"Network":"10.3.0.0/16","SubnetLen":24,"SubnetMin":"10.3.1.0","SubnetMax":"10.3.24.0"}');
    const ls = await Promise.all(Array.from({ length: 20 }, (_, i) => manager(reg).sm.acquireLease(attrs(`192.168.0.${i + 1}`), signal())));
    expect(new Set(ls.map((l) => formatNet(l.subnet))).size).toBe(20);
    expect(reg.keys()).toHaveLength(20);
  });

  it('dual stack: the key carries both subnets', async () => {
    const reg = new MemoryRegistry('{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:3::/48"}');
    const l = await manager(reg).sm.acquireLease({ publicIP: parseIP('1.2.3.4'), publicIPv6: parseIP('fd00::4') }, signal());
    expect(l.ipv6Subnet!.prefix).toBe(64);
    expect(reg.keys()[0]).toMatch(/^\/coreos\.com\/network\/subnets\/10\.3\.\d+\.0-24&fd00:3:0:[0-9a-f]+::-64$/);
    expect(reg.getRaw(reg.keys()[0]!)!.value).toBe('{"PublicIP":"1.2.3.4","PublicIPv6":"fd00::4"}');
  });
});

// Peers below are put outside SubnetMin..SubnetMax (10.3.1–25): a subnet in range could be the
// one acquireLease picked at random for us, and our own subnet is never a peer.
describe('LocalManager.watchLeases', () => {
  it('TestWatchLeaseAdded: snapshot without our own lease, then one added event', async () => {
    const reg = fixture();
    const { sm } = manager(reg);
    const own = await sm.acquireLease(attrs(), signal());
    const batches = collect(sm.watchLeases(signal()));
    await until(() => batches.length >= 1, 'snapshot');
    expect(batches[0]!).toHaveLength(5);
    expect(show(batches[0]!)).not.toContain(`added ${formatNet(own.subnet)}`);
    reg.putRaw(PREFIX + '10.3.30.0-24', '{"PublicIP":"1.1.1.2","PublicIPv6":null}', 100);
    await until(() => batches.length >= 2, 'event');
    expect(show(batches[1]!)).toEqual(['added 10.3.30.0/24']);
  });

  it('TestWatchLeaseRemoved: expiry gives removed with the stored attrs', async () => {
    const reg = fixture();
    const { sm } = manager(reg);
    await sm.acquireLease(attrs(), signal());
    const batches = collect(sm.watchLeases(signal()));
    await until(() => batches.length >= 1, 'snapshot');
    reg.putRaw(PREFIX + '10.3.31.0-24', '{"PublicIP":"1.1.1.9","PublicIPv6":null}', -1); // already expired
    await until(() => batches.length >= 2, 'added');
    reg.expireLeases();
    await until(() => batches.length >= 3, 'removed');
    expect(show(batches[2]!)).toEqual(['removed 10.3.31.0/24']);
    expect(formatIP(batches[2]![0]!.lease.attrs.publicIP)).toBe('1.1.1.9');
  });

  it('junk keys and values never remove healthy peers (Go mass-removal hazard fixed)', async () => {
    const reg = fixture();
    const { sm } = manager(reg);
    await sm.acquireLease(attrs(), signal());
    const batches = collect(sm.watchLeases(signal()));
    await until(() => batches.length >= 1, 'snapshot');
    reg.putRaw(PREFIX + 'junk', 'xx');
    reg.putRaw(PREFIX + '10.3.40.0-24', 'notjson', 100);
    reg.putRaw(PREFIX + '10.3.41.0-24', '{"PublicIP":"1.1.1.3","PublicIPv6":null}', 100);
    await until(() => batches.length >= 2, 'good event');
    const all = batches.slice(1).flat();
    expect(all.filter((e) => e.type === 'removed')).toEqual([]);
    expect(show(all)).toEqual(['added 10.3.41.0/24']);
  });

  it('compaction: re-lists and continues with live events (TestWatchSubnetsRecoversFromCompaction)', async () => {
    const reg = fixture();
    const { sm } = manager(reg, { resetGraceMs: 100 }); // compaction keeps missing peers this long
    await sm.acquireLease(attrs(), signal());
    const s = signal();
    const batches = collect(sm.watchLeases(s));
    await until(() => batches.length >= 1, 'snapshot');
    // while "disconnected": a peer goes, a peer comes, history is compacted
    reg.deleteRaw(PREFIX + '10.3.5.0-24');
    reg.putRaw(PREFIX + '10.3.42.0-24', '{"PublicIP":"1.1.1.4","PublicIPv6":null}', 100);
    reg.compact();
    await until(() => batches.flat().some((e) => formatNet(e.lease.subnet) === '10.3.42.0/24'), 'peer after compaction');
    reg.putRaw(PREFIX + '10.3.43.0-24', '{"PublicIP":"1.1.1.5","PublicIPv6":null}', 100);
    await until(() => batches.flat().some((e) => formatNet(e.lease.subnet) === '10.3.43.0/24'), 'live event');
    await until(() => batches.flat().some((e) => e.type === 'removed'), 'removal after the grace period');
    const later = batches.slice(1).flat().map((e) => `${e.type} ${formatNet(e.lease.subnet)}`);
    expect(later).toContain('removed 10.3.5.0/24');
    expect(later.filter((x) => x.startsWith('removed'))).toEqual(['removed 10.3.5.0/24']);
  });

  it('reconnects after watch failures with back-off', async () => {
    const reg = fixture();
    const { sm, log } = manager(reg);
    await sm.acquireLease(attrs(), signal());
    reg.failNext = 1; // the first list fails
    const batches = collect(sm.watchLeases(signal()));
    await until(() => batches.length >= 1, 'snapshot after retry');
    expect(log.lines.some((l) => l.includes('failed to list leases'))).toBe(true);
  });
});

describe('LocalManager renew and own lease', () => {
  it('TestRenewLease: a new 24 h TTL and the attrs deep-equal', async () => {
    const reg = fixture();
    const { sm } = manager(reg);
    const a: LeaseAttrs = { publicIP: parseIP('1.2.3.4'), backendType: 'vxlan', backendData: { Dummy: 'test string' } };
    const l = await sm.acquireLease(a, signal());
    const renewed = await sm.renewLease({ ...l, expiration: Date.now() + 1000 });
    const raw = reg.getRaw(`${PREFIX}${formatIP({ family: 4, value: l.subnet.base })}-24`)!;
    expect(Math.abs(raw.ttlSec! - 86400)).toBeLessThan(10);
    expect(raw.value).toBe(marshalLeaseAttrs(a));
    expect(JSON.parse(raw.value)).toEqual({ PublicIP: '1.2.3.4', PublicIPv6: null, BackendType: 'vxlan', BackendData: { Dummy: 'test string' } });
    expect(Math.abs(renewed.expiration - Date.now() - 86400_000)).toBeLessThan(10_000);
  });

  it('renews before expiry by the margin, through an outage', async () => {
    const reg = fixture();
    const { sm, log } = manager(reg, { ttlSec: 2, renewMarginMs: 1700, renewRetryMs: 50 });
    const l = await sm.acquireLease(attrs(), signal());
    const s = signal();
    reg.failNext = 0;
    const done = sm.completeLease(l, s);
    await until(() => log.lines.some((x) => x.includes('Lease renewed')), 'first renewal');
    reg.failNext = 2;
    await until(() => log.lines.filter((x) => x.includes('Lease renewed')).length >= 2, 'renewal after outage', 8000);
    expect(log.lines.some((x) => x.includes('Error renewing lease'))).toBe(true);
    abortLast();
    await done;
  });

  it('own lease deleted: re-acquires the same subnet in place', async () => {
    const reg = fixture();
    const { sm, log } = manager(reg);
    const l = await sm.acquireLease(attrs(), signal());
    const key = `${PREFIX}${formatIP({ family: 4, value: l.subnet.base })}-24`;
    const s = signal();
    const done = sm.completeLease(l, s);
    await until(ownKeyWatched(reg), 'the own-key watch');
    reg.deleteRaw(key);
    await until(() => log.lines.some((x) => x.includes('Re-acquired lease')), 're-acquire');
    expect(reg.getRaw(key)!.value).toBe('{"PublicIP":"1.2.3.4","PublicIPv6":null}');
    expect(reg.getRaw(key)!.ttlSec).toBeGreaterThan(86000);
    abortLast();
    await done;
  });

  it('own lease taken by another node after expiry: completeLease rejects', async () => {
    const reg = fixture();
    const { sm } = manager(reg);
    const l = await sm.acquireLease(attrs(), signal());
    const key = `${PREFIX}${formatIP({ family: 4, value: l.subnet.base })}-24`;
    const done = sm.completeLease(l, signal());
    await until(ownKeyWatched(reg), 'the own-key watch');
    // delete + immediate put by another node, before we can react
    reg.deleteRaw(key);
    reg.putRaw(key, '{"PublicIP":"5.5.5.5","PublicIPv6":null}', 100);
    await expect(done).rejects.toThrow(/was revoked and is now held by 5\.5\.5\.5/);
  });

  it('own lease taken by another node before completeLease: rejects instead of renewing over it', async () => {
    const reg = fixture();
    const { sm } = manager(reg);
    const l = await sm.acquireLease(attrs(), signal());
    const key = `${PREFIX}${formatIP({ family: 4, value: l.subnet.base })}-24`;
    reg.deleteRaw(key);
    reg.putRaw(key, '{"PublicIP":"5.5.5.5","PublicIPv6":null}', 100);
    await expect(sm.completeLease(l, signal())).rejects.toThrow(/was revoked and is now held by 5\.5\.5\.5/);
    expect(count(reg, 'updateSubnet')).toBe(0);
  });

  it('an operator turning our lease into a reservation stops renewals', async () => {
    fakeClock();
    const reg = fixture();
    const { sm, log } = manager(reg); // 24 h lease, renewed 1 h before it expires
    const l = await sm.acquireLease(attrs(), signal());
    const key = `${PREFIX}${formatIP({ family: 4, value: l.subnet.base })}-24`;
    const s = signal();
    const done = sm.completeLease(l, s);
    await settle(ownKeyWatched(reg), 'the own-key watch');
    reg.putRaw(key, '{"PublicIP":"1.2.3.4","PublicIPv6":null}'); // no lease
    await settle(() => sm.lease()?.reservation === true, 'reservation seen');
    // two days on: the lease would have been renewed twice by now
    await vi.advanceTimersByTimeAsync(48 * 60 * 60 * 1000);
    expect(count(reg, 'updateSubnet')).toBe(0);
    expect(reg.getRaw(key)!.ttlSec).toBeUndefined();
    expect(log.lines.some((x) => x.includes('Lease renewed'))).toBe(false);
    abortLast();
    await done;
  });

  it('the same two days without the reservation renew twice (the test above can fail)', async () => {
    fakeClock();
    const reg = fixture();
    const { sm } = manager(reg);
    const l = await sm.acquireLease(attrs(), signal());
    const s = signal();
    const done = sm.completeLease(l, s);
    await settle(ownKeyWatched(reg), 'the own-key watch');
    await vi.advanceTimersByTimeAsync(48 * 60 * 60 * 1000);
    expect(count(reg, 'updateSubnet')).toBe(2);
    abortLast();
    await done;
  });

  it('a failed TTL lookup on our own key keeps the known expiration: no renew loop, no orphan leases', async () => {
    fakeClock();
    const reg = fixture();
    const { sm, log } = manager(reg); // 24 h lease, renewed 1 h before it expires
    const l = await sm.acquireLease(attrs(), signal());
    const key = `${PREFIX}${formatIP({ family: 4, value: l.subnet.base })}-24`;
    const seen: Lease[] = [];
    sm.onOwnLeaseChange((x) => seen.push(x));
    const s = signal();
    const done = sm.completeLease(l, s);
    await settle(ownKeyWatched(reg), 'the own-key watch');
    reg.failTTL = Infinity; // etcd takes puts but every TimeToLive fails
    reg.putRaw(key, '{"PublicIP":"1.2.3.4","PublicIPv6":null}', 86400); // our key re-put with a lease
    await settle(() => seen.length > 0, 'the own-key event');
    expect(seen[0]!.expiration).toBe(l.expiration);
    expect(log.lines.some((x) => x.includes('could not look up the TTL of our lease'))).toBe(true);
    await vi.advanceTimersByTimeAsync(60 * 60 * 1000); // an hour on: nothing due
    expect(count(reg, 'updateSubnet')).toBe(0);
    // the renewal at 23 h: one Grant+Put, whose own event (lookup failing) keeps the Grant's expiration
    await vi.advanceTimersByTimeAsync(22 * 60 * 60 * 1000 + 1000);
    expect(count(reg, 'updateSubnet')).toBe(1);
    const granted = l.expiration + 23 * 60 * 60 * 1000; // renewed at 23 h for 24 h
    expect(seen.map((x) => x.expiration)).toEqual([l.expiration, granted, granted]);
    expect(reg.getRaw(key)!.ttlSec).toBe((granted - Date.now()) / 1000); // the key holds that lease
    expect(count(reg, 'createSubnet')).toBe(1); // the acquire's: never a re-take
    abortLast();
    await done;
  });
});
