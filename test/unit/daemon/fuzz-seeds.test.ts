// flannel's fuzz seed corpora as tables: pkg/subnet/fuzz_test.go FuzzParseConfig and
// FuzzParseSubnetKey, pkg/subnet/etcd/fuzz_test.go FuzzKvToIPLease, pkg/backend/vxlan/fuzz_test.go
// FuzzParseVXLANConfig. Go only asks "no panic"; here each seed must give Go's result, or Go's
// error as one of the daemon's own error kinds (TypeError/RangeError/SyntaxError, or the vxlan
// backend's decoding Error) with a message, never a JS slip such as "Cannot read properties of
// undefined". A few extra inputs whose Go outcome is known sit next to the seeds.
import { describe, expect, it } from 'vitest';
import { formatIP, formatNet } from '../../../shared/net/ip.js';
import { parseVxlanConfig } from '../../../daemon/backend/vxlan/vxlan.js';
import type { LeaseEvent } from '../../../daemon/lease.js';
import { memoryLogger } from '../../../shared/log.js';
import { type Config, checkNetworkConfig, parseConfig } from '../../../daemon/subnet/config.js';
import type { EtcdClient, KeyValue, WatchResponse } from '../../../daemon/subnet/etcd/etcd-client.js';
import { EtcdRegistry } from '../../../daemon/subnet/etcd/registry.js';
import { parseSubnetKey } from '../../../daemon/subnet/subnet-key.js';

type ErrorKind = typeof TypeError | typeof RangeError | typeof SyntaxError | typeof Error;
const JS_SLIP = /Cannot read prop|Cannot set prop|is not a function|is not iterable|undefined|Maximum call stack|Invalid array length/;

/** Runs `f`; returns its result, or the error checked to be of `kind` with a message matching `msg`. */
function outcome<T>(f: () => T): { ok: T } | { err: Error } {
  try {
    return { ok: f() };
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    return { err: e as Error };
  }
}
function expectGoError(r: { ok: unknown } | { err: Error }, kind: ErrorKind, msg: RegExp): void {
  expect(r).toHaveProperty('err');
  const err = (r as { err: Error }).err;
  expect(err).toBeInstanceOf(kind);
  expect(err.message).toMatch(msg);
  expect(err.message).not.toMatch(JS_SLIP);
}

describe('FuzzParseConfig seeds (pkg/subnet/fuzz_test.go)', () => {
  const v4 = (c: Config) => ({
    network: c.network && formatNet(c.network),
    subnetLen: c.subnetLen,
    subnetMin: c.subnetMin && formatIP(c.subnetMin),
    subnetMax: c.subnetMax && formatIP(c.subnetMax),
    enableIPv4: c.enableIPv4,
    enableIPv6: c.enableIPv6,
    backendType: c.backendType,
  });

  it.each([
    {
      seed: '{"Network":"10.0.0.0/8"}',
      parsed: { network: '10.0.0.0/8', subnetLen: 0, enableIPv4: true, enableIPv6: false, backendType: 'udp' },
      checked: { subnetLen: 24, subnetMin: '10.0.1.0', subnetMax: '10.255.255.0' },
    },
    {
      seed: '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}',
      parsed: { network: '10.0.0.0/8', subnetLen: 24, backendType: 'vxlan' },
      checked: { subnetLen: 24, subnetMin: '10.0.1.0', subnetMax: '10.255.255.0' },
    },
    {
      // parses (EnableIPv4 stays true by default), but etcd mode's check wants a v4 Network
      seed: '{"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}',
      parsed: { network: undefined, enableIPv4: true, enableIPv6: true, backendType: 'host-gw' },
      checkError: /^please define a correct Network parameter in the flannel config$/,
    },
    {
      seed: '{"Network":"10.0.0.0/8","SubnetMin":"10.0.1.0","SubnetMax":"10.0.20.0"}',
      parsed: { network: '10.0.0.0/8', subnetMin: '10.0.1.0', subnetMax: '10.0.20.0', backendType: 'udp' },
      checked: { subnetLen: 24, subnetMin: '10.0.1.0', subnetMax: '10.0.20.0' },
    },
    {
      seed: '{}',
      parsed: { network: undefined, enableIPv4: true, enableIPv6: false, backendType: 'udp' },
      checkError: /^please define a correct Network parameter in the flannel config$/,
    },
    // beyond the seeds: Go outcomes known from the code
    {
      seed: '{"network":"10.5.1.2/16","BACKEND":{"type":"VXLAN"}}', // case-insensitive keys, CIDR masked, type lower-cased
      parsed: { network: '10.5.0.0/16', backendType: 'vxlan' },
      checked: { subnetLen: 24, subnetMin: '10.5.1.0', subnetMax: '10.5.255.0' },
    },
    {
      seed: '{"Network":"10.0.0.0/8","Backend":null}', // RawMessage "null" → Type ""
      parsed: { backendType: '' },
      checked: { subnetLen: 24 },
    },
  ])('$seed', ({ seed, parsed, checked, checkError }) => {
    const r = outcome(() => parseConfig(seed));
    expect(r).toHaveProperty('ok');
    const cfg = (r as { ok: Config }).ok;
    expect(v4(cfg)).toMatchObject(parsed);
    const c = outcome(() => checkNetworkConfig(cfg));
    if (checkError) expectGoError(c, RangeError, checkError);
    else expect(v4((c as { ok: Config }).ok)).toMatchObject(checked!);
  });

  it.each([
    { seed: '', kind: SyntaxError, msg: /unexpected end of JSON input/i }, // Go: "unexpected end of JSON input"
    { seed: '{"Network":"10.0.0.0/33"}', kind: TypeError, msg: /^invalid CIDR address: 10\.0\.0\.0\/33$/ },
    { seed: '{"Network":"fc00::/8"}', kind: TypeError, msg: /^invalid IPv4 CIDR format$/ },
    { seed: '{"Network":"10.0.0.0/8","SubnetMin":"fc00::"}', kind: TypeError, msg: /^invalid IPv4 address format$/ },
    {
      seed: '{"Backend":"vxlan"}',
      kind: TypeError,
      msg: /^error decoding Backend property of config: json: cannot unmarshal string into Go value of type struct \{ Type string \}$/,
    },
    { seed: '{"EnableIPv4":"yes"}', kind: TypeError, msg: /^json: cannot unmarshal string into Go struct field Config\.EnableIPv4 of type bool$/ },
    { seed: '[]', kind: TypeError, msg: /^json: cannot unmarshal array into Go value of type subnet\.Config$/ },
    { seed: '"x"', kind: TypeError, msg: /^json: cannot unmarshal string into Go value of type subnet\.Config$/ },
  ])('$seed → Go error', ({ seed, kind, msg }) => {
    expectGoError(
      outcome(() => parseConfig(seed)),
      kind,
      msg,
    );
  });
});

