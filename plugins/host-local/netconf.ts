// host-local's view of its stdin (backend/allocator/config.go LoadIPAMConfig). IPAM plugins receive the
// calling plugin's whole config; we read `name`, `cniVersion`, `ipam`, `runtimeConfig.{ipRanges,ips}` and
// `args.cni.ips`, plus CNI_ARGS `IP=`. Range sets come out in Go's order: runtime ipRanges, then the
// legacy single range (ipam.subnet/rangeStart/rangeEnd/gateway), then ipam.ranges. Type mismatches and
// invalid values produce Go's messages (captured from the reference binary), which surface as code 999.
import { parseCniArgs } from '../../shared/cni/args.js';
import { goQuote } from '../../shared/go/quote.js';
import { GoJsonError, GoStruct, isObject, jsonTypeName, parseJson } from '../../shared/go/json.js';
import type { Route } from '../../shared/cni/types.js';
import { versionAtLeast } from '../../shared/cni/version.js';
import { type IP, formatIP, tryParseCIDR, tryParseIP } from '../../shared/net/ip.js';
import type { RangeSpec } from './range.js';
import { type RangeSet, canonicalizeRangeSet, rangeSetsOverlap } from './range-set.js';

export const DEFAULT_DATA_DIR = '/var/lib/cni/networks';

export interface IPAMConfig {
  /** the network name: the store directory under dataDir */
  name: string;
  type: string;
  routes: Route[];
  /** as configured; empty means DEFAULT_DATA_DIR */
  dataDir: string;
  resolvConf: string;
  ranges: RangeSet[];
  /** requested IPs from CNI_ARGS, args.cni.ips and runtimeConfig.ips, in that order */
  ipArgs: IP[];
}

export interface LoadedConfig {
  ipam: IPAMConfig;
  cniVersion: string;
}

/** A Go-worded type mismatch for a value that is not a struct field of its own (array items). */
function mismatch(v: unknown, path: string, goType: string): GoJsonError {
  return new GoJsonError(`json: cannot unmarshal ${jsonTypeName(v)} into Go struct field ${path} of type ${goType}`);
}

/**
 * A string field. (GoStruct.string words a number as `number 5`, which Go does only for numbers that
 * overflow an int field; for a string field Go says just `number`.)
 */
function str(s: GoStruct, key: string): string | undefined {
  const v = s.raw(key);
  if (v === undefined || typeof v === 'string') return v;
  throw mismatch(v, `${s.structName}.${key}`, 'string');
}

