// The delegate config against the upstream expectations (flannel-io/cni-plugin flannel_linux_test.go).
import { describe, expect, it } from 'vitest';
import { buildDelegateConf, getDelegateIPAM, parseRoutes } from '../../../../plugins/flannel/delegate.js';
import { parseFlannelNetConf } from '../../../../plugins/flannel/netconf.js';
import { parseSubnetEnv } from '../../../../plugins/flannel/subnet-env.js';

const ENV = {
  v4: 'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n',
  two: 'FLANNEL_NETWORK=10.1.0.0/16,192.168.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n',
  v6: 'FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n',
  dual: 'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n',
};
const env = (k: keyof typeof ENV) => parseSubnetEnv(ENV[k], 'subnet.env');
const conf = (extra: object = {}) => parseFlannelNetConf(JSON.stringify({ name: 'cni-flannel', type: 'flannel', subnetFile: '/x', dataDir: '/y', ...extra }));

describe('buildDelegateConf (lifecycle expectations of flannel_linux_test.go)', () => {
  it('IPv4: exactly the bytes upstream saves (compact, sorted, no cniVersion when the input has none)', () => {
    const d = buildDelegateConf(conf(), env('v4'));
    expect(d.bytes).toBe(
      '{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}',
    );
    expect(d.type).toBe('bridge');
  });

  it('two networks: one route per network, in order', () => {
    const d = JSON.parse(buildDelegateConf(conf(), env('two')).bytes);
    expect(d.ipam.routes).toEqual([{ dst: '10.1.0.0/16' }, { dst: '192.168.0.0/16' }]);
    expect(d.ipam.ranges).toEqual([[{ subnet: '10.1.17.0/24' }]]);
  });

  it('IPv6', () => {
    const d = JSON.parse(buildDelegateConf(conf(), env('v6')).bytes);
    expect(d.ipam).toEqual({ ranges: [[{ subnet: 'fc00::/64' }]], routes: [{ dst: 'fc00::/48' }], type: 'host-local' });
  });

  it('dual stack: v4 first in ranges and routes', () => {
    const d = JSON.parse(buildDelegateConf(conf(), env('dual')).bytes);
    expect(d.ipam.ranges).toEqual([[{ subnet: '10.1.17.0/24' }], [{ subnet: 'fc00::/64' }]]);
    expect(d.ipam.routes).toEqual([{ dst: '10.1.0.0/16' }, { dst: 'fc00::/48' }]);
  });

  it('kube-flannel delegate keys, cniVersion copied, ipMasq = !FLANNEL_IPMASQ (bytes captured from the Go plugin)', () => {
    const kube = { cniVersion: '1.0.0', name: 'cbr0', delegate: { hairpinMode: true, isDefaultGateway: true } };
    const v4 = parseSubnetEnv('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n', 'f');
    expect(buildDelegateConf(conf(kube), v4).bytes).toBe(
      '{"cniVersion":"1.0.0","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}',
    );
    const dual = parseSubnetEnv(
      'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
      'f',
    );
    expect(buildDelegateConf(conf(kube), dual).bytes).toBe(
      '{"cniVersion":"1.0.0","hairpinMode":true,"ipMasq":true,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]],"routes":[{"dst":"10.244.0.0/16"},{"dst":"fd00:10:244::/56"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}',
    );
  });

  it('user delegate keys win over flannel defaults; isGateway only for bridge; runtimeConfig forwarded', () => {
    const d = JSON.parse(
      buildDelegateConf(conf({ delegate: { ipMasq: true, mtu: 1400, isGateway: false, bridge: 'mynet0' }, runtimeConfig: { mac: '02:00:00:00:00:01' } }), env('v4')).bytes,
    );
    expect(d).toMatchObject({ ipMasq: true, mtu: 1400, isGateway: false, bridge: 'mynet0', runtimeConfig: { mac: '02:00:00:00:00:01' } });
    const ipvlan = JSON.parse(buildDelegateConf(conf({ delegate: { type: 'ipvlan', master: 'eth0' } }), env('v4')).bytes);
    expect(ipvlan.type).toBe('ipvlan');
    expect(ipvlan).not.toHaveProperty('isGateway');
  });

  it('rejects a delegate with a non-string type, a name or an ipam', () => {
    expect(() => buildDelegateConf(conf({ delegate: { type: 1 } }), env('v4'))).toThrow("'delegate' dictionary, if present, must have (string) 'type' field");
    expect(() => buildDelegateConf(conf({ delegate: { name: 'x' } }), env('v4'))).toThrow("'delegate' dictionary must not have 'name' field, it'll be set by flannel");
    expect(() => buildDelegateConf(conf({ delegate: { ipam: {} } }), env('v4'))).toThrow("'delegate' dictionary must not have 'ipam' field, it'll be set by flannel");
  });
});

