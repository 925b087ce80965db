// The delegate config flannel generates on ADD (flannel-io/cni-plugin doCmdAdd + getDelegateIPAM,
// Linux), and the scratch file that lets DEL replay exactly what ADD sent.
//
// Steps, in the reference's order, starting from the user's `delegate` map (or {}):
//   runtimeConfig (if given) → name → type ?= "bridge" → ipMasq ?= !FLANNEL_IPMASQ → mtu ?= FLANNEL_MTU
//   → isGateway ?= true (bridge only) → cniVersion (if non-empty) → ipam:
//      the user's `ipam` map, type ?= "host-local", `ranges` replaced by [[{subnet: v4}], [{subnet: v6}]],
//      `routes` = user routes (parsed as types.Route) + one {dst} per FLANNEL_NETWORK / FLANNEL_IPV6_NETWORK.
// It is marshalled like Go's json.Marshal of that map: compact, keys sorted at every level, except the
// routes, which are types.Route structs (field order dst, gw, mtu, advmss, priority, table, scope).
import { closeSync, constants, fsyncSync, mkdirSync, openSync, readdirSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { CniError, CniErrorCode } from '../../shared/cni/errors.js';
import { errorMessage } from '../../shared/log.js';
import { isObject, marshal, sortKeysDeep, type JsonObject } from '../../shared/go/json.js';
import { pathError, readErrorOp } from '../../shared/go/errors.js';
import { formatSize, MAX_NETCONF_FILE, readFileBounded } from '../../shared/fs/read-bounded.js';
import { formatCIDR, formatIP, formatNet, parseCIDR, parseIP } from '../../shared/net/ip.js';
import type { FlannelNetConf } from './netconf.js';
import type { SubnetEnv } from './subnet-env.js';

const has = (m: JsonObject, k: string): boolean => Object.prototype.hasOwnProperty.call(m, k);

/** cmdAdd's checks on the user's `delegate` map (plain errors: code 999, as in Go). */
export function validateDelegate(delegate: JsonObject | undefined): void {
  if (!delegate) return;
  if (has(delegate, 'type') && typeof delegate.type !== 'string') {
    throw new Error("'delegate' dictionary, if present, must have (string) 'type' field");
  }
  if (has(delegate, 'name')) throw new Error("'delegate' dictionary must not have 'name' field, it'll be set by flannel");
  if (has(delegate, 'ipam')) throw new Error("'delegate' dictionary must not have 'ipam' field, it'll be set by flannel");
}

/** A types.Route, kept in Go's struct field order for marshalling. */
export type RouteJson = JsonObject & { dst: string };

export interface DelegateConf {
  /** the map handed to the delegate (routes inside ipam are RouteJson) */
  conf: JsonObject;
  /** json.Marshal(conf): the bytes saved to the scratch file and piped to the delegate */
  bytes: string;
  type: string;
}

/**
 * A delegate (or its IPAM) of flannel's own type would run this plugin again: with `ipam.type` flannel
 * each level execs bridge and then flannel again, without end. Go flannel does not check; we refuse
 * before any work (code 7, invalid network config). `selfType` is the config's `type`, the name the
 * runtime found us under.
 */
export function refuseSelfDelegation(delegateType: unknown, ipamType: unknown, selfType: string): void {
  const self = new Set(['flannel', selfType].filter((t) => t !== ''));
  if (typeof delegateType === 'string' && self.has(delegateType)) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `'delegate' type ${JSON.stringify(delegateType)} would make the flannel plugin call itself; set delegate.type to the plugin that creates the pod interface (default "bridge")`,
    );
  }
  if (typeof ipamType === 'string' && self.has(ipamType)) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `'ipam' type ${JSON.stringify(ipamType)} would make the flannel plugin call itself through its delegate; set ipam.type to an IPAM plugin (default "host-local")`,
    );
  }
}