/** Go's net.IP.UnmarshalText: empty string = absent. */
function parseNetIP(s: GoStruct, key: string): IP | undefined {
  const v = s.raw(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw mismatch(v, `${s.structName}.${key}`, 'net.IP');
  if (v === '') return undefined;
  const ip = tryParseIP(v);
  if (ip === undefined) throw new Error(`invalid IP address: ${v}`);
  return ip;
}

/** types.IPNet.UnmarshalJSON: a string parsed by net.ParseCIDR, keeping the address as written. */
function parseIPNet(s: GoStruct, key: string): { ip: IP; prefix: number } | undefined {
  const present = Object.keys(s.obj).some((k) => k.toLowerCase() === key.toLowerCase());
  if (!present) return undefined;
  const v = s.raw(key) ?? ''; // Go calls UnmarshalJSON for null too: it reads as ""
  if (typeof v !== 'string') throw mismatch(v, `${s.structName}.${key}`, 'string');
  const c = tryParseCIDR(v);
  if (c === undefined) throw new Error(`invalid CIDR address: ${v}`);
  const subnet = { ip: c.ip, prefix: c.net.prefix };
  if (c.ip.family === 4 && v.includes(':')) mappedSubnets.add(subnet);
  return subnet;
}

/**
 * Subnets written as IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`): net.ParseCIDR takes them (the IPv4
 * network 10.0.0.0/8, which is how a route dst reads), but Range.Canonicalize then finds a 4-byte
 * address under a 16-byte mask and refuses the range. So do we, with Go's words.
 */
const mappedSubnets = new WeakSet<object>();

function canonicalizeChecked(spec: RangeSpec[]): RangeSet {
  const mapped = spec.findIndex((r) => r.subnet !== undefined && mappedSubnets.has(r.subnet));
  if (mapped < 0) return canonicalizeRangeSet(spec);
  if (mapped > 0) canonicalizeRangeSet(spec.slice(0, mapped)); // an earlier range's error comes first
  throw new Error('IPNet IP and Mask version mismatch');
}

function parseRange(raw: unknown, path: string): RangeSpec {
  if (!isObject(raw)) throw mismatch(raw, path, 'allocator.Range');
  const s = new GoStruct(raw, `Range.${path.slice(path.indexOf('.') + 1)}`);
  const spec: RangeSpec = {};
  const rangeStart = parseNetIP(s, 'rangeStart');
  const rangeEnd = parseNetIP(s, 'rangeEnd');
  const subnet = parseIPNet(s, 'subnet');
  const gateway = parseNetIP(s, 'gateway');
  if (rangeStart) spec.rangeStart = rangeStart;
  if (rangeEnd) spec.rangeEnd = rangeEnd;
  if (subnet) spec.subnet = subnet;
  if (gateway) spec.gateway = gateway;
  return spec;
}

/** `[]RangeSet` at `path` (e.g. `IPAMConfig.ipam.ranges`). */
function parseRangeSets(s: GoStruct, key: string): RangeSpec[][] {
  const path = `${s.structName}.${key}`;
  const v = s.raw(key);
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw mismatch(v, path, '[]allocator.RangeSet');
  return v.map((set) => {
    if (set === null) return [];
    if (!Array.isArray(set)) throw mismatch(set, path, 'allocator.RangeSet');
    return set.map((r) => parseRange(r, path));
  });
}

/** `[]*ip.IP` (pkg/ip): `ip` or `ip/prefix`; an empty string is the zero IP. */
function parseIPList(s: GoStruct, key: string): Array<IP | undefined> {
  const path = `${s.structName}.${key}`;
  const v = s.raw(key);
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw mismatch(v, path, '[]*ip.IP');
  return v.map((item) => {
    if (item === null || item === '') return undefined;
    if (typeof item !== 'string') throw mismatch(item, path, '*ip.IP');
    const ip = item.includes('/') ? tryParseCIDR(item)?.ip : tryParseIP(item);
    if (ip === undefined) throw new Error(`invalid IP address ${item}`);
    return ip;
  });
}

/** []*types.Route: dst kept as written (`10.0.0.5/8` stays so), gw optional. */
function parseRoutes(s: GoStruct, key: string): Route[] {
  const path = `${s.structName}.${key}`;
  const v = s.raw(key);
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw mismatch(v, path, '[]*types.Route');
  const out: Route[] = [];
  for (const item of v) {
    if (item === null) continue;
    if (!isObject(item)) throw mismatch(item, path, 'types.route');
    const r = new GoStruct(item, path);
    const dstRaw = r.raw('dst');
    let dst = '<nil>';
    if (Object.keys(item).some((k) => k.toLowerCase() === 'dst')) {
      const text = dstRaw ?? '';
      if (typeof text !== 'string') throw mismatch(text, path, 'string');
      const c = tryParseCIDR(text);
      if (c === undefined) throw new Error(`invalid CIDR address: ${text}`);
      dst = `${formatIP(c.ip)}/${c.net.prefix}`;
    }
    const route: Route = { dst };
    const gwRaw = r.raw('gw');
    if (gwRaw !== undefined) {
      if (typeof gwRaw !== 'string') throw mismatch(gwRaw, path, 'net.IP');
      if (gwRaw !== '') {
        const gw = tryParseIP(gwRaw);
        if (gw === undefined) throw new Error(`invalid IP address: ${gwRaw}`);
        route.gw = formatIP(gw);
      }
    }
    for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
      const n = r.raw(k);
      if (n === undefined) continue;
      if (typeof n !== 'number' || !Number.isInteger(n)) throw mismatch(n, path, '*int');
      route[k] = n;
    }
    out.push(route);
  }
  return out;
}

const RUNTIME_CONFIG_TYPE = 'struct { IPRanges []allocator.RangeSet "json:\\"ipRanges,omitempty\\""; IPs []*ip.IP "json:\\"ips,omitempty\\"" }';
const ARGS_TYPE = 'struct { A *allocator.IPAMArgs "json:\\"cni\\"" }';