describe('FuzzParseSubnetKey seeds (pkg/subnet/fuzz_test.go)', () => {
  it.each([
    { seed: '10.5.1.0-24', want: ['10.5.1.0/24', undefined] },
    { seed: '10.5.1.0-24&fc00::-64', want: ['10.5.1.0/24', 'fc00::/64'] },
    { seed: '255.255.255.255-32', want: undefined }, // bitSize 5: 32 is out of range
    { seed: 'garbage', want: undefined },
    { seed: '', want: undefined },
  ])('$seed', ({ seed, want }) => {
    const k = outcome(() => parseSubnetKey(seed));
    expect(k).toHaveProperty('ok');
    const v = (k as { ok: ReturnType<typeof parseSubnetKey> }).ok;
    expect(v && [formatNet(v.sn), v.sn6 && formatNet(v.sn6)]).toEqual(want);
  });
});

describe('FuzzKvToIPLease seeds (pkg/subnet/etcd/fuzz_test.go), through EtcdRegistry', () => {
  const NOW = 1_800_000_000_000;
  const PREFIX = '/coreos.com/network/subnets/';

  /** An EtcdClient stand-in holding one kv (lease id "7", TimeToLive `ttl`), listed and watched. */
  function registryWith(key: string, value: string, ttl: number) {
    const kv: KeyValue = { key: PREFIX + key, value, createRevision: 5, modRevision: 5, version: 1, lease: '7' };
    const client = {
      range: async () => ({ revision: 5, kvs: [kv], count: 1 }),
      leaseTimeToLive: async (id: string) => (id === '7' ? ttl : -1),
      async *watch(): AsyncGenerator<WatchResponse> {
        yield { revision: 5, created: false, canceled: false, events: [{ type: 'put', kv }] };
      },
      close() {},
    } as unknown as EtcdClient;
    const log = memoryLogger();
    return { reg: new EtcdRegistry(client, '/coreos.com/network', log, () => NOW), log };
  }

  it.each([
    {
      key: '10.5.1.0-24',
      value: '{"PublicIP":"192.168.0.1","BackendType":"vxlan"}',
      ttl: 3600,
      want: { subnet: '10.5.1.0/24', ipv6Subnet: undefined, enableIPv6: false, publicIP: '192.168.0.1', publicIPv6: undefined, backendType: 'vxlan' },
    },
    {
      key: '10.5.1.0-24&fc00::-64',
      value: '{"PublicIP":"192.168.0.1","PublicIPv6":"fc00::1"}',
      ttl: 60,
      want: { subnet: '10.5.1.0/24', ipv6Subnet: 'fc00::/64', enableIPv6: true, publicIP: '192.168.0.1', publicIPv6: 'fc00::1', backendType: undefined },
    },
  ])('$key $value → a lease expiring in $ttl s', async ({ key, value, ttl, want }) => {
    const { reg, log } = registryWith(key, value, ttl);
    const listed = await reg.getSubnets(undefined, { withTTL: true });
    const watched: LeaseEvent[] = [];
    for await (const b of reg.watchSubnets(1, new AbortController().signal)) if (b.kind === 'events') watched.push(...b.events);
    expect(watched).toHaveLength(1);
    for (const l of [listed.leases[0]!, watched[0]!.lease]) {
      expect({
        subnet: formatNet(l.subnet),
        ipv6Subnet: l.ipv6Subnet && formatNet(l.ipv6Subnet),
        enableIPv6: l.enableIPv6,
        publicIP: formatIP(l.attrs.publicIP),
        publicIPv6: l.attrs.publicIPv6 && formatIP(l.attrs.publicIPv6),
        backendType: l.attrs.backendType,
      }).toEqual(want);
      expect(l.enableIPv4).toBe(true);
    }
    expect(listed.leases).toHaveLength(1);
    expect(listed.leases[0]!.expiration).toBe(NOW + ttl * 1000); // Go: time.Now().Add(ttl s)
    expect(watched[0]!.type).toBe('added');
    expect(log.lines).toEqual([]);
  });

  it.each([
    // Go: ParseIP4 of a v6 text is an error (json.Unmarshal fails)
    { key: '10.5.1.0-24', value: '{"PublicIP":"2001:db8::1"}', ttl: 0, warn: /ignoring lease ".*10\.5\.1\.0-24": bad value: invalid PublicIP "2001:db8::1"/ },
    // Go: "failed to parse subnet key not-a-subnet"
    { key: 'not-a-subnet', value: '{}', ttl: -1, warn: /ignoring ".*\/subnets\/not-a-subnet": not a subnet key/ },
    { key: '', value: '', ttl: 0, warn: /ignoring ".*\/subnets\/": not a subnet key/ },
    // beyond the seeds: a bad value under a good key
    { key: '10.5.2.0-24', value: '', ttl: 10, warn: /ignoring lease ".*10\.5\.2\.0-24": bad value: Unexpected end of JSON input/ },
    { key: '10.5.3.0-24', value: '{"PublicIP":5}', ttl: 10, warn: /ignoring lease ".*10\.5\.3\.0-24": bad value: invalid PublicIP 5/ },
  ])('$key $value → Go error: skipped with a warning, never thrown', async ({ key, value, ttl, warn }) => {
    const { reg, log } = registryWith(key, value, ttl);
    const listed = await reg.getSubnets(undefined, { withTTL: true });
    expect(listed.leases).toEqual([]);
    const batches = [];
    for await (const b of reg.watchSubnets(1, new AbortController().signal)) batches.push(b);
    expect(batches).toEqual([{ kind: 'events', events: [], revision: 5 }]);
    expect(log.lines.length).toBe(2); // once for the listing, once for the watch event
    for (const l of log.lines) {
      expect(l).toMatch(/^W /);
      expect(l).toMatch(warn);
      expect(l).not.toMatch(JS_SLIP);
    }
  });
});

