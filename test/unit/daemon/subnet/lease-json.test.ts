import { describe, expect, it } from 'vitest';
import { formatIP, parseIP } from '../../../../shared/net/ip.js';
import { marshalLeaseAttrs, parseLeaseAttrs } from '../../../../daemon/subnet/lease-json.js';

describe('lease value JSON, byte-identical to Go json.Marshal(LeaseAttrs)', () => {
  it('alloc/udp: no BackendType, PublicIPv6 null (registry_test)', () => {
    expect(marshalLeaseAttrs({ publicIP: parseIP('1.2.3.4') })).toBe('{"PublicIP":"1.2.3.4","PublicIPv6":null}');
  });

  it('vxlan, Go field order, BackendData embedded', () => {
    expect(
      marshalLeaseAttrs({
        publicIP: parseIP('192.168.64.3'),
        backendType: 'vxlan',
        backendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' },
      }),
    ).toBe('{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}');
  });

  it('dual stack with BackendV6Data', () => {
    expect(
      marshalLeaseAttrs({
        publicIP: parseIP('10.0.0.1'),
        publicIPv6: parseIP('fd00::1'),
        backendType: 'vxlan',
        backendData: { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:ff' },
        backendV6Data: { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:00' },
      }),
    ).toBe(
      '{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:00"}}',
    );
  });

  it('Go escapes <, > and & in strings', () => {
    expect(marshalLeaseAttrs({ publicIP: parseIP('1.2.3.4'), backendType: 'a<b>&c' })).toBe(
      '{"PublicIP":"1.2.3.4","PublicIPv6":null,"BackendType":"a\\u003cb\\u003e\\u0026c"}',
    );
  });

  it('parses Go values back, keys case-insensitive', () => {
    const a = parseLeaseAttrs('{"publicip":"192.168.0.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"x"}}');
    expect(formatIP(a.publicIP)).toBe('192.168.0.1');
    expect(a.backendType).toBe('vxlan');
    expect(a.backendData).toEqual({ VNI: 1, VtepMAC: 'x' });
    expect(a.publicIPv6).toBeUndefined();
    const b = parseLeaseAttrs('{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1"}');
    expect(formatIP(b.publicIPv6!)).toBe('fd00::1');
  });

  it('round-trips byte for byte', () => {
    const s = '{"PublicIP":"10.0.0.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:45"}}';
    expect(marshalLeaseAttrs(parseLeaseAttrs(s))).toBe(s);
  });

  it.each(['notjson', '[]', '{"PublicIP":"fd00::1"}', '{"PublicIP":12}', '{"PublicIP":"1.2.3.4","PublicIPv6":"1.2.3.4"}'])('rejects %s', (v) => {
    expect(() => parseLeaseAttrs(v)).toThrow();
  });
});
