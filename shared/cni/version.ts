// Spec versions, the config version decoder, and result conversion between result shapes:
// 0.1.0/0.2.0 (`ip4`/`ip6`), 0.3.x/0.4.0 (`ips[].version`), 1.0.0/1.1.0.
//
// Byte layout follows the Go libraries: struct field order and `"dns": {}` always present for every
// version up to 1.0.0 (cni 1.0/1.1, what Debian's reference binaries print), and for 1.1.0 the cni ≥1.2
// behaviour (keys sorted at every level, empty dns omitted). Results are json.MarshalIndent'ed.
import { CniError, CniErrorCode } from './errors.js';
import { GoJsonError, isObject, marshalIndent, sortKeysDeep, type JsonObject } from './go-json.js';
import type { DNS, IPConfig, Interface, Result, Route } from './types.js';

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
