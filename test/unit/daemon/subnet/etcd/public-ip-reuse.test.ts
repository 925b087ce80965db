// Reuse-by-PublicIP never takes another live node's lease (issue 9, item 2b), on the memory registry.
import { describe, expect, it } from 'vitest';
import { formatNet, parseIP, parseNet } from '../../../../../shared/net/ip.js';
import { signal } from './test-signal.js';
import type { LeaseAttrs } from '../../../../../daemon/lease.js';
import { memoryLogger } from '../../../../../shared/log.js';
import { LocalManager, type LocalManagerOptions } from '../../../../../daemon/subnet/etcd/local-manager.js';
import { MemoryRegistry } from '../../../../../daemon/subnet/etcd/memory-registry.js';

const PREFIX = '/coreos.com/network/subnets/';
const CONFIG = '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.1.0", "SubnetMax": "10.3.25.0" }';
const NAT = '192.0.2.1';
const attrs = (ip = NAT, mac?: string): LeaseAttrs =>
  mac ? { publicIP: parseIP(ip), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } } : { publicIP: parseIP(ip) };


function manager(reg: MemoryRegistry, o: Partial<LocalManagerOptions> = {}) {
  const log = memoryLogger();
  return { sm: new LocalManager({ registry: reg, log, ...o }), log };
}

describe('acquireLease behind one public IP', () => {
  it('three nodes sharing --public-ip, started one after another without subnet.env, get distinct subnets; the refusal is one line', async () => {
    const reg = new MemoryRegistry(CONFIG);
    const a = manager(reg);
    const b = manager(reg);
    const c = manager(reg);
    const la = await a.sm.acquireLease(attrs(), signal());
    const lb = await b.sm.acquireLease(attrs(), signal());
    const lc = await c.sm.acquireLease(attrs(), signal());
    expect(new Set([la, lb, lc].map((l) => formatNet(l.subnet))).size).toBe(3);
    expect(reg.keys().filter((k) => k.startsWith(PREFIX))).toHaveLength(3);
    const warnB = b.log.lines.filter((l) => l.includes('Not reusing'));
    expect(warnB).toHaveLength(1);
    expect(warnB[0]).toMatch(
      new RegExp(`Not reusing lease ${formatNet(la.subnet)} \\(it was renewed \\d+s ago\\) although it carries our public IP ${NAT}: another live node`),
    );
    expect(c.log.lines.filter((l) => l.includes('Not reusing'))[0]).toMatch(/Not reusing leases .*2 live leases carry this public IP/);
    // each still finds its own lease again on a restart with its subnet.env
    for (const [m, l] of [[b, lb], [a, la]] as const) {
      const again = await manager(reg, { previous: { subnet: l.subnet } }).sm.acquireLease(attrs(), signal());
      expect(formatNet(again.subnet)).toBe(formatNet(l.subnet));
      void m;
    }
    expect(reg.keys().filter((k) => k.startsWith(PREFIX))).toHaveLength(3);
  });

  it('a previous subnet that differs from the lease with our IP: that lease is another node’s, left alone', async () => {
    const reg = new MemoryRegistry(CONFIG);
    reg.putRaw(PREFIX + '10.3.7.0-24', `{"PublicIP":"${NAT}","PublicIPv6":null}`, 3600); // old, renewed 23 h ago
    const { sm, log } = manager(reg, { previous: { subnet: parseNet('10.3.9.0/24') } });
    const l = await sm.acquireLease(attrs(), signal());
    expect(formatNet(l.subnet)).toBe('10.3.9.0/24');
    expect(reg.getRaw(PREFIX + '10.3.7.0-24')!.value).toContain(NAT);
    expect(log.lines.join('\n')).toContain('Not reusing lease 10.3.7.0/24 (our previous subnet was 10.3.9.0/24)');
  });

  it('no subnet.env and one lease with our IP renewed long ago: reused, as Go (a rebooted node)', async () => {
    const reg = new MemoryRegistry(CONFIG);
    reg.putRaw(PREFIX + '10.3.7.0-24', `{"PublicIP":"${NAT}","PublicIPv6":null}`, 3600);
    const { sm, log } = manager(reg);
    const l = await sm.acquireLease(attrs(), signal());
    expect(formatNet(l.subnet)).toBe('10.3.7.0/24');
    expect(log.lines.join('\n')).toMatch(/for current IP \(192\.0\.2\.1\), reusing \(it was last renewed \d+ min ago\)/);
    expect(log.lines.join('\n')).not.toContain('Not reusing');
  });

  it('no subnet.env, a fresh lease whose VXLAN VtepMAC is ours (a quick restart): reused', async () => {
    const reg = new MemoryRegistry(CONFIG);
    const first = await manager(reg).sm.acquireLease(attrs(NAT, 'aa:bb:cc:00:00:01'), signal());
    const other = await manager(reg).sm.acquireLease(attrs(NAT, 'aa:bb:cc:00:00:02'), signal());
    expect(formatNet(other.subnet)).not.toBe(formatNet(first.subnet));
    const again = await manager(reg).sm.acquireLease(attrs(NAT, 'aa:bb:cc:00:00:01'), signal());
    // two live leases share the IP: without subnet.env nothing proves which is ours, even the MAC
    // does not count then (refusal costs a subnet, a wrong reuse an outage)
    expect([formatNet(first.subnet), formatNet(other.subnet)]).not.toContain(formatNet(again.subnet));
    const reg2 = new MemoryRegistry(CONFIG);
    const one = await manager(reg2).sm.acquireLease(attrs(NAT, 'aa:bb:cc:00:00:01'), signal());
    const back = await manager(reg2).sm.acquireLease(attrs(NAT, 'aa:bb:cc:00:00:01'), signal());
    expect(formatNet(back.subnet)).toBe(formatNet(one.subnet));
  });

  it('a reservation for our IP is still reused (the operator pinned it), and an incompatible lease of another node is not deleted', async () => {
    const reg = new MemoryRegistry(CONFIG);
    reg.putRaw(PREFIX + '10.3.5.0-24', `{"PublicIP":"${NAT}","PublicIPv6":null}`); // reservation
    const { sm } = manager(reg, { previous: { subnet: parseNet('10.3.9.0/24') } });
    expect(formatNet((await sm.acquireLease(attrs(), signal())).subnet)).toBe('10.3.5.0/24');

    const reg2 = new MemoryRegistry('{ "Network": "10.4.0.0/16" }');
    reg2.putRaw(PREFIX + '10.3.7.0-24', `{"PublicIP":"${NAT}","PublicIPv6":null}`, 86400); // live, fresh
    const l = await manager(reg2).sm.acquireLease(attrs(), signal());
    expect(formatNet(l.subnet).startsWith('10.4.')).toBe(true);
    expect(reg2.getRaw(PREFIX + '10.3.7.0-24')).toBeDefined();
  });
});
