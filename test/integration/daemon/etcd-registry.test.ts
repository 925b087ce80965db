// EtcdRegistry and LocalManager against a real etcd (registry_test.go, subnet_test.go), wire
// compatibility with leases written by etcdctl in Go's format, and the acquire race.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIP, formatNet, parseIP, parseNet } from '../../../shared/net/ip.js';
import type { LeaseEvent } from '../../../daemon/lease.js';
import { memoryLogger } from '../../../shared/log.js';
import { EtcdClient } from '../../../daemon/subnet/etcd/etcd-client.js';
import { LocalManager } from '../../../daemon/subnet/etcd/local-manager.js';
import { CONFIG_NOT_FOUND, EtcdRegistry, type WatchBatch } from '../../../daemon/subnet/etcd/registry.js';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/until.js';

const GO_VXLAN = '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}';


describe.skipIf(!hasEtcd)('EtcdRegistry on a real etcd', () => {
  let etcd: TestEtcd;
  const clients: EtcdClient[] = [];
  const aborts: AbortController[] = [];
  const registry = (prefix = '/coreos.com/network') => {
    const c = new EtcdClient({ endpoints: [etcd.endpoint] });
    clients.push(c);
    return new EtcdRegistry(c, prefix, memoryLogger());
  };
  const signal = () => {
    const a = new AbortController();
    aborts.push(a);
    return a.signal;
  };

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    for (const a of aborts) a.abort();
    for (const c of clients) c.close();
    await etcd?.stop();
  });

  it('TestEtcdRegistry: config, create (Go bytes), list, get, delete, watch', async () => {
    const r = registry('/reg1');
    await expect(r.getNetworkConfig()).rejects.toThrow(CONFIG_NOT_FOUND);
    etcd.ctl(['put', '/reg1/config', '{"Network":"10.1.0.0/16"}']);
    expect(await r.getNetworkConfig()).toBe('{"Network":"10.1.0.0/16"}');

    const { revision } = await r.getSubnets();
    const events: WatchBatch[] = [];
    const s = signal();
    void (async () => {
      for await (const b of r.watchSubnets(revision + 1, s)) events.push(b);
    })().catch(() => {});

    const exp = await r.createSubnet(parseNet('10.1.5.0/24'), undefined, { publicIP: parseIP('1.2.3.4') }, 86400);
    expect(Math.abs(exp - Date.now() - 86400_000)).toBeLessThan(10_000);
    expect(etcd.ctl(['get', '--print-value-only', '/reg1/subnets/10.1.5.0-24'])).toBe('{"PublicIP":"1.2.3.4","PublicIPv6":null}\n');
    const leaseHex = BigInt(etcd.ctl(['get', '-w', 'json', '/reg1/subnets/10.1.5.0-24']).match(/"lease":(\d+)/)![1]!).toString(16);
    const ttl = etcd.ctl(['lease', 'timetolive', leaseHex]);
    expect(ttl).toMatch(/remaining\(86[34]\d\ds\)/);

    const all = await r.getSubnets();
    expect(all.leases).toHaveLength(1);
    expect(formatNet(all.leases[0]!.subnet)).toBe('10.1.5.0/24');
    const one = await r.getSubnet(parseNet('10.1.5.0/24'), undefined);
    expect(formatIP(one.lease!.attrs.publicIP)).toBe('1.2.3.4');

    await expect(r.createSubnet(parseNet('10.1.5.0/24'), undefined, { publicIP: parseIP('9.9.9.9') }, 60)).rejects.toThrow('subnet already exists');
    await r.deleteSubnet(parseNet('10.1.5.0/24'), undefined);
    expect(etcd.ctl(['get', '--prefix', '/reg1/subnets/'])).toBe('');

    await until(() => events.flatMap((b) => (b.kind === 'events' ? b.events : [])).length >= 2, 'watch events');
    const evs = events.flatMap((b) => (b.kind === 'events' ? b.events : []));
    expect(evs.map((e) => `${e.type} ${formatNet(e.lease.subnet)}`)).toEqual(['added 10.1.5.0/24', 'removed 10.1.5.0/24']);
  });

  it('reads leases written by etcdctl in the Go format; ours are byte-identical', async () => {
    const r = registry('/wire');
    etcd.ctl(['put', '/wire/subnets/10.5.72.0-24', GO_VXLAN]);
    etcd.ctl(['put', '/wire/subnets/10.12.13.0-24&fd00:12:13::-56', '{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:aa:aa:aa:aa:aa"},"BackendV6Data":{"VNI":1,"VtepMAC":"bb:bb:bb:bb:bb:bb"}}']);
    etcd.ctl(['put', '/wire/subnets/not-a-key', 'x']);
    const { leases } = await r.getSubnets();
    expect(leases).toHaveLength(2);
    const v4 = leases.find((l) => !l.ipv6Subnet)!;
    expect(formatNet(v4.subnet)).toBe('10.5.72.0/24');
    expect(v4.attrs.backendData).toEqual({ VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' });
    expect(v4.reservation).toBe(true); // written without --lease
    const ds = leases.find((l) => l.ipv6Subnet)!;
    expect(formatNet(ds.ipv6Subnet!)).toBe('fd00:12:13::/56');
    expect(formatIP(ds.attrs.publicIPv6!)).toBe('fd00::1');

    // ours, for the same attrs, byte for byte
    await r.createSubnet(parseNet('10.5.73.0/24'), undefined, v4.attrs, 60);
    expect(etcd.ctl(['get', '--print-value-only', '/wire/subnets/10.5.73.0-24'])).toBe(`${GO_VXLAN}\n`);
    await r.createSubnet(parseNet('10.12.14.0/24'), parseNet('fd00:12:14::/56'), ds.attrs, 60);
    expect(etcd.ctl(['get', '--print-value-only', '/wire/subnets/10.12.14.0-24&fd00:12:14::-56'])).toBe(
      '{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:aa:aa:aa:aa:aa"},"BackendV6Data":{"VNI":1,"VtepMAC":"bb:bb:bb:bb:bb:bb"}}\n',
    );
  });

  describe('LocalManager (subnet_test.go on etcd)', () => {
    // our own lease is picked in 10.3.1–25 and never reported as a peer: peers the tests add sit above
    const CONFIG = '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0" }';
    const seed = (p: string, config = CONFIG) => {
      etcd.ctl(['put', `${p}/config`, config]);
      const lease = etcd.ctl(['lease', 'grant', '600']).match(/lease ([0-9a-f]+) granted/)![1]!;
      for (const s of ['10.3.1.0-24', '10.3.2.0-24', '10.3.4.0-24', '10.3.5.0-24', '10.3.31.0-24']) {
        etcd.ctl(['put', '--lease', lease, `${p}/subnets/${s}`, '{"PublicIP":"1.1.1.1","PublicIPv6":null}']);
      }
    };
    const mgr = (p: string, o: Partial<ConstructorParameters<typeof LocalManager>[0]> = {}) => {
      const log = memoryLogger();
      return { sm: new LocalManager({ registry: registry(p), log, ...o }), log };
    };

    it('TestAcquireLease: in range, reused for the same PublicIP, previous subnet honoured or not', async () => {
      seed('/acq');
      const a = { publicIP: parseIP('1.2.3.4') };
      const l = await mgr('/acq').sm.acquireLease(a, signal());
      expect(l.subnet.base >= parseIP('10.3.1.0').value && l.subnet.base <= parseIP('10.3.25.0').value).toBe(true);
      // a restart that knows its previous subnet reuses the lease (with none, a lease renewed moments ago
      // with our PublicIP may be another node's behind the same NAT: see public-ip-reuse.ts)
      expect(formatNet((await mgr('/acq', { previous: { subnet: l.subnet } }).sm.acquireLease(a, signal())).subnet)).toBe(formatNet(l.subnet));

      seed('/acq2');
      const p = await mgr('/acq2', { previous: { subnet: parseNet('10.3.6.0/24') } }).sm.acquireLease(a, signal());
      expect(formatNet(p.subnet)).toBe('10.3.6.0/24');
      seed('/acq3');
      const q = await mgr('/acq3', { previous: { subnet: parseNet('10.4.1.0/24') } }).sm.acquireLease(a, signal());
      expect(formatNet(q.subnet)).not.toBe('10.4.1.0/24');
    });

    it('TestConfigChanged', async () => {
      seed('/cfg');
      const a = { publicIP: parseIP('1.2.3.4') };
      await mgr('/cfg').sm.acquireLease(a, signal());
      etcd.ctl(['put', '/cfg/config', '{ "Network": "10.4.0.0/16" }']);
      const l = await mgr('/cfg').sm.acquireLease(a, signal());
      expect(formatNet(l.subnet)).toMatch(/^10\.4\./);
    });

    it('TestWatchLeaseAdded / TestWatchLeaseRemoved (3 s TTL expiry)', async () => {
      seed('/watch');
      const { sm } = mgr('/watch');
      const own = await sm.acquireLease({ publicIP: parseIP('1.2.3.4') }, signal());
      const batches: LeaseEvent[][] = [];
      const s = signal();
      void (async () => {
        for await (const b of sm.watchLeases(s)) batches.push(b);
      })();
      await until(() => batches.length >= 1, 'snapshot');
      expect(batches[0]!.map((e) => formatNet(e.lease.subnet))).not.toContain(formatNet(own.subnet));
      expect(batches[0]!).toHaveLength(5);

      const r2 = registry('/watch');
      await r2.createSubnet(parseNet('10.3.30.0/24'), undefined, { publicIP: parseIP('1.1.1.30') }, 86400);
      await until(() => batches.length >= 2, 'added');
      expect(batches[1]!.map((e) => `${e.type} ${formatNet(e.lease.subnet)}`)).toEqual(['added 10.3.30.0/24']);

      await r2.createSubnet(parseNet('10.3.29.0/24'), undefined, { publicIP: parseIP('1.1.1.29'), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'm' } }, 3);
      const removed = await until(
        () => batches.flat().find((e) => e.type === 'removed' && formatNet(e.lease.subnet) === '10.3.29.0/24'),
        'expiry',
        15_000,
      );
      expect(removed.lease.attrs.backendData).toEqual({ VNI: 1, VtepMAC: 'm' }); // the stored attrs
    });

    it('a junk key or value under /subnets never removes peers', async () => {
      seed('/junk');
      const { sm } = mgr('/junk');
      await sm.acquireLease({ publicIP: parseIP('1.2.3.4') }, signal());
      const batches: LeaseEvent[][] = [];
      const s = signal();
      void (async () => {
        for await (const b of sm.watchLeases(s)) batches.push(b);
      })();
      await until(() => batches.length >= 1, 'snapshot');
      etcd.ctl(['put', '/junk/subnets/garbage', 'x']);
      etcd.ctl(['put', '/junk/subnets/10.3.40.0-24', '{bad json']);
      etcd.ctl(['put', '/junk/subnets/10.3.41.0-24', '{"PublicIP":"1.1.1.41","PublicIPv6":null}']);
      await until(() => batches.flat().some((e) => formatNet(e.lease.subnet) === '10.3.41.0/24'), 'good lease');
      expect(batches.flat().filter((e) => e.type === 'removed')).toEqual([]);
    });

    it('watch resumes after compaction with a re-list (TestWatchSubnetsRecoversFromCompaction)', async () => {
      seed('/compact');
      const log = memoryLogger();
      const sm = new LocalManager({ registry: registry('/compact'), log });
      await sm.acquireLease({ publicIP: parseIP('1.2.3.4') }, signal());
      // watch from a revision that we then compact away: list, then write, then compact, then watch
      const r = registry('/compact');
      const { revision } = await r.getSubnets();
      etcd.ctl(['put', '/compact/subnets/10.3.42.0-24', '{"PublicIP":"1.1.1.42","PublicIPv6":null}']);
      etcd.ctl(['del', '/compact/subnets/10.3.5.0-24']);
      const now = Number(etcd.ctl(['get', '-w', 'json', '/compact/config']).match(/"revision":(\d+)/)![1]);
      etcd.ctl(['compact', String(now)]);
      const got: WatchBatch[] = [];
      for await (const b of r.watchSubnets(revision + 1, signal())) {
        got.push(b);
        break;
      }
      expect(got[0]!.kind).toBe('compacted');

      // the manager's watch goes through the same path and recovers with a snapshot
      const batches: LeaseEvent[][] = [];
      const s = signal();
      void (async () => {
        for await (const b of sm.watchLeases(s)) batches.push(b);
      })();
      await until(() => batches.length >= 1, 'snapshot');
      expect(batches[0]!.map((e) => formatNet(e.lease.subnet))).toContain('10.3.42.0/24');
      etcd.ctl(['put', '/compact/subnets/10.3.43.0-24', '{"PublicIP":"1.1.1.43","PublicIPv6":null}']);
      await until(() => batches.flat().some((e) => formatNet(e.lease.subnet) === '10.3.43.0/24'), 'live event');
    });

    it('TestRenewLease: ~24 h TTL and the attrs in etcd', async () => {
      seed('/renew');
      const { sm } = mgr('/renew');
      const a = { publicIP: parseIP('1.2.3.4'), backendType: 'vxlan', backendData: { Dummy: 'test string' } };
      const l = await sm.acquireLease(a, signal());
      await sm.renewLease(l);
      const key = `/renew/subnets/${formatIP({ family: 4, value: l.subnet.base })}-24`;
      const json = etcd.ctl(['get', '-w', 'json', key]);
      const leaseId = BigInt(json.match(/"lease":(\d+)/)![1]!).toString(16);
      const remaining = Number(etcd.ctl(['lease', 'timetolive', leaseId]).match(/remaining\((\d+)s\)/)![1]);
      expect(Math.abs(remaining - 86400)).toBeLessThanOrEqual(10);
      expect(JSON.parse(etcd.ctl(['get', '--print-value-only', key]))).toEqual({
        PublicIP: '1.2.3.4',
        PublicIPv6: null,
        BackendType: 'vxlan',
        BackendData: { Dummy: 'test string' },
      });
    });

    it('a reservation stays a reservation (no lease attached, #1329)', async () => {
      etcd.ctl(['put', '/resv/config', CONFIG]);
      etcd.ctl(['put', '/resv/subnets/10.3.9.0-24', '{"PublicIP":"1.2.3.4","PublicIPv6":null}']);
      const l = await mgr('/resv').sm.acquireLease({ publicIP: parseIP('1.2.3.4') }, signal());
      expect(formatNet(l.subnet)).toBe('10.3.9.0/24');
      expect(etcd.ctl(['get', '-w', 'json', '/resv/subnets/10.3.9.0-24'])).not.toMatch(/"lease":/);
    });

    it('20 acquire loops racing on one small network: 20 distinct subnets, none fails', async () => {
      etcd.ctl(['put', '/race/config', '{"Network":"10.7.0.0/22","SubnetLen":27}']); // 31 subnets
      const ls = await Promise.all(
        Array.from({ length: 20 }, (_, i) => mgr('/race').sm.acquireLease({ publicIP: parseIP(`192.168.7.${i + 1}`) }, signal())),
      );
      expect(new Set(ls.map((l) => formatNet(l.subnet))).size).toBe(20);
      expect(etcd.ctl(['get', '--prefix', '--keys-only', '/race/subnets/']).trim().split(/\n+/)).toHaveLength(20);
    });

    it('the seed config gives /20 leases inside 10.10.0.0–10.99.0.0', async () => {
      etcd.ctl(['put', '/seed/config', '{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.0.0","SubnetMax":"10.99.0.0","Backend":{"Type":"vxlan","VNI":100,"Port":8472}}']);
      for (let i = 0; i < 5; i++) {
        const l = await mgr('/seed').sm.acquireLease({ publicIP: parseIP(`192.168.9.${i + 1}`) }, signal());
        expect(l.subnet.prefix).toBe(20);
        expect(l.subnet.base >= parseIP('10.10.0.0').value && l.subnet.base <= parseIP('10.99.0.0').value).toBe(true);
      }
      const keys = etcd.ctl(['get', '--prefix', '--keys-only', '/seed/subnets/']).trim().split(/\n+/);
      for (const k of keys) expect(k).toMatch(/^\/seed\/subnets\/10\.\d+\.\d+\.0-20$/);
    });

    it('acquire survives an etcd outage (SIGSTOP) and succeeds after it', async () => {
      etcd.ctl(['put', '/outage/config', CONFIG]);
      const { sm, log } = mgr('/outage');
      etcd.pause();
      const p = sm.acquireLease({ publicIP: parseIP('1.2.3.4') }, signal());
      await until(() => log.lines.some((x) => x.includes('trying again')), 'a retry', 20_000);
      etcd.resume();
      const l = await p;
      expect(l.subnet.prefix).toBe(24);
    });
  });
});
