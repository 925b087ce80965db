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
import { GoStruct } from '../../shared/go/json.js';

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

/** An ip.IP4Net / ip.IP6Net field (a CIDR, masked); null or absent reads as unset. */
function netField(s: GoStruct, name: string, family: 4 | 6): IPNet | undefined {
  const v = s.raw(name);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw s.mismatch(name, v, `ip.IP${family}Net`);
  const { net } = parseCIDR(v);
  if (net.family !== family) throw new TypeError(`invalid IPv${family} CIDR format`);
  return net;
}

/** An ip.IP4 / ip.IP6 field; the zero address counts as unset. ip.IP6 takes IPv4 text too (IPv4-mapped). */
function ipField(s: GoStruct, name: string, family: 4 | 6): IP | undefined {
  const v = s.raw(name);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw s.mismatch(name, v, `ip.IP${family}`);
  let ip: IP;
  try {
    ip = parseIP(v);
  } catch {
    throw new TypeError(`invalid IPv${family} address format`);
  }
  if (family === 4 && ip.family !== 4) throw new TypeError('invalid IPv4 address format');
  const value = family === 6 && ip.family === 4 ? (0xffffn << 32n) | ip.value : ip.value;
  return value === 0n ? undefined : { family, value };
}

const BACKEND_STRUCT = 'struct { Type string }';

/**
 * Go's parseBackendType: absent → "udp"; `null` → "" (Backend is a json.RawMessage, which keeps the
 * literal null, where other fields read null as absent); no Type → ""; lower-cased as GetBackend does.
 */
function parseBackend(cfg: GoStruct): { backendType: string; backend: Record<string, unknown> } {
  const v = cfg.raw('Backend');
  if (v === undefined) {
    const isNull = Object.keys(cfg.obj).some((k) => k.toLowerCase() === 'backend'); // present, so the last one was null
    return { backendType: isNull ? '' : 'udp', backend: {} };
  }
  try {
    const b = GoStruct.from(v, BACKEND_STRUCT);
    return { backendType: (b.string('Type') ?? '').toLowerCase(), backend: b.obj };
  } catch (err) {
    throw new TypeError(`error decoding Backend property of config: ${(err as Error).message}`, { cause: err });
  }
}

/** pkg/subnet ParseConfig: decode only, no defaults beyond EnableIPv4 = true. */
export function parseConfig(text: string): Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SyntaxError(`failed to parse network config: ${(err as Error).message}`, { cause: err });
  }
  // Go names the value `subnet.Config` and its fields `Config.<name>`
  const s = new GoStruct(GoStruct.from(raw, 'subnet.Config').obj, 'Config');
  return {
    enableIPv4: s.bool('EnableIPv4', true),
    enableIPv6: s.bool('EnableIPv6', false),
    enableNFTables: s.bool('EnableNFTables', false),
    network: netField(s, 'Network', 4),
    subnetMin: ipField(s, 'SubnetMin', 4),
    subnetMax: ipField(s, 'SubnetMax', 4),
    subnetLen: s.uint('SubnetLen'),
    ipv6Network: netField(s, 'IPv6Network', 6),
    ipv6SubnetMin: ipField(s, 'IPv6SubnetMin', 6),
    ipv6SubnetMax: ipField(s, 'IPv6SubnetMax', 6),
    ipv6SubnetLen: s.uint('IPv6SubnetLen'),
    ...parseBackend(s),
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

type FamilyRules = Omit<FamilyCheck, 'network' | 'subnetLen' | 'min' | 'max'>;

/** Go's CheckNetworkConfig limits and wording, per family. */
const V4_RULES: FamilyRules = {
  maxLen: 30,
  smallest: 28,
  defaultLen: 24,
  defaultUpTo: 22,
  names: { len: 'SubnetLen must be less than /31', tooSmall: 'network is too small. Minimum useful network prefix is /28', min: 'SubnetMin', max: 'SubnetMax', net: 'Network' },
};
const V6_RULES: FamilyRules = {
  maxLen: 126,
  smallest: 124,
  defaultLen: 64,
  defaultUpTo: 62,
  names: { len: 'SubnetLen must be less than /127', tooSmall: 'IPv6Network is too small. Minimum useful network prefix is /124', min: 'IPv6SubnetMin', max: 'IPv6SubnetMax', net: 'IPv6Network' },
};

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
    const r = checkFamily({ network: cfg.network!, subnetLen: cfg.subnetLen, min: cfg.subnetMin, max: cfg.subnetMax, ...V4_RULES });
    out.subnetLen = r.subnetLen;
    out.subnetMin = r.min;
    out.subnetMax = r.max;
  }
  if (cfg.enableIPv6) {
    if (isEmptyNet(cfg.ipv6Network)) {
      throw new RangeError('please define a correct IPv6Network parameter in the flannel config');
    }
    const r = checkFamily({ network: cfg.ipv6Network!, subnetLen: cfg.ipv6SubnetLen, min: cfg.ipv6SubnetMin, max: cfg.ipv6SubnetMax, ...V6_RULES });
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