describe('FuzzParseVXLANConfig seeds (pkg/backend/vxlan/fuzz_test.go, default MTU 1500)', () => {
  /** `data` as the Backend of a network config (an empty RawMessage: no Backend at all) */
  const parse = (data: string) => parseVxlanConfig(parseConfig(data === '' ? '{}' : `{"Backend":${data}}`).backend, 1500);
  const DEFAULTS = { vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: 1500 };

  it.each([
    { seed: '{"VNI":1,"Port":8472}', want: { ...DEFAULTS, port: 8472 } },
    { seed: '{"MTU":1400,"GBP":true,"DirectRouting":true}', want: { ...DEFAULTS, mtu: 1400, gbp: true, directRouting: true } },
    { seed: '{"Mac":"00:11:22:33:44:55"}', want: DEFAULTS }, // unknown keys are ignored
    { seed: '', want: DEFAULTS },
    { seed: '{}', want: DEFAULTS },
    // beyond the seeds
    { seed: '{"Type":"vxlan","vni":7,"port":4789,"learning":true}', want: { ...DEFAULTS, vni: 7, port: 4789, learning: true } },
  ])('$seed', ({ seed, want }) => {
    const r = outcome(() => parse(seed));
    expect(r).toEqual({ ok: want });
  });

  it.each([
    { seed: '{"VNI":"x"}', msg: /^error decoding VXLAN backend config: json: cannot unmarshal string into Go struct field .*VNI of type int$/ },
    { seed: '{"VNI":1.5}', msg: /^error decoding VXLAN backend config: json: cannot unmarshal number 1\.5 into Go struct field .*VNI of type int$/ },
    { seed: '{"GBP":"true"}', msg: /^error decoding VXLAN backend config: json: cannot unmarshal string into Go struct field .*GBP of type bool$/ },
  ])('$seed → Go error', ({ seed, msg }) => {
    expectGoError(
      outcome(() => parse(seed)),
      Error,
      msg,
    );
  });
});
