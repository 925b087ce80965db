// The network config stored at <etcd-prefix>/config (pkg/subnet/config.go): parseConfig decodes it
// like Go's encoding/json (case-insensitive keys, CIDRs masked, EnableIPv4 defaulting to true) and
// checkNetworkConfig fills in the defaults and validates, with Go's exact error strings.
import {
  type IP,
  type IPNet,
  bitsOf,
  formatIP,
  maskOf,
  netContains,
  netSize,
  parseCIDR,
  parseIP,
} from '../../shared/net/ip.js';
import { goBool, goField, goUint, isObject, unmarshalTypeError } from './go-fields.js';

export interface Config {
  enableIPv4: boolean;
  enableIPv6: boolean;
  enableNFTables: boolean;
  network?: IPNet;
  subnetMin?: IP;
  subnetMax?: IP;
  subnetLen: number;
  ipv6Network?: IPNet;
  ipv6SubnetMin?: IP;
  ipv6SubnetMax?: IP;
  ipv6SubnetLen: number;
  /** lower-case as the backend manager looks it up; `udp` when Backend is absent */
  backendType: string;
  /** the raw Backend object ({} when absent) */
  backend: Record<string, unknown>;
}

function ip4Net(v: unknown, field: string): IPNet | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw unmarshalTypeError(v, 'Config', field, 'ip.IP4Net');
  const { net } = parseCIDR(v);
  if (net.family !== 4) throw new TypeError('invalid IPv4 CIDR format');
  return net;
}

function ip6Net(v: unknown, field: string): IPNet | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw unmarshalTypeError(v, 'Config', field, 'ip.IP6Net');
  const { net } = parseCIDR(v);
  if (net.family !== 6) throw new TypeError('invalid IPv6 CIDR format');
  return net;
}

function ip4(v: unknown, field: string): IP | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw unmarshalTypeError(v, 'Config', field, 'ip.IP4');
  let ip: IP;
  try {
    ip = parseIP(v);
  } catch {
    throw new TypeError('invalid IPv4 address format');
  }
  if (ip.family !== 4) throw new TypeError('invalid IPv4 address format');
  return ip.value === 0n ? undefined : ip; // "0.0.0.0" counts as unset
}

function ip6(v: unknown, field: string): IP | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw unmarshalTypeError(v, 'Config', field, 'ip.IP6');
  let ip: IP;
  try {
    ip = parseIP(v);
  } catch {
    throw new TypeError('invalid IPv6 address format');
  }
  // Go's ParseIP6 takes IPv4 text too, as the IPv4-mapped IPv6 address.
  const value = ip.family === 4 ? (0xffffn << 32n) | ip.value : ip.value;
  return value === 0n ? undefined : { family: 6, value };
}

/** Go's parseBackendType: absent → "udp"; no Type → ""; lower-cased as GetBackend does. */
function parseBackend(v: unknown): { backendType: string; backend: Record<string, unknown> } {
  if (v === undefined) return { backendType: 'udp', backend: {} };
  if (v === null) return { backendType: '', backend: {} };
  if (!isObject(v)) {
    const what = Array.isArray(v) ? 'array' : typeof v;
    throw new TypeError(`error decoding Backend property of config: json: cannot unmarshal ${what} into Go value of type struct { Type string }`);
  }
  const t = goField(v, 'Type');
  if (t !== undefined && t !== null && typeof t !== 'string') {
    throw new TypeError(
      `error decoding Backend property of config: ${unmarshalTypeError(t, 'struct { Type string }', 'Type', 'string').message}`,
    );
  }
  return { backendType: (t ?? '').toLowerCase(), backend: v };
}

/** pkg/subnet ParseConfig: decode only, no defaults beyond EnableIPv4 = true. */
export function parseConfig(text: string): Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SyntaxError(`failed to parse network config: ${(err as Error).message}`, { cause: err });
  }
  if (!isObject(raw)) {
    const what = raw === null ? 'null' : Array.isArray(raw) ? 'array' : typeof raw;
    throw new TypeError(`json: cannot unmarshal ${what} into Go value of type subnet.Config`);
  }
  return {
    enableIPv4: goBool(raw, 'Config', 'EnableIPv4', true),
    enableIPv6: goBool(raw, 'Config', 'EnableIPv6', false),
    enableNFTables: goBool(raw, 'Config', 'EnableNFTables', false),
    network: ip4Net(goField(raw, 'Network'), 'Network'),
    subnetMin: ip4(goField(raw, 'SubnetMin'), 'SubnetMin'),
    subnetMax: ip4(goField(raw, 'SubnetMax'), 'SubnetMax'),
    subnetLen: goUint(raw, 'Config', 'SubnetLen'),
    ipv6Network: ip6Net(goField(raw, 'IPv6Network'), 'IPv6Network'),
    ipv6SubnetMin: ip6(goField(raw, 'IPv6SubnetMin'), 'IPv6SubnetMin'),
    ipv6SubnetMax: ip6(goField(raw, 'IPv6SubnetMax'), 'IPv6SubnetMax'),
    ipv6SubnetLen: goUint(raw, 'Config', 'IPv6SubnetLen'),
    ...parseBackend(goField(raw, 'Backend')),
  };
}

