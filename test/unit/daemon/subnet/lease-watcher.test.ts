import { describe, expect, it } from 'vitest';
import { formatNet, parseIP, parseNet } from '../../../../shared/net/ip.js';
import type { Lease, LeaseEvent } from '../../../../daemon/lease.js';
import { LeaseWatcher } from '../../../../daemon/subnet/lease-watcher.js';

const lease = (cidr: string, ip = '1.1.1.1', mac = 'aa'): Lease => ({
  enableIPv4: true,
  enableIPv6: false,
  subnet: parseNet(cidr),
  attrs: { publicIP: parseIP(ip), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } },
  expiration: 0,
});
const show = (evs: LeaseEvent[]) => evs.map((e) => `${e.type} ${formatNet(e.lease.subnet)}`);
const flags = { enableIPv4: true, enableIPv6: false };

describe('LeaseWatcher', () => {
  it('drops our own subnet from updates and snapshots', () => {
    const lw = new LeaseWatcher(flags, lease('10.3.1.0/24'));
    expect(show(lw.reset([lease('10.3.1.0/24'), lease('10.3.2.0/24')]))).toEqual(['added 10.3.2.0/24']);
    expect(show(lw.update([{ type: 'added', lease: lease('10.3.1.0/24') }]))).toEqual([]);
  });

  it('removed returns the stored lease with its attrs', () => {
    const lw = new LeaseWatcher(flags, undefined);
    lw.update([{ type: 'added', lease: lease('10.3.2.0/24', '10.0.0.2', 'mac2') }]);
    const bare: Lease = { ...lease('10.3.2.0/24', '0.0.0.0'), attrs: { publicIP: parseIP('0.0.0.0') } };
    const out = lw.update([{ type: 'removed', lease: bare }]);
    expect(out).toHaveLength(1);
    expect(out[0]!.lease.attrs.backendData).toEqual({ VNI: 1, VtepMAC: 'mac2' });
    expect(out[0]!.lease.attrs.publicIP).toEqual(parseIP('10.0.0.2'));
  });

  it('an unknown removal is dropped', () => {
    const lw = new LeaseWatcher(flags, undefined);
    expect(lw.update([{ type: 'removed', lease: lease('10.3.9.0/24') }])).toEqual([]);
  });

  it('added replaces by subnet', () => {
    const lw = new LeaseWatcher(flags, undefined);
    lw.update([{ type: 'added', lease: lease('10.3.2.0/24', '10.0.0.2', 'a') }]);
    lw.update([{ type: 'added', lease: lease('10.3.2.0/24', '10.0.0.3', 'b') }]);
    expect(lw.leases()).toHaveLength(1);
    expect(lw.leases()[0]!.attrs.publicIP).toEqual(parseIP('10.0.0.3'));
  });

  it('reset: added for new, removed for vanished, added again for changed attrs, nothing for unchanged', () => {
    const lw = new LeaseWatcher(flags, undefined);
    lw.reset([lease('10.3.2.0/24'), lease('10.3.3.0/24'), lease('10.3.4.0/24', '1.1.1.1', 'old')]);
    const out = show(lw.reset([lease('10.3.2.0/24'), lease('10.3.4.0/24', '1.1.1.1', 'new'), lease('10.3.5.0/24')]));
    expect(out.sort()).toEqual(['added 10.3.4.0/24', 'added 10.3.5.0/24', 'removed 10.3.3.0/24']);
  });

  it('a changed own lease is excluded afterwards', () => {
    const lw = new LeaseWatcher(flags, lease('10.3.1.0/24'));
    lw.update([{ type: 'added', lease: lease('10.3.7.0/24') }]);
    lw.setOwnLease(lease('10.3.7.0/24'));
    expect(lw.leases()).toHaveLength(0);
  });
});
