import { describe, expect, it } from 'vitest';
import { formatIP } from '../../../../shared/net/ip.js';
import { loadIPAMConfig } from '../../../../plugins/host-local/netconf.js';
import { formatRangeSet } from '../../../../plugins/host-local/range-set.js';

const conf = (ipam: unknown, extra: Record<string, unknown> = {}, cniVersion = '0.3.1'): string =>
  JSON.stringify({ cniVersion, name: 'mynet', ipam, ...extra });
const load = (text: string, envArgs = '') => loadIPAMConfig(Buffer.from(text), envArgs);

describe('loadIPAMConfig (config_test.go)', () => {
  it('turns an old-style config into one range set, keeping start, end and gateway', () => {
    const { ipam, cniVersion } = load(
      conf({ type: 'host-local', subnet: '10.1.2.0/24', rangeStart: '10.1.2.9', rangeEnd: '10.1.2.20', gateway: '10.1.2.30', dataDir: '/d' }),
    );
    expect(cniVersion).toBe('0.3.1');
    expect(ipam.name).toBe('mynet');
    expect(ipam.dataDir).toBe('/d');
    expect(ipam.ranges.map(formatRangeSet)).toEqual(['10.1.2.9-10.1.2.20']);
    expect(formatIP(ipam.ranges[0]![0]!.gateway)).toBe('10.1.2.30');
  });

  it('orders range sets: runtime ipRanges, then the legacy range, then ranges', () => {
    const { ipam } = load(
      conf(
        { type: 'host-local', subnet: '10.1.0.0/24', ranges: [[{ subnet: '10.2.0.0/24' }], [{ subnet: '2001:db8::/64' }]] },
        { runtimeConfig: { ipRanges: [[{ subnet: '10.3.0.0/24' }]] } },
      ),
    );
    expect(ipam.ranges.map(formatRangeSet)).toEqual([
      '10.3.0.1-10.3.0.254',
      '10.1.0.1-10.1.0.254',
      '10.2.0.1-10.2.0.254',
      '2001:db8::1-2001:db8::ffff:ffff:ffff:ffff',
    ]);
  });

  it('reads keys case-insensitively, as Go does', () => {
    const { ipam } = load('{"cniVersion":"0.3.1","NAME":"n2","IPAM":{"Type":"host-local","Subnet":"10.1.2.0/24","DATADIR":"/x"}}');
    expect([ipam.name, ipam.type, ipam.dataDir, formatRangeSet(ipam.ranges[0]!)]).toEqual(['n2', 'host-local', '/x', '10.1.2.1-10.1.2.254']);
  });

  it('collects requested IPs from CNI_ARGS, args.cni.ips and runtimeConfig.ips in that order', () => {
    const { ipam } = load(
      conf({ type: 'host-local', subnet: '10.1.2.0/24' }, { args: { cni: { ips: ['10.1.2.11', '10.1.2.12/24'] } }, runtimeConfig: { ips: ['192.168.0.5/24', '2001:db8::1/64'] } }),
      'IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.2.10/24',
    );
    expect(ipam.ipArgs.map(formatIP)).toEqual(['10.1.2.10', '10.1.2.11', '10.1.2.12', '192.168.0.5', '2001:db8::1']);
  });

  it('passes routes through, dst as written', () => {
    const { ipam } = load(conf({ type: 'host-local', subnet: '10.1.2.0/24', routes: [{ dst: '0.0.0.0/0' }, { dst: '10.0.0.5/8', gw: '10.1.2.1' }, { gw: '1.1.1.1' }] }));
    expect(ipam.routes).toEqual([{ dst: '0.0.0.0/0' }, { dst: '10.0.0.5/8', gw: '10.1.2.1' }, { dst: '<nil>', gw: '1.1.1.1' }]);
  });

  // Messages captured from the Go reference (/usr/lib/cni/host-local, plugins 1.1.1).
  it.each([
    [conf({ type: 'host-local', subnet: 5 }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.subnet of type string'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', rangeStart: 5 }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.rangeStart of type net.IP'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', gateway: 'x' }), 'invalid IP address: x'],
    [conf({ type: 'host-local', ranges: [[{ subnet: '10.0.0.0/24', rangeEnd: 5 }]] }), 'json: cannot unmarshal number into Go struct field Range.ipam.ranges.rangeEnd of type net.IP'],
    [conf({ type: 'host-local', ranges: [[{ rangeEnd: '10.0.0.5' }]] }), 'invalid range set 0: IP <nil> not v4 nor v6'],
    [conf({ type: 'host-local', ranges: [{ subnet: '10.0.0.0/24' }] }), 'json: cannot unmarshal object into Go struct field IPAMConfig.ipam.ranges of type allocator.RangeSet'],
    [conf({ type: 'host-local', ranges: 5 }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.ranges of type []allocator.RangeSet'],
    [conf({ type: 'host-local', ranges: [[5]] }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.ranges of type allocator.Range'],
    [conf({ type: 'host-local', ranges: [[{ subnet: 5 }]] }), 'json: cannot unmarshal number into Go struct field Range.ipam.ranges.subnet of type string'],
    [conf({ type: 'host-local', ranges: [[{ subnet: 'x' }]] }), 'invalid CIDR address: x'],
    [conf({ type: 'host-local', subnet: '' }), 'invalid CIDR address: '],
    [conf({ type: 'host-local', subnet: null }), 'invalid CIDR address: '],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', dataDir: 5 }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.dataDir of type string'],
    [conf({ type: 5, subnet: '10.0.0.0/24' }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.type of type string'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', routes: 5 }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.routes of type []*types.Route'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', routes: [5] }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.routes of type types.route'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', routes: [{ dst: 5 }] }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.routes of type string'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', routes: [{ dst: 'x' }] }), 'invalid CIDR address: x'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', gw: 5 }] }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.routes of type net.IP'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', routes: [{ dst: '0.0.0.0/0', gw: 'x' }] }), 'invalid IP address: x'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', resolvConf: 5 }), 'json: cannot unmarshal number into Go struct field IPAMConfig.ipam.resolvConf of type string'],
    [conf(5), 'json: cannot unmarshal number into Go struct field Net.ipam of type allocator.IPAMConfig'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24' }, { runtimeConfig: { ips: ['x'] } }), 'invalid IP address x'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24' }, { runtimeConfig: { ips: [''] } }), 'cannot understand ip: IP <nil> not v4 nor v6'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24' }, { runtimeConfig: { ips: 5 } }), 'json: cannot unmarshal number into Go struct field .runtimeConfig.ips of type []*ip.IP'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24' }, { runtimeConfig: { ips: [5] } }), 'json: cannot unmarshal number into Go struct field .runtimeConfig.ips of type *ip.IP'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24' }, { runtimeConfig: { ipRanges: 5 } }), 'json: cannot unmarshal number into Go struct field .runtimeConfig.ipRanges of type []allocator.RangeSet'],
    [
      conf({ type: 'host-local', subnet: '10.0.0.0/24' }, { runtimeConfig: { ipRanges: [[{ subnet: '10.9.0.0/24', gateway: 5 }]] } }),
      'json: cannot unmarshal number into Go struct field Range.runtimeConfig.ipRanges.gateway of type net.IP',
    ],
    [
      conf({ type: 'host-local', subnet: '10.0.0.0/24' }, { runtimeConfig: 5 }),
      'json: cannot unmarshal number into Go struct field Net.runtimeConfig of type struct { IPRanges []allocator.RangeSet "json:\\"ipRanges,omitempty\\""; IPs []*ip.IP "json:\\"ips,omitempty\\"" }',
    ],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24' }, { args: { cni: { ips: [5] } } }), 'json: cannot unmarshal number into Go struct field IPAMArgs.args.cni.ips of type *ip.IP'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24' }, { args: { cni: 5 } }), 'json: cannot unmarshal number into Go struct field .args.cni of type allocator.IPAMArgs'],
    [
      conf({ type: 'host-local', subnet: '10.0.0.0/24' }, { args: 5 }),
      'json: cannot unmarshal number into Go struct field Net.args of type struct { A *allocator.IPAMArgs "json:\\"cni\\"" }',
    ],
    [conf({ type: 'host-local', subnet: '10.0.0.9/24', rangeStart: '10.0.0.9', rangeEnd: '10.0.0.3' }), 'invalid range set 0: Network has host bits set. For a subnet mask of length 24 the network address is 10.0.0.0'],
    [conf({ type: 'host-local', subnet: '10.0.0.0/24', rangeStart: '10.0.0.9', rangeEnd: '10.0.0.3' }), 'invalid range set 0: RangeStart 10.0.0.9 not in network 10.0.0.0/24'],
    [conf({ type: 'host-local', subnet: '10.0.0.1/31' }), 'invalid range set 0: Network 10.0.0.1/31 too small to allocate from'],
    [conf({ type: 'host-local', ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.0.1.0/24' }]] }, {}, '0.2.0'), 'CNI version 0.2.0 does not support more than 1 address per family'],
    [conf({ type: 'host-local', ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.0.0.0/25' }]] }), 'range set 0 overlaps with 1'],
    [conf({ type: 'host-local', ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: '10.0.0.0/25' }]] }), 'invalid range set 0: subnets 10.0.0.1-10.0.0.254 and 10.0.0.1-10.0.0.126 overlap'],
    [conf({ type: 'host-local', ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }]] }), 'invalid range set 0: mixed address families'],
    [conf({ type: 'host-local', ranges: [[]] }), 'invalid range set 0: empty range set'],
    [conf({ type: 'host-local' }), 'no IP ranges specified'],
    [JSON.stringify({ cniVersion: '0.3.1', name: 'n' }), "IPAM config missing 'ipam' key"],
  ])('case %# rejects with Go message: %s', (text, msg) => {
    expect(() => load(text)).toThrow(msg);
    try {
      load(text);
    } catch (err) {
      expect((err as Error).message).toBe(msg);
    }
  });

  it.each([
    ['IP=bad', 'ARGS: error parsing value of pair "IP=bad": invalid IP address bad'],
    ['K8S_POD_NAME=x', 'ARGS: unknown args ["K8S_POD_NAME=x"]'],
    ['junk', 'ARGS: invalid pair "junk"'],
  ])('rejects CNI_ARGS %s', (args, msg) => {
    expect(() => load(conf({ type: 'host-local', subnet: '10.0.0.0/24' }), args)).toThrow(new Error(msg));
  });
});