describe('getDelegateIPAM (input ipam overrides)', () => {
  const INPUT = { type: 'my-ipam', 'unknown-param': 'unknown-value', routes: [{ dst: '10.96.0.0/12' }, { dst: '192.168.244.0/24', gw: '10.1.17.20' }] };

  it.each([
    ['v4', [[{ subnet: '10.1.17.0/24' }]], [{ dst: '10.1.0.0/16' }]],
    ['v6', [[{ subnet: 'fc00::/64' }]], [{ dst: 'fc00::/48' }]],
    ['dual', [[{ subnet: '10.1.17.0/24' }], [{ subnet: 'fc00::/64' }]], [{ dst: '10.1.0.0/16' }, { dst: 'fc00::/48' }]],
  ] as const)('%s: keeps keys and type, appends flannel routes, replaces ranges', (stack, ranges, extra) => {
    const { map } = getDelegateIPAM(conf({ ipam: INPUT }), env(stack));
    expect(map).toEqual({ ...INPUT, ranges, routes: [...INPUT.routes, ...extra] });
  });

  it('defaults the type to host-local', () => {
    const { type: _, ...noType } = INPUT;
    expect(getDelegateIPAM(conf({ ipam: noType }), env('v4')).map.type).toBe('host-local');
  });

  it('two networks with type host-local and no routes', () => {
    expect(getDelegateIPAM(conf({ ipam: { type: 'host-local' } }), env('two')).map.routes).toEqual([{ dst: '10.1.0.0/16' }, { dst: '192.168.0.0/16' }]);
  });

  it('input ranges are replaced, other keys such as dataDir pass through', () => {
    const { map } = getDelegateIPAM(conf({ ipam: { ranges: [[{ subnet: '1.2.3.0/24' }]], dataDir: '/tmp/ipam' } }), env('v4'));
    expect(map).toEqual({ type: 'host-local', dataDir: '/tmp/ipam', ranges: [[{ subnet: '10.1.17.0/24' }]], routes: [{ dst: '10.1.0.0/16' }] });
  });

  it('routes are types.Route: case-insensitive keys, Go text for IPs, struct field order', () => {
    expect(JSON.stringify(parseRoutes([{ Priority: 5, GW: '10.0.0.1', DST: '10.96.0.1/12', table: 0 }]))).toBe('[{"dst":"10.96.0.1/12","gw":"10.0.0.1","priority":5,"table":0}]');
    expect(parseRoutes([{ dst: '2001:DB8:0:0::/64' }])).toEqual([{ dst: '2001:db8::/64' }]);
  });

  it('bad routes are wrapped as upstream wraps them', () => {
    expect(() => buildDelegateConf(conf({ ipam: { routes: 'x' } }), env('v4'))).toThrow(
      'failed to assemble Delegate IPAM: failed to read IPAM routes: failed to parse ipam.routes: json: cannot unmarshal string into Go value of type []types.Route',
    );
    expect(() => buildDelegateConf(conf({ ipam: { routes: [{ dst: 'nope' }] } }), env('v4'))).toThrow('failed to parse ipam.routes: invalid CIDR address: nope');
    expect(() => buildDelegateConf(conf({ ipam: { routes: [{ dst: '10.0.0.0/8', gw: 'x' }] } }), env('v4'))).toThrow('failed to parse ipam.routes: invalid IP address: x');
  });
});

describe('parseFlannelNetConf (loadFlannelNetConf)', () => {
  it('given vs default subnetFile and dataDir', () => {
    expect(conf()).toMatchObject({ subnetFile: '/x', dataDir: '/y' });
    const d = parseFlannelNetConf('{"name":"n","type":"flannel"}');
    expect(d).toMatchObject({ subnetFile: '/run/flannel/subnet.env', dataDir: '/var/lib/cni/flannel', cniVersion: '' });
  });

  it('keys are case-insensitive; wrong types are wrapped unmarshal errors', () => {
    expect(parseFlannelNetConf('{"name":"n","SubnetFile":"/a","DATADIR":"/b"}')).toMatchObject({ subnetFile: '/a', dataDir: '/b' });
    expect(() => parseFlannelNetConf('{"name":"n","delegate":"x"}')).toThrow(/^failed to load flannel netconf file: failed to load netconf: json: cannot unmarshal string into Go struct field/);
    expect(() => parseFlannelNetConf('{')).toThrow('failed to load flannel netconf file: failed to load netconf: unexpected end of JSON input');
  });
});
