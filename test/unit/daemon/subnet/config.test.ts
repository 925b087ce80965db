import { describe, expect, it } from 'vitest';
import { formatIP, formatNet } from '../../../../shared/net/ip.js';
import { checkNetworkConfig, parseAndCheckConfig, parseConfig, subnetFits } from '../../../../daemon/subnet/config.js';
import { parseNet } from '../../../../shared/net/ip.js';

describe('parseConfig / checkNetworkConfig (flannel config_test.go)', () => {
  it('TestConfigDefaults: /16 gives Min .1.0, Max .255.0, SubnetLen 24', () => {
    const c = parseAndCheckConfig('{ "network": "10.3.0.0/16" }');
    expect(formatNet(c.network!)).toBe('10.3.0.0/16');
    expect(formatIP(c.subnetMin!)).toBe('10.3.1.0');
    expect(formatIP(c.subnetMax!)).toBe('10.3.255.0');
    expect(c.subnetLen).toBe(24);
    expect(c.backendType).toBe('udp'); // Backend absent → udp (the code, not the docs)
    expect(c.enableIPv4).toBe(true);
  });

  it('TestIPv6ConfigDefaults', () => {
    const c = parseAndCheckConfig('{ "enableIPv6": true, "ipv6Network": "fc00::/48", "enableIPv4": false }');
    expect(formatIP(c.ipv6SubnetMin!)).toBe('fc00:0:0:1::');
    expect(formatIP(c.ipv6SubnetMax!)).toBe('fc00:0:0:ffff::');
    expect(c.ipv6SubnetLen).toBe(64);
    expect(c.enableIPv4).toBe(false);
  });

  it('TestConfigOverrides: values preserved by parse', () => {
    const c = parseConfig('{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.5.0", "SubnetMax": "10.3.8.0", "SubnetLen": 28 }');
    expect(formatIP(c.subnetMin!)).toBe('10.3.5.0');
    expect(formatIP(c.subnetMax!)).toBe('10.3.8.0');
    expect(c.subnetLen).toBe(28);
  });

  it('TestIPv6ConfigOverrides', () => {
    const c = parseConfig(
      '{ "EnableIPv6": true, "IPv6Network": "fc00::/48", "IPv6SubnetMin": "fc00:0:0:1::", "IPv6SubnetMax": "fc00:0:0:f::", "IPv6SubnetLen": 124 }',
    );
    expect(formatIP(c.ipv6SubnetMin!)).toBe('fc00:0:0:1::');
    expect(formatIP(c.ipv6SubnetMax!)).toBe('fc00:0:0:f::');
    expect(c.ipv6SubnetLen).toBe(124);
  });

  it('the seed config gives /20 leases between 10.10.0.0 and 10.99.0.0 with the vxlan backend', () => {
    const c = parseAndCheckConfig(
      '{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.0.0","SubnetMax":"10.99.0.0","Backend":{"Type":"vxlan","VNI":100,"Port":8472}}',
    );
    expect(c.subnetLen).toBe(20);
    expect(formatIP(c.subnetMin!)).toBe('10.10.0.0');
    expect(formatIP(c.subnetMax!)).toBe('10.99.0.0');
    expect(c.backendType).toBe('vxlan');
    expect(c.backend).toEqual({ Type: 'vxlan', VNI: 100, Port: 8472 });
  });

  it('keys are case-insensitive, the last duplicate wins, CIDRs are masked', () => {
    const c = parseConfig('{"network":"10.5.1.2/16","NETWORK":"10.6.1.2/16","backend":{"type":"VXLAN"}}');
    expect(formatNet(c.network!)).toBe('10.6.0.0/16');
    expect(c.backendType).toBe('vxlan');
  });

  it('SubnetLen default: /22 → 24, /23..28 → prefix + 2', () => {
    expect(parseAndCheckConfig('{"Network":"10.0.0.0/22"}').subnetLen).toBe(24);
    expect(parseAndCheckConfig('{"Network":"10.0.0.0/23"}').subnetLen).toBe(25);
    expect(parseAndCheckConfig('{"Network":"10.0.0.0/28"}').subnetLen).toBe(30);
  });

  it('Backend without Type gives "", "0.0.0.0" SubnetMin counts as unset', () => {
    const c = parseAndCheckConfig('{"Network":"10.3.0.0/16","SubnetMin":"0.0.0.0","Backend":{}}');
    expect(c.backendType).toBe('');
    expect(formatIP(c.subnetMin!)).toBe('10.3.1.0');
  });

  it.each([
    ['{}', 'please define a correct Network parameter in the flannel config'],
    ['{"Network":"0.0.0.0/0"}', 'please define a correct Network parameter in the flannel config'],
    ['{"Network":"10.0.0.0/8","SubnetLen":31}', 'SubnetLen must be less than /31'],
    ['{"Network":"10.0.0.0/16","SubnetLen":17}', 'network must be able to accommodate at least four subnets'],
    ['{"Network":"10.0.0.0/29"}', 'network is too small. Minimum useful network prefix is /28'],
    ['{"Network":"10.0.0.0/16","SubnetMin":"10.1.0.0"}', 'SubnetMin is not in the range of the Network'],
    ['{"Network":"10.0.0.0/16","SubnetMax":"10.1.0.0"}', 'SubnetMax is not in the range of the Network'],
    ['{"Network":"10.0.0.0/16","SubnetMin":"10.0.1.5"}', 'SubnetMin is not on a SubnetLen boundary: 10.0.1.5'],
    ['{"Network":"10.0.0.0/16","SubnetMax":"10.0.9.1"}', 'SubnetMax is not on a SubnetLen boundary: 10.0.9.1'],
    ['{"EnableIPv4":false,"EnableIPv6":true}', 'please define a correct IPv6Network parameter in the flannel config'],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":127}', 'SubnetLen must be less than /127'],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":49}', 'network must be able to accommodate at least four subnets'],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/125"}', 'IPv6Network is too small. Minimum useful network prefix is /124'],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc01::"}', 'IPv6SubnetMin is not in the range of the IPv6Network'],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMax":"fc01::"}', 'IPv6SubnetMax is not in the range of the IPv6Network'],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00::1"}', 'IPv6SubnetMin is not on a SubnetLen boundary: fc00::1'],
    ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMax":"fc00::1"}', 'IPv6SubnetMax is not on a SubnetLen boundary: fc00::1'],
  ])('%s → %s', (text, msg) => {
    expect(() => parseAndCheckConfig(text)).toThrow(msg);
    try {
      parseAndCheckConfig(text);
    } catch (e) {
      expect((e as Error).message).toBe(msg);
    }
  });

  it.each([
    ['{"Network":"fc00::/48"}', 'invalid IPv4 CIDR format'],
    ['{"Network":"10.0.0.0/16","SubnetMin":"fc00::"}', 'invalid IPv4 address format'],
    ['{"Network":"nope"}', 'invalid CIDR address: nope'],
    ['{"Network":"10.0.0.0/16","Backend":"vxlan"}', 'error decoding Backend property of config'],
    ['{"Network":"10.0.0.0/16","SubnetLen":"24"}', 'json: cannot unmarshal string into Go struct field Config.SubnetLen of type uint'],
    ['{"Network":"10.0.0.0/16","EnableIPv4":"yes"}', 'json: cannot unmarshal string into Go struct field Config.EnableIPv4 of type bool'],
    ['', 'failed to parse network config'],
    ['[]', 'cannot unmarshal array'],
  ])('parse error %s → %s', (text, msg) => {
    expect(() => parseConfig(text)).toThrow(msg);
  });

  // encoding/json's UnmarshalTypeError: the JSON kind is `bool`, and a number that does not fit an
  // integer field is named with its literal
  it.each([
    ['{"Network":"10.0.0.0/16","SubnetLen":true}', 'json: cannot unmarshal bool into Go struct field Config.SubnetLen of type uint'],
    ['{"Network":"10.0.0.0/16","SubnetLen":-1}', 'json: cannot unmarshal number -1 into Go struct field Config.SubnetLen of type uint'],
    ['{"Network":"10.0.0.0/16","IPv6SubnetLen":64.5}', 'json: cannot unmarshal number 64.5 into Go struct field Config.IPv6SubnetLen of type uint'],
    ['{"Network":true}', 'json: cannot unmarshal bool into Go struct field Config.Network of type ip.IP4Net'],
    ['{"Network":"10.0.0.0/16","Backend":false}', 'error decoding Backend property of config: json: cannot unmarshal bool into Go value of type struct { Type string }'],
  ])('type error worded as Go: %s', (text, msg) => {
    let err: unknown;
    try {
      parseConfig(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toBe(msg);
  });

  it('Backend: absent is udp, null (a json.RawMessage keeps it) is no type, the last of differently cased keys wins', () => {
    expect(parseConfig('{"Network":"10.0.0.0/16"}').backendType).toBe('udp');
    expect(parseConfig('{"Network":"10.0.0.0/16","Backend":null}').backendType).toBe('');
    expect(parseConfig('{"Network":"10.0.0.0/16","Backend":{"Type":"vxlan"},"backend":null}').backendType).toBe('');
    expect(parseConfig('{"Network":"10.0.0.0/16","backend":null,"Backend":{"Type":"VXLAN"}}').backendType).toBe('vxlan');
  });

  it('a Min above Max is accepted (Go has no such check)', () => {
    expect(() => parseAndCheckConfig('{"Network":"10.0.0.0/16","SubnetMin":"10.0.9.0","SubnetMax":"10.0.2.0"}')).not.toThrow();
  });

  it('subnetFits checks range and prefix', () => {
    const c = checkNetworkConfig(parseConfig('{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.0","SubnetMax":"10.3.25.0"}'));
    expect(subnetFits(c, parseNet('10.3.6.0/24'), undefined)).toBe(true);
    expect(subnetFits(c, parseNet('10.3.31.0/24'), undefined)).toBe(false);
    expect(subnetFits(c, parseNet('10.3.6.0/25'), undefined)).toBe(false);
    expect(subnetFits(c, parseNet('10.3.6.0/24'), parseNet('fc00::/64'))).toBe(false);
  });
});
