// loopback's config (types.NetConf, read the way Go's loopback reads it): every known field must have
// its Go type, and a prevResult must parse at the config's version. Errors are plain (code 999), Go's words.
import { CniError } from '../../shared/cni/errors.js';
import { GoJsonError, GoStruct, isObject, jsonTypeName, parseJson } from '../../shared/go/json.js';
import { decodePrevResult } from '../../shared/cni/version.js';

export interface LoopbackConf {
  /** as written; '' when absent */
  cniVersion: string;
  prevResult?: Record<string, unknown>;
}

/**
 * parseNetConf: the config read into Go's types.NetConf (every known field must have its Go type), then,
 * with a prevResult, version.ParsePrevResult (strict, at the config's version) and its conversion to
 * the current version. Errors are plain (code 999) and worded like Go's.
 */
export function parseNetConf(stdin: Buffer): LoopbackConf {
  let conf: GoStruct;
  let cniVersion: string;
  let prev: unknown;
  try {
    conf = GoStruct.from(parseJson(stdin), 'NetConf');
    cniVersion = conf.string('cniVersion') ?? '';
    conf.string('name');
    conf.string('type');
    const caps = conf.map('capabilities');
    for (const v of Object.values(caps ?? {})) {
      if (v !== null && typeof v !== 'boolean') throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(v)} into Go struct field NetConf.capabilities of type bool`);
    }
    const ipam = conf.object('ipam', 'types.IPAM');
    const ipamType = ipam?.raw('type');
    if (ipamType !== undefined && typeof ipamType !== 'string') {
      throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(ipamType)} into Go struct field IPAM.ipam.type of type string`);
    }
    const dns = conf.object('dns', 'types.DNS');
    if (dns !== undefined) {
      for (const k of ['nameservers', 'search', 'options']) {
        const v = dns.raw(k);
        if (v === undefined) continue;
        const items = Array.isArray(v) ? v : [v];
        const bad = Array.isArray(v) ? items.find((i) => i !== null && typeof i !== 'string') : v;
        if (bad !== undefined) throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(bad)} into Go struct field DNS.dns.${k} of type ${Array.isArray(v) ? 'string' : '[]string'}`);
      }
      const domain = dns.raw('domain');
      if (domain !== undefined && typeof domain !== 'string') throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(domain)} into Go struct field DNS.dns.domain of type string`);
    }
    prev = conf.raw('prevResult');
    if (prev !== undefined && !isObject(prev)) {
      throw new GoJsonError(`json: cannot unmarshal ${jsonTypeName(prev)} into Go struct field NetConf.prevResult of type map[string]interface {}`);
    }
  } catch (err) {
    if (err instanceof CniError) throw err;
    throw new Error(`failed to parse network config: ${(err as Error).message}`, { cause: err });
  }
  if (prev === undefined) return { cniVersion };
  try {
    decodePrevResult(prev, cniVersion === '' ? '0.1.0' : cniVersion);
  } catch (err) {
    throw new Error(`failed to parse prevResult: could not parse prevResult: ${(err as Error).message}`, { cause: err });
  }
  return { cniVersion, prevResult: prev };
}