function isEmptyNet(n: IPNet | undefined): boolean {
  return n === undefined || (n.base === 0n && n.prefix === 0);
}

interface FamilyCheck {
  network: IPNet;
  subnetLen: number;
  min?: IP;
  max?: IP;
  maxLen: number; // 30 / 126
  smallest: number; // 28 / 124
  defaultLen: number; // 24 / 64
  defaultUpTo: number; // 22 / 62
  names: { len: string; tooSmall: string; min: string; max: string; net: string };
}

function checkFamily(c: FamilyCheck): { subnetLen: number; min: IP; max: IP } {
  const { network, names } = c;
  let len = c.subnetLen;
  if (len > 0) {
    if (len > c.maxLen) throw new RangeError(names.len);
    if (len < network.prefix + 2) throw new RangeError('network must be able to accommodate at least four subnets');
  } else {
    if (network.prefix > c.smallest) throw new RangeError(names.tooSmall);
    len = network.prefix <= c.defaultUpTo ? c.defaultLen : network.prefix + 2;
  }
  const family = network.family;
  const size = 1n << BigInt(bitsOf(family) - len);
  let min = c.min;
  if (min === undefined) min = { family, value: network.base + size };
  else if (!netContains(network, min)) throw new RangeError(`${names.min} is not in the range of the ${names.net}`);
  let max = c.max;
  if (max === undefined) max = { family, value: network.base + netSize(network) - size };
  else if (!netContains(network, max)) throw new RangeError(`${names.max} is not in the range of the ${names.net}`);
  const mask = maskOf(family, len);
  if ((min.value & mask) !== min.value) throw new RangeError(`${names.min} is not on a SubnetLen boundary: ${formatIP(min)}`);
  if ((max.value & mask) !== max.value) throw new RangeError(`${names.max} is not on a SubnetLen boundary: ${formatIP(max)}`);
  return { subnetLen: len, min, max };
}

/** pkg/subnet CheckNetworkConfig: returns the config with defaults filled in, or throws Go's error. */
export function checkNetworkConfig(cfg: Config): Config {
  const out: Config = { ...cfg };
  if (cfg.enableIPv4) {
    if (isEmptyNet(cfg.network)) throw new RangeError('please define a correct Network parameter in the flannel config');
    const r = checkFamily({
      network: cfg.network!,
      subnetLen: cfg.subnetLen,
      min: cfg.subnetMin,
      max: cfg.subnetMax,
      maxLen: 30,
      smallest: 28,
      defaultLen: 24,
      defaultUpTo: 22,
      names: {
        len: 'SubnetLen must be less than /31',
        tooSmall: 'network is too small. Minimum useful network prefix is /28',
        min: 'SubnetMin',
        max: 'SubnetMax',
        net: 'Network',
      },
    });
    out.subnetLen = r.subnetLen;
    out.subnetMin = r.min;
    out.subnetMax = r.max;
  }
  if (cfg.enableIPv6) {
    if (isEmptyNet(cfg.ipv6Network)) {
      throw new RangeError('please define a correct IPv6Network parameter in the flannel config');
    }
    const r = checkFamily({
      network: cfg.ipv6Network!,
      subnetLen: cfg.ipv6SubnetLen,
      min: cfg.ipv6SubnetMin,
      max: cfg.ipv6SubnetMax,
      maxLen: 126,
      smallest: 124,
      defaultLen: 64,
      defaultUpTo: 62,
      names: {
        len: 'SubnetLen must be less than /127',
        tooSmall: 'IPv6Network is too small. Minimum useful network prefix is /124',
        min: 'IPv6SubnetMin',
        max: 'IPv6SubnetMax',
        net: 'IPv6Network',
      },
    });
    out.ipv6SubnetLen = r.subnetLen;
    out.ipv6SubnetMin = r.min;
    out.ipv6SubnetMax = r.max;
  }
  return out;
}

/** ParseConfig + CheckNetworkConfig, as etcd mode does on every read. */
export function parseAndCheckConfig(text: string): Config {
  return checkNetworkConfig(parseConfig(text));
}

/** A lease subnet fits the config (SubnetMin ≤ ip ≤ SubnetMax and the prefix is SubnetLen). */
export function subnetFits(cfg: Config, sn: IPNet | undefined, sn6: IPNet | undefined): boolean {
  if (cfg.enableIPv4) {
    if (!sn || !cfg.subnetMin || !cfg.subnetMax) return false;
    if (sn.family !== 4 || sn.prefix !== cfg.subnetLen) return false;
    if (sn.base < cfg.subnetMin.value || sn.base > cfg.subnetMax.value) return false;
  }
  if (cfg.enableIPv6) {
    if (!sn6 || !cfg.ipv6SubnetMin || !cfg.ipv6SubnetMax) return false;
    if (sn6.family !== 6 || sn6.prefix !== cfg.ipv6SubnetLen) return false;
    if (sn6.base < cfg.ipv6SubnetMin.value || sn6.base > cfg.ipv6SubnetMax.value) return false;
  } else if (sn6) {
    return false;
  }
  return true;
}