/** LoadIPAMConfig: parses and validates; throws Error/GoJsonError with Go's text. */
export function loadIPAMConfig(stdin: Buffer | string, envArgs: string): LoadedConfig {
  const net = GoStruct.from(parseJson(stdin), 'allocator.Net');
  const name = str(net, 'name') ?? '';
  const cniVersion = str(net, 'cniVersion') ?? '';
  const ipamRaw = net.raw('ipam');
  if (ipamRaw !== undefined && !isObject(ipamRaw)) throw mismatch(ipamRaw, 'Net.ipam', 'allocator.IPAMConfig');
  const ipam = ipamRaw === undefined ? undefined : new GoStruct(ipamRaw, 'IPAMConfig.ipam');

  // runtimeConfig and args are decoded (and type-checked) whether or not ipam is present.
  const rcRaw = net.raw('runtimeConfig');
  if (rcRaw !== undefined && !isObject(rcRaw)) throw mismatch(rcRaw, 'Net.runtimeConfig', RUNTIME_CONFIG_TYPE);
  const rc = new GoStruct(isObject(rcRaw) ? rcRaw : {}, '.runtimeConfig');
  const argsRaw = net.raw('args');
  if (argsRaw !== undefined && !isObject(argsRaw)) throw mismatch(argsRaw, 'Net.args', ARGS_TYPE);
  const cniRaw = isObject(argsRaw) ? new GoStruct(argsRaw, '.args').raw('cni') : undefined;
  if (cniRaw !== undefined && !isObject(cniRaw)) throw mismatch(cniRaw, '.args.cni', 'allocator.IPAMArgs');
  const cniArgs = new GoStruct(isObject(cniRaw) ? cniRaw : {}, 'IPAMArgs.args.cni');

  let legacy: RangeSpec | undefined;
  let ipamRanges: RangeSpec[][] = [];
  let routes: Route[] = [];
  let dataDir = '';
  let resolvConf = '';
  let type = '';
  if (ipam) {
    const rangeStart = parseNetIP(ipam, 'rangeStart');
    const rangeEnd = parseNetIP(ipam, 'rangeEnd');
    const subnet = parseIPNet(ipam, 'subnet');
    const gateway = parseNetIP(ipam, 'gateway');
    str(ipam, 'Name');
    type = str(ipam, 'type') ?? '';
    routes = parseRoutes(ipam, 'routes');
    dataDir = str(ipam, 'dataDir') ?? '';
    resolvConf = str(ipam, 'resolvConf') ?? '';
    ipamRanges = parseRangeSets(ipam, 'ranges');
    if (subnet) {
      legacy = { subnet };
      if (rangeStart) legacy.rangeStart = rangeStart;
      if (rangeEnd) legacy.rangeEnd = rangeEnd;
      if (gateway) legacy.gateway = gateway;
    }
  }
  const runtimeRanges = parseRangeSets(rc, 'ipRanges');
  const runtimeIPs = parseIPList(rc, 'ips');
  const argIPs = parseIPList(cniArgs, 'ips');

  if (!ipam) throw new Error("IPAM config missing 'ipam' key");

  const requested: Array<IP | undefined> = [];
  if (envArgs !== '') {
    const env = parseCniArgs(envArgs, ['IP']);
    const text = env.get('IP');
    if (text !== undefined && text !== '') {
      const ip = text.includes('/') ? tryParseCIDR(text)?.ip : tryParseIP(text);
      if (ip === undefined) throw new Error(`ARGS: error parsing value of pair ${goQuote(`IP=${text}`)}: invalid IP address ${text}`);
      requested.push(ip);
    }
  }
  requested.push(...argIPs, ...runtimeIPs);
  const ipArgs: IP[] = requested.map((ip) => {
    if (ip === undefined) throw new Error('cannot understand ip: IP <nil> not v4 nor v6');
    return ip;
  });

  const specs: RangeSpec[][] = [...runtimeRanges, ...(legacy ? [[legacy]] : []), ...ipamRanges];
  if (specs.length === 0) throw new Error('no IP ranges specified');

  const ranges: RangeSet[] = [];
  let numV4 = 0;
  let numV6 = 0;
  specs.forEach((spec, i) => {
    let set: RangeSet;
    try {
      set = canonicalizeChecked(spec);
    } catch (err) {
      throw new Error(`invalid range set ${i}: ${(err as Error).message}`);
    }
    if (set[0]!.subnet.family === 4) numV4++;
    else numV6++;
    ranges.push(set);
  });
  if ((numV4 > 1 || numV6 > 1) && !atLeast030(cniVersion)) {
    throw new Error(`CNI version ${cniVersion} does not support more than 1 address per family`);
  }
  for (let i = 0; i < ranges.length - 1; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      if (rangeSetsOverlap(ranges[i]!, ranges[j]!)) throw new Error(`range set ${i} overlaps with ${j}`);
    }
  }
  return { ipam: { name, type, routes, dataDir, resolvConf, ranges, ipArgs }, cniVersion };
}

/** version.GreaterThanOrEqualTo(v, "0.3.0"), false when v does not parse (Go ignores the error). */
function atLeast030(v: string): boolean {
  try {
    return versionAtLeast(v, '0.3.0');
  } catch {
    return false;
  }
}
