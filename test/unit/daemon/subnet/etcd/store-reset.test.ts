// etcd rebuilt empty or restored to an older revision (issue 9, item 1): the detector, and
// LocalManager on the in-memory registry re-creating its lease and re-listing peers with a grace.
import { describe, expect, it } from 'vitest';
import { formatNet, parseIP } from '../../../../../shared/net/ip.js';
import { signal } from './test-signal.js';
import type { LeaseAttrs, LeaseEvent } from '../../../../../daemon/lease.js';
import { memoryLogger } from '../../../../../shared/log.js';
import { LocalManager, type LocalManagerOptions } from '../../../../../daemon/subnet/etcd/local-manager.js';
import { MemoryRegistry } from '../../../../../daemon/subnet/etcd/memory-registry.js';
import { StoreResetDetector } from '../../../../../daemon/subnet/etcd/store-reset.js';
import { until } from '../../../../helpers/until.js';

const PREFIX = '/coreos.com/network/subnets/';
const CONFIG = '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0" }';
const attrs = (ip = '1.2.3.4'): LeaseAttrs => ({ publicIP: parseIP(ip) });
const peer = (ip: string) => `{"PublicIP":"${ip}","PublicIPv6":null}`;

describe('StoreResetDetector', () => {
  it('flags a revision going back and a cluster ID change, nothing else', () => {
    const d = new StoreResetDetector();
    expect(d.observe({ revision: 10, clusterId: 'a' })).toBeUndefined();
    expect(d.observe({ revision: 10, clusterId: 'a' })).toBeUndefined();
    d.saw(15); // a watch event
    expect(d.observe({ revision: 15, clusterId: 'a' })).toBeUndefined();
    expect(d.observe({ revision: 3, clusterId: 'a' })).toMatch(/revision went back from 15 to 3/);
    // the new store is the reference now
    expect(d.observe({ revision: 4, clusterId: 'a' })).toBeUndefined();
    expect(d.observe({ revision: 9, clusterId: 'b' })).toMatch(/cluster ID changed from a to b/);
    expect(d.observe({ revision: 9 })).toBeUndefined(); // no header cluster ID: only the revision
  });
});


/** A node (1.2.3.4) holding a lease and watching peers 10.3.2.0 and 10.3.4.0. */
async function node(o: Partial<LocalManagerOptions> = {}) {
  const reg = new MemoryRegistry(CONFIG);
  reg.putRaw(PREFIX + '10.3.2.0-24', peer('1.1.1.2'), 86400);
  reg.putRaw(PREFIX + '10.3.4.0-24', peer('1.1.1.4'), 86400);
  for (let i = 0; i < 20; i++) reg.putRaw('/coreos.com/network/other', String(i)); // some history
  const log = memoryLogger();
  const sm = new LocalManager({ registry: reg, log, resetGraceMs: 400, ...o });
  const lease = await sm.acquireLease(attrs(), signal());
  const key = `${PREFIX}${formatNet(lease.subnet).replace('/', '-')}`;
  let completed: unknown = 'running';
  sm.completeLease(lease, signal()).then(
    () => (completed = 'resolved'),
    (e: unknown) => (completed = e),
  );
  const batches: LeaseEvent[][] = [];
  void (async () => {
    for await (const b of sm.watchLeases(signal())) batches.push(b);
  })();
  await until(() => batches.length >= 1 && reg.calls.filter((c) => c === 'watchSubnets').length >= 2, 'watches started');
  const events = () => batches.flat().map((e) => `${e.type} ${formatNet(e.lease.subnet)}`);
  return { reg, log, sm, lease, key, batches, events, completed: () => completed };
}