export function buildDelegateConf(n: FlannelNetConf, fenv: SubnetEnv): DelegateConf {
  validateDelegate(n.delegate);
  refuseSelfDelegation(n.delegate?.type, n.ipam?.type, n.type);
  const d: JsonObject = { ...(n.delegate ?? {}) };
  if (n.runtimeConfig) d.runtimeConfig = n.runtimeConfig;
  d.name = n.name;
  if (!has(d, 'type')) d.type = 'bridge';
  if (!has(d, 'ipMasq')) d.ipMasq = !fenv.ipmasq;
  if (!has(d, 'mtu')) d.mtu = fenv.mtu ?? null;
  if (d.type === 'bridge' && !has(d, 'isGateway')) d.isGateway = true;
  if (n.cniVersion !== '') d.cniVersion = n.cniVersion;
  let ipam: { map: JsonObject; routes: RouteJson[] };
  try {
    ipam = getDelegateIPAM(n, fenv);
  } catch (err) {
    throw new Error(`failed to assemble Delegate IPAM: ${errorMessage(err)}`);
  }
  d.ipam = ipam.map;
  const sorted = sortKeysDeep(d) as JsonObject;
  // sortKeysDeep rebuilt the route objects in key order; put the struct-ordered ones back in place
  (sorted.ipam as JsonObject).routes = ipam.routes;
  return { conf: d, bytes: marshal(sorted), type: d.type as string };
}

export function getDelegateIPAM(n: FlannelNetConf, fenv: SubnetEnv): { map: JsonObject; routes: RouteJson[] } {
  const ipam: JsonObject = { ...(n.ipam ?? {}) };
  if (!has(ipam, 'type')) ipam.type = 'host-local';
  const ranges: JsonObject[][] = [];
  if (fenv.sn) ranges.push([{ subnet: formatNet(fenv.sn) }]);
  if (fenv.ip6Sn) ranges.push([{ subnet: formatNet(fenv.ip6Sn) }]);
  ipam.ranges = ranges.length > 0 ? ranges : null;
  let routes: RouteJson[];
  try {
    routes = has(ipam, 'routes') ? parseRoutes(ipam.routes) : [];
  } catch (err) {
    throw new Error(`failed to read IPAM routes: failed to parse ipam.routes: ${errorMessage(err)}`);
  }
  for (const nw of [...fenv.nws, ...fenv.ip6Nws]) routes.push({ dst: formatNet(nw) });
  ipam.routes = routes;
  return { map: ipam, routes };
}

/** json.Unmarshal into []types.Route (cni pkg/types), re-marshalled in struct order. */
export function parseRoutes(raw: unknown): RouteJson[] {
  if (raw === null) return [];
  if (!Array.isArray(raw)) throw new Error(`json: cannot unmarshal ${jsonKind(raw)} into Go value of type []types.Route`);
  return raw.map((item) => parseRoute(item));
}

