// Spec versions, the config version decoder, and result conversion between result shapes:
// 0.1.0/0.2.0 (`ip4`/`ip6`), 0.3.x/0.4.0 (`ips[].version`), 1.0.0/1.1.0.
//
// Byte layout follows the Go libraries: struct field order and `"dns": {}` always present for every
// version up to 1.0.0 (cni 1.0/1.1, what Debian's reference binaries print), and for 1.1.0 the cni ≥1.2
// behaviour (keys sorted at every level, empty dns omitted). Results are json.MarshalIndent'ed.
import { CniError, CniErrorCode } from './errors.js';
import { GoJsonError, isObject, marshalIndent, sortKeysDeep, type JsonObject } from '../go/json.js';
import type { DNS, IPConfig, Interface, Result, Route } from './types.js';
import { tryParseCIDR, tryParseIP } from '../net/ip.js';

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
/** What VERSION reports as the library's Current(). */
export const CURRENT_VERSION = '1.1.0';

/** Compares dotted versions; throws on junk like Go's semver parse in version.GreaterThanOrEqualTo. */
export function compareVersions(a: string, b: string): number {
  const pa = parseSemver(a);
  const pb = parseSemver(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function parseSemver(v: string): number[] {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) throw new CniError(CniErrorCode.DecodingFailure, `unable to parse version "${v}"`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function versionAtLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/** ConfigDecoder.Decode: `cniVersion` of a config, "0.1.0" when absent or empty. */
export function decodeConfVersion(raw: unknown): string {
  if (!isObject(raw)) throw new CniError(CniErrorCode.DecodingFailure, 'decoding version from network config: json: cannot unmarshal into Go value');
  let v: unknown;
  for (const k of Object.keys(raw)) if (k.toLowerCase() === 'cniversion') v = raw[k];
  if (v === undefined || v === null || v === '') return '0.1.0';
  if (typeof v !== 'string') {
    throw new CniError(CniErrorCode.DecodingFailure, `decoding version from network config: json: cannot unmarshal ${typeof v === 'number' ? 'number' : 'object'} into Go struct field .cniVersion of type string`);
  }
  return v;
}

export function isSupportedVersion(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function incompatibleVersionError(v: string): CniError {
  return new CniError(
    CniErrorCode.IncompatibleCniVersion,
    'incompatible CNI versions',
    `config is "${v}", plugin supports [${SUPPORTED_VERSIONS.map((s) => `"${s}"`).join(' ')}]`,
  );
}

const isV4 = (cidrOrIp: string): boolean => !cidrOrIp.includes(':') || /^::ffff:\d+\.\d+\.\d+\.\d+/i.test(cidrOrIp);

function dnsOut(dns: DNS | undefined): JsonObject {
  const out: JsonObject = {};
  if (!dns) return out;
  if (dns.nameservers?.length) out.nameservers = dns.nameservers;
  if (dns.domain) out.domain = dns.domain;
  if (dns.search?.length) out.search = dns.search;
  if (dns.options?.length) out.options = dns.options;
  return out;
}

function routeOut(r: Route, full: boolean): JsonObject {
  const out: JsonObject = { dst: r.dst };
  if (r.gw) out.gw = r.gw;
  if (full) {
    if (r.mtu) out.mtu = r.mtu;
    if (r.advmss) out.advmss = r.advmss;
    if (r.priority) out.priority = r.priority;
    if (r.table !== undefined && r.table !== null) out.table = r.table;
    if (r.scope !== undefined && r.scope !== null) out.scope = r.scope;
  }
  return out;
}

function ifaceOut(i: Interface, v1: boolean): JsonObject {
  const out: JsonObject = { name: i.name };
  if (i.mac) out.mac = i.mac;
  if (v1 && i.mtu) out.mtu = i.mtu;
  if (i.sandbox) out.sandbox = i.sandbox;
  if (v1 && i.socketPath) out.socketPath = i.socketPath;
  if (v1 && i.pciID) out.pciID = i.pciID;
  return out;
}

function ipOut(ip: IPConfig, withVersion: boolean): JsonObject {
  const out: JsonObject = {};
  if (withVersion) out.version = isV4(ip.address) ? '4' : '6';
  if (ip.interface !== undefined) out.interface = ip.interface;
  out.address = ip.address;
  if (ip.gateway) out.gateway = ip.gateway;
  return out;
}

/** The result as a JSON object in the shape and key order of `version`. */
export function resultToVersion(result: Result, version: string): JsonObject {
  if (version === '0.1.0' || version === '0.2.0') return toV020(result, version);
  const v1 = version === '1.0.0' || version === '1.1.0';
  const out: JsonObject = { cniVersion: version };
  if (result.interfaces?.length) out.interfaces = result.interfaces.map((i) => ifaceOut(i, v1));
  if (result.ips?.length) out.ips = result.ips.map((ip) => ipOut(ip, !v1));
  if (result.routes?.length) out.routes = result.routes.map((r) => routeOut(r, v1));
  const dns = dnsOut(result.dns);
  if (version === '1.1.0') {
    if (Object.keys(dns).length > 0) out.dns = dns;
    return sortKeysDeep(out) as JsonObject;
  }
  out.dns = dns;
  return out;
}

function toV020(result: Result, version: string): JsonObject {
  let ip4: JsonObject | undefined;
  let ip6: JsonObject | undefined;
  for (const ip of result.ips ?? []) {
    const cfg: JsonObject = { ip: ip.address };
    if (ip.gateway) cfg.gateway = ip.gateway;
    if (isV4(ip.address)) ip4 ??= cfg;
    else ip6 ??= cfg;
  }
  for (const r of result.routes ?? []) {
    const target = isV4(r.dst) ? ip4 : ip6;
    if (!target) continue;
    ((target.routes ??= []) as JsonObject[]).push(routeOut(r, false));
  }
  if (!ip4 && !ip6) throw new Error('cannot convert: no valid IP addresses');
  const out: JsonObject = { cniVersion: version };
  if (ip4) out.ip4 = ip4;
  if (ip6) out.ip6 = ip6;
  out.dns = dnsOut(result.dns);
  return out;
}

/** types.PrintResult: the result converted to `version`, MarshalIndent'ed, no trailing newline. */
export function formatResult(result: Result, version: string): string {
  return marshalIndent(resultToVersion(result, version));
}

/**
 * Reads a result of any version (a delegate's stdout, a prevResult, a cached result) into the 1.0 shape.
 * `fallbackVersion` is used when the result carries no cniVersion (libcni's fixupResultVersion).
 */
export function parseResult(raw: unknown, fallbackVersion: string): Result {
  if (!isObject(raw)) throw new GoJsonError(`failed to parse result: not a JSON object`);
  const cniVersion = typeof raw.cniVersion === 'string' && raw.cniVersion !== '' ? raw.cniVersion : fallbackVersion;
  const result: Result = { cniVersion };
  if (isObject(raw.dns)) result.dns = raw.dns as DNS;
  if (raw.ip4 !== undefined || raw.ip6 !== undefined || cniVersion === '0.1.0' || cniVersion === '0.2.0') {
    const ips: IPConfig[] = [];
    const routes: Route[] = [];
    for (const key of ['ip4', 'ip6'] as const) {
      const cfg = raw[key];
      if (!isObject(cfg) || typeof cfg.ip !== 'string') continue;
      ips.push(cfg.gateway ? { address: cfg.ip, gateway: String(cfg.gateway) } : { address: cfg.ip });
      if (Array.isArray(cfg.routes)) routes.push(...(cfg.routes as Route[]).map((r) => routeIn(r)));
    }
    if (ips.length) result.ips = ips;
    if (routes.length) result.routes = routes;
    return result;
  }
  if (Array.isArray(raw.interfaces)) result.interfaces = (raw.interfaces as unknown[]).filter(isObject).map((i) => ({ ...i }) as unknown as Interface);
  if (Array.isArray(raw.ips)) {
    result.ips = (raw.ips as unknown[]).filter(isObject).map((ip) => {
      const out: IPConfig = { address: String(ip.address) };
      if (typeof ip.interface === 'number') out.interface = ip.interface;
      if (typeof ip.gateway === 'string' && ip.gateway !== '') out.gateway = ip.gateway;
      return out;
    });
  }
  if (Array.isArray(raw.routes)) result.routes = (raw.routes as unknown[]).filter(isObject).map((r) => routeIn(r as unknown as Route));
  return result;
}

function routeIn(r: Route): Route {
  const out: Route = { dst: String(r.dst) };
  if (r.gw) out.gw = r.gw;
  for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) if (typeof r[k] === 'number') out[k] = r[k];
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Strict decoding of a prevResult, as version.ParsePrevResult + create.Create do it: the result is read
// into the Go struct of the CONFIG's version (types020 / types040 / types100), every field must have its
// Go type, addresses must parse (types.IPNet, net.IP), and the result's own cniVersion must be one that
// struct supports. parseResult above stays lenient (delegates' output, cached results).

const RESULT_FAMILIES: ReadonlyArray<{ pkg: string; versions: readonly string[] }> = [
  { pkg: 'types020', versions: ['0.1.0', '0.2.0'] },
  { pkg: 'types040', versions: ['0.3.0', '0.3.1', '0.4.0'] },
  { pkg: 'types100', versions: ['1.0.0', '1.1.0'] },
];

function typeError(v: unknown, where: string, goType: string): GoJsonError {
  const what = typeof v === 'number' && goType === 'int' ? `number ${v}` : jsonType(v);
  return new GoJsonError(`json: cannot unmarshal ${what} into Go struct field ${where} of type ${goType}`);
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** Go's case-insensitive field match (last wins); null is the zero value. */
function goField(obj: JsonObject, name: string): unknown {
  let found: unknown;
  for (const k of Object.keys(obj)) if (k.toLowerCase() === name.toLowerCase()) found = obj[k];
  return found === null ? undefined : found;
}

function expectString(obj: JsonObject, name: string, where: string): string | undefined {
  const v = goField(obj, name);
  if (v !== undefined && typeof v !== 'string') throw typeError(v, where, 'string');
  return v;
}

function expectInt(obj: JsonObject, name: string, where: string): number | undefined {
  const v = goField(obj, name);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw typeError(v, where, 'int');
  return v;
}

function expectObject(v: unknown, where: string, goType: string): JsonObject | undefined {
  if (v === undefined) return undefined;
  if (!isObject(v)) throw typeError(v, where, goType);
  return v;
}

function expectArray(v: unknown, where: string, goType: string): unknown[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw typeError(v, where, goType);
  return v;
}

/** types.IPNet / net.ParseCIDR as Go words its failure. */
function expectCidr(v: unknown, where: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw typeError(v, where, 'string');
  if (tryParseCIDR(v) === undefined) throw new GoJsonError(`invalid CIDR address: ${v}`);
  return v;
}

/** net.IP's UnmarshalText. */
function expectIp(v: unknown, where: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw typeError(v, where, 'string');
  if (v === '') return undefined;
  if (tryParseIP(v) === undefined) throw new GoJsonError(`invalid IP address: ${v}`);
  return v;
}

function decodeRoute(v: unknown, where: string): Route {
  const r = expectObject(v, where, 'types.Route')!;
  const dst = expectCidr(goField(r, 'dst'), 'route.dst');
  const out: Route = { dst: dst ?? '' };
  const gw = expectIp(goField(r, 'gw'), 'route.gw');
  if (gw !== undefined) out.gw = gw;
  for (const k of ['mtu', 'advMSS', 'priority', 'table', 'scope'] as const) {
    const n = expectInt(r, k, `route.${k}`);
    if (n !== undefined) out[k === 'advMSS' ? 'advmss' : k] = n;
  }
  return out;
}

function decodeDns(v: unknown): DNS | undefined {
  const d = expectObject(v, 'Result.dns', 'types.DNS');
  if (d === undefined) return undefined;
  const dns: DNS = {};
  for (const k of ['nameservers', 'search', 'options'] as const) {
    const arr = expectArray(goField(d, k), `DNS.dns.${k}`, '[]string');
    if (arr === undefined) continue;
    for (const s of arr) if (typeof s !== 'string') throw typeError(s, `DNS.dns.${k}`, 'string');
    dns[k] = arr as string[];
  }
  const domain = expectString(d, 'domain', 'DNS.dns.domain');
  if (domain) dns.domain = domain;
  return dns;
}

/**
 * create.Create(confVersion, prevResult): the prevResult decoded strictly into the 1.0 shape, or a
 * GoJsonError worded like Go's. A prevResult without a cniVersion takes the config's (ParsePrevResult).
 */
export function decodePrevResult(raw: JsonObject, confVersion: string): Result {
  const family = RESULT_FAMILIES.find((f) => f.versions.includes(confVersion));
  if (family === undefined) throw new GoJsonError(`unsupported CNI result version "${confVersion}"`);
  const pkg = family.pkg;
  // ParsePrevResult looks the key up exactly ("cniVersion") and injects the config's when it is absent or ""
  const given = raw.cniVersion;
  const obj: JsonObject = given === undefined || given === '' ? { ...raw, cniVersion: confVersion } : raw;
  const cniVersion = expectString(obj, 'cniVersion', 'Result.cniVersion') ?? '';
  const result: Result = { cniVersion };

  if (pkg === 'types020') {
    const ips: IPConfig[] = [];
    const routes: Route[] = [];
    for (const key of ['ip4', 'ip6'] as const) {
      const cfg = expectObject(goField(obj, key), `Result.${key}`, `types020.IPConfig`);
      if (cfg === undefined) continue;
      const ip = expectCidr(goField(cfg, 'ip'), `IPConfig.${key}.ip`);
      const gw = expectIp(goField(cfg, 'gateway'), `IPConfig.${key}.gateway`);
      if (ip !== undefined) ips.push(gw !== undefined ? { address: ip, gateway: gw } : { address: ip });
      for (const r of expectArray(goField(cfg, 'routes'), `IPConfig.${key}.routes`, '[]types.Route') ?? []) routes.push(decodeRoute(r, `IPConfig.${key}.routes`));
    }
    if (ips.length) result.ips = ips;
    if (routes.length) result.routes = routes;
  } else {
    const ifaces = expectArray(goField(obj, 'interfaces'), 'Result.interfaces', `[]*${pkg}.Interface`);
    if (ifaces !== undefined) {
      result.interfaces = ifaces.map((v) => {
        const i = expectObject(v, 'Result.interfaces', `${pkg}.Interface`) ?? {};
        const out: Interface = { name: expectString(i, 'name', 'Interface.interfaces.name') ?? '' };
        const mac = expectString(i, 'mac', 'Interface.interfaces.mac');
        if (mac) out.mac = mac;
        const sandbox = expectString(i, 'sandbox', 'Interface.interfaces.sandbox');
        if (sandbox) out.sandbox = sandbox;
        if (pkg === 'types100') {
          const mtu = expectInt(i, 'mtu', 'Interface.interfaces.mtu');
          if (mtu) out.mtu = mtu;
          const socketPath = expectString(i, 'socketPath', 'Interface.interfaces.socketPath');
          if (socketPath) out.socketPath = socketPath;
          const pciID = expectString(i, 'pciID', 'Interface.interfaces.pciID');
          if (pciID) out.pciID = pciID;
        }
        return out;
      });
    }
    const ips = expectArray(goField(obj, 'ips'), 'Result.ips', `[]*${pkg}.IPConfig`);
    if (ips !== undefined) {
      result.ips = ips.map((v) => {
        const ip = expectObject(v, 'Result.ips', `${pkg}.IPConfig`) ?? {};
        if (pkg === 'types040') expectString(ip, 'version', 'ipConfig.version');
        const out: IPConfig = { address: expectCidr(goField(ip, 'address'), 'ipConfig.address') ?? '' };
        const idx = expectInt(ip, 'interface', 'ipConfig.interface');
        if (idx !== undefined) out.interface = idx;
        const gw = expectIp(goField(ip, 'gateway'), 'ipConfig.gateway');
        if (gw !== undefined) out.gateway = gw;
        return out;
      });
    }
    const routes = expectArray(goField(obj, 'routes'), 'Result.routes', '[]*types.Route');
    if (routes !== undefined) result.routes = routes.map((r) => decodeRoute(r, 'Result.routes'));
  }
  const dns = decodeDns(goField(obj, 'dns'));
  if (dns !== undefined) result.dns = dns;
  if (!family.versions.includes(cniVersion)) {
    throw new GoJsonError(`result type supports [${family.versions.join(' ')}] but unmarshalled CNIVersion is "${cniVersion}"`);
  }
  return result;
}