describe('LocalManager after etcd was rebuilt empty', () => {
  it('re-creates its lease with the same subnet, keeps peers for the grace period, then sees the new store', async () => {
    const n = await node();
    expect(n.events().sort()).toEqual(['added 10.3.2.0/24', 'added 10.3.4.0/24']);
    n.reg.wipe();
    // our key is back, same subnet and value, with a TTL
    await until(() => n.reg.getRaw(n.key), 'our lease re-created');
    expect(n.reg.getRaw(n.key)!.value).toBe(peer('1.2.3.4'));
    expect(n.reg.getRaw(n.key)!.ttlSec).toBeGreaterThan(86000);
    const logs = () => n.log.lines.join('\n');
    expect(logs()).toMatch(/etcd store reset detected: the etcd revision went back from \d+ to 1/);
    expect(logs()).toContain(`Our lease ${formatNet(n.lease.subnet)} is missing after the etcd reset: re-creating it with the same subnet`);
    expect(logs()).toContain(`Re-acquired lease ${formatNet(n.lease.subnet)}`);
    // peers missing from the empty store are kept (no removal yet), and logged
    await until(() => /2 peer lease\(s\) missing from etcd after the reset, keeping their routes/.test(logs()), 'grace logged');
    expect(n.events().filter((e) => e.startsWith('removed'))).toEqual([]);
    // one owner re-creates its lease, a new host joins; the other owner never comes back
    n.reg.putRaw(PREFIX + '10.3.2.0-24', peer('1.1.1.2'), 86400);
    n.reg.putRaw(PREFIX + '10.3.49.0-24', peer('1.1.1.9'), 86400);
    await until(() => n.events().includes('added 10.3.49.0/24'), 'the new host');
    await until(() => n.events().includes('removed 10.3.4.0/24'), 'the vanished peer removed after the grace');
    expect(n.events().filter((e) => e.startsWith('removed'))).toEqual(['removed 10.3.4.0/24']);
    expect(logs()).toMatch(/1 peer lease\(s\) not re-created within 0s of the reset, removing them: ip: 10\.3\.4\.0\/24/);
    expect(n.completed()).toBe('running');
    // and it keeps watching the new store
    n.reg.deleteRaw(PREFIX + '10.3.49.0-24');
    await until(() => n.events().includes('removed 10.3.49.0/24'), 'live events from the new store');
  });

  it('a new store already past our revision: our missing key is the clue', async () => {
    const n = await node();
    const before = n.reg.revision;
    n.reg.wipe();
    for (let i = 0; i < before + 10; i++) n.reg.putRaw('/coreos.com/network/other', String(i)); // busy new store
    n.reg.putRaw(PREFIX + '10.3.41.0-24', peer('1.1.1.11'), 86400);
    await until(() => n.reg.getRaw(n.key), 'our lease re-created');
    expect(n.log.lines.join('\n')).toContain('is missing after the watch reconnected');
    await until(() => n.events().includes('added 10.3.41.0/24'), 'a peer put before the watch reconnected');
  });

  it('restored to an older snapshot holding our key: the key is renewed at once, peers added since come back', async () => {
    const n = await node();
    const old = n.reg.snapshot();
    n.reg.putRaw(PREFIX + '10.3.47.0-24', peer('1.1.1.7'), 86400);
    await until(() => n.events().includes('added 10.3.47.0/24'), 'peer added');
    n.reg.restore(old);
    await until(() => /Our lease .* survived the etcd reset: renewed it/.test(n.log.lines.join('\n')), 'renewed');
    // 10.3.47.0 is not in the snapshot: kept for the grace, then removed unless re-created
    await until(() => n.events().includes('removed 10.3.47.0/24'), 'removed after the grace');
    expect(n.completed()).toBe('running');
  });

  it('a reset while another node took our subnet: completeLease rejects (the subnet is not stolen back)', async () => {
    const n = await node();
    n.reg.wipe();
    n.reg.putRaw(n.key, peer('9.9.9.9'), 86400); // a joining host got our subnet first
    await until(() => n.completed() instanceof Error, 'completeLease rejected');
    expect(String(n.completed())).toMatch(/is held by 9\.9\.9\.9 after the etcd reset|now held by 9\.9\.9\.9/);
    expect(n.reg.getRaw(n.key)!.value).toBe(peer('9.9.9.9'));
  });
});