function parseRoute(item: unknown): RouteJson {
  if (item === null) return { dst: '<nil>' };
  if (!isObject(item)) throw new Error(`json: cannot unmarshal ${jsonKind(item)} into Go value of type types.route`);
  const get = (name: string): unknown => {
    let v: unknown;
    for (const k of Object.keys(item)) if (k.toLowerCase() === name) v = item[k];
    return v === null ? undefined : v;
  };
  const out: RouteJson = { dst: '<nil>' };
  const dst = get('dst');
  if (dst !== undefined) {
    if (typeof dst !== 'string') throw new Error(`json: cannot unmarshal ${jsonKind(dst)} into Go value of type string`);
    const { ip, net } = parseCIDR(dst);
    out.dst = formatCIDR(ip, net.prefix);
  }
  const gw = get('gw');
  if (gw !== undefined) {
    if (typeof gw !== 'string') throw new Error(`json: cannot unmarshal ${jsonKind(gw)} into Go struct field route.gw of type net.IP`);
    if (gw !== '') {
      let ip;
      try {
        ip = parseIP(gw);
      } catch {
        throw new Error(`invalid IP address: ${gw}`);
      }
      out.gw = formatIP(ip);
    }
  }
  for (const [key, field] of [
    ['mtu', 'mtu'],
    ['advmss', 'advmss'],
    ['priority', 'priority'],
  ] as const) {
    const v = intField(get(key), field, 'int');
    if (v) out[field] = v;
  }
  for (const key of ['table', 'scope'] as const) {
    const v = intField(get(key), key, '*int');
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function intField(v: unknown, field: string, goType: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw new Error(`json: cannot unmarshal ${jsonKind(v)} into Go struct field route.${field} of type ${goType.replace('*', '')}`);
  if (!Number.isInteger(v)) throw new Error(`json: cannot unmarshal number ${v} into Go struct field route.${field} of type ${goType.replace('*', '')}`);
  return v;
}

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (isObject(v)) return 'object';
  if (typeof v === 'boolean') return 'bool';
  return typeof v === 'number' ? 'number' : 'string';
}

/**
 * `%#v` of the delegate map, roughly as Go prints it to stderr before delegating (debug output only:
 * nothing parses it).
 */
export function goSyntax(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[]interface {}{${v.map(goSyntax).join(', ')}}`;
  const o = v as JsonObject;
  return `map[string]interface {}{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${goSyntax(o[k])}`)
    .join(', ')}}`;
}

// ---- scratch file: <dataDir>/<containerID> ----

/** The MkdirAll(dataDir, 0700) of saveScratchNetConf, with its error text. */
export function makeDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw pathError('mkdir', dataDir, err);
  }
}

/**
 * saveScratchNetConf: MkdirAll 0700, then O_WRONLY|O_CREATE|O_TRUNC 0600, write, fsync. A config too
 * large for consumeScratch to read back is refused here, before the delegate creates anything that DEL
 * could then not undo.
 */
export function saveScratch(dataDir: string, containerId: string, bytes: string): void {
  const buf = Buffer.from(bytes);
  if (buf.length > MAX_NETCONF_FILE) {
    throw new Error(`delegate config is ${buf.length} bytes, more than the ${formatSize(MAX_NETCONF_FILE)} the flannel plugin saves for DEL`);
  }
  makeDataDir(dataDir);
  const path = join(dataDir, containerId);
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  } catch (err) {
    throw pathError('open', path, err);
  }
  try {
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off);
    fsyncSync(fd);
  } catch (err) {
    throw pathError('write', path, err);
  } finally {
    closeSync(fd);
  }
}

/**
 * Container IDs with a saved config: the regular files of the dataDir whose names could be container IDs
 * (a lock file starts with a dot, and so does a temp file). A missing dataDir has none.
 */
export function listScratch(dataDir: string): string[] {
  try {
    return readdirSync(dataDir, { withFileTypes: true })
      .filter((e) => e.isFile() && !e.name.startsWith('.'))
      .map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw pathError('open', dataDir, err);
  }
}

export interface Scratch {
  bytes: Buffer;
  /** removes the file, ignoring errors (DEL is best effort) */
  remove(): void;
}

/**
 * consumeScratchNetConf: the saved bytes; throws the read error (ENOENT keeps its `code`). Read bounded
 * (a regular file of at most MAX_NETCONF_FILE bytes): a FIFO, device or oversized file in the dataDir is
 * an error, not a hang or an unbounded read.
 */
export function consumeScratch(dataDir: string, containerId: string): Scratch {
  const path = join(dataDir, containerId);
  let bytes: Buffer;
  try {
    bytes = readFileBounded(path, MAX_NETCONF_FILE);
  } catch (err) {
    throw pathError(readErrorOp(err), path, err);
  }
  return {
    bytes,
    remove: () => {
      try {
        unlinkSync(path);
      } catch {
        // per spec, DEL carries on when the file cannot be removed
      }
    },
  };
}
