// libcni's configuration side, as containernetworking/cni libcni/conf.go does it: config discovery
// (`*.conflist` first, sorted full paths, the first whose name matches wins, a parse error in any earlier
// file aborts; then `*.conf`/`*.json` up-converted to a one-plugin list; plugin objects from
// `<dir>/<netName>/*.conf` appended unless `loadOnlyInlinedPlugins`), the version helpers, and the
// per-plugin config injection (keys re-marshalled sorted).
// Where we differ from libcni on purpose: config files are read bounded (regular files of at most
// 16 MiB, shared/fs/read-bounded.ts): a FIFO or /dev/zero among the configs is an error at once.
import { readdirSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { CURRENT_VERSION } from '../../../shared/cni/version.js';
import { MAX_NETCONF_FILE, readFileBounded } from '../../../shared/fs/read-bounded.js';
import { pathError, readErrorOp } from '../../../shared/go/errors.js';
import { GoStruct, isObject, marshal, parseJson, sortKeysDeep, type JsonObject } from '../../../shared/go/json.js';
import { errorMessage } from '../../../shared/log.js';

/** %T of a value decoded into interface{}. */
function goTypeOf(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return '[]interface {}';
  if (typeof v === 'object') return 'map[string]interface {}';
  if (typeof v === 'number') return 'float64';
  return typeof v === 'boolean' ? 'bool' : 'string';
}

// ---------------------------------------------------------------- versions

/** version.ParseVersion: "" is 0.1.0; one to three numeric parts. */
export function parseVersion(v: string): [number, number, number] {
  if (v === '') return [0, 1, 0];
  const parts = v.split('.');
  if (parts.length >= 4) throw new Error(`invalid version ${JSON.stringify(v)}: too many parts`);
  const names = ['major', 'minor', 'micro'];
  const out: [number, number, number] = [0, 0, 0];
  parts.forEach((p, i) => {
    if (!/^[+-]?\d+$/.test(p)) throw new Error(`failed to convert ${names[i]} version part ${JSON.stringify(p)}: strconv.Atoi: parsing ${JSON.stringify(p)}: invalid syntax`);
    out[i] = Number(p);
  });
  return out;
}

export function versionGreaterThanOrEqualTo(v: string, other: string): boolean {
  const a = parseVersion(v);
  const b = parseVersion(other);
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return true;
}

function versionGreaterThan(v: string, other: string): boolean {
  return versionGreaterThanOrEqualTo(v, other) && !versionGreaterThanOrEqualTo(other, v);
}

// ---------------------------------------------------------------- configs

export interface PluginConf {
  type: string;
  name: string;
  cniVersion: string;
  capabilities: Record<string, boolean>;
}

/** One plugin object: parsed fields and the exact bytes sent (before injection). */
export interface NetworkConfig {
  network: PluginConf;
  bytes: string;
}

export interface NetworkConfigList {
  name: string;
  cniVersion: string;
  disableCheck: boolean;
  disableGC: boolean;
  loadOnlyInlinedPlugins: boolean;
  plugins: NetworkConfig[];
  /** the file's bytes, cached base64 as `config` */
  bytes: Buffer;
}

export class NotFoundError extends Error {
  constructor(dir: string, name: string) {
    super(`no net configuration with name "${name}" in ${dir}`);
  }
}

export class NoConfigsFoundError extends Error {
  constructor(dir: string) {
    super(`no net configurations found in ${dir}`);
  }
}

/** NetworkPluginConfFromBytes: one plugin object; `type` is required. */
export function confFromBytes(bytes: string | Buffer): NetworkConfig {
  let network: PluginConf;
  try {
    const s = GoStruct.from(parseJson(bytes), 'types.PluginConf');
    const caps = s.map('capabilities') ?? {};
    const capabilities: Record<string, boolean> = {};
    for (const [k, v] of Object.entries(caps)) {
      if (v !== null && typeof v !== 'boolean') throw new Error(`json: cannot unmarshal ${goJsonKind(v)} into Go struct field PluginConf.capabilities of type bool`);
      capabilities[k] = v === true;
    }
    s.object('ipam', 'types.IPAM')?.string('type');
    s.map('prevResult');
    network = { type: s.string('type') ?? '', name: s.string('name') ?? '', cniVersion: s.string('cniVersion') ?? '', capabilities };
  } catch (err) {
    throw new Error(`error parsing configuration: ${errorMessage(err)}`);
  }
  if (network.type === '') throw new Error("error parsing configuration: missing 'type'");
  return { network, bytes: typeof bytes === 'string' ? bytes : bytes.toString('utf8') };
}

function goJsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (isObject(v)) return 'object';
  return typeof v === 'number' ? 'number' : typeof v === 'string' ? 'string' : 'bool';
}

/** NetworkConfFromBytes: a conflist. */
export function confListFromBytes(bytes: Buffer): NetworkConfigList {
  const fail = (msg: string): never => {
    throw new Error(`error parsing configuration list: ${msg}`);
  };
  let raw: unknown;
  try {
    raw = parseJson(bytes);
  } catch (err) {
    return fail(errorMessage(err));
  }
  if (!isObject(raw)) return fail(`json: cannot unmarshal ${goJsonKind(raw)} into Go value of type map[string]interface {}`);
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(raw, k);
  if (!has('name')) fail('no name');
  if (typeof raw.name !== 'string') fail(`invalid name type ${goTypeOf(raw.name)}`);
  let cniVersion = '';
  if (has('cniVersion')) {
    if (typeof raw.cniVersion !== 'string') fail(`invalid cniVersion type ${goTypeOf(raw.cniVersion)}`);
    cniVersion = raw.cniVersion as string;
  }
  if (has('cniVersions')) {
    const rvs = raw.cniVersions;
    if (!Array.isArray(rvs)) return fail(`invalid type for cniVersions: ${goTypeOf(rvs)}`);
    const vs: string[] = [];
    rvs.forEach((rv, i) => {
      if (typeof rv !== 'string') fail(`invalid type for cniVersions index ${i}: ${goTypeOf(rv)}`);
      let gt = false;
      try {
        gt = versionGreaterThan(rv as string, CURRENT_VERSION);
      } catch (err) {
        fail(`invalid cniVersions entry ${rv as string} at index ${i}: ${errorMessage(err)}`);
      }
      if (!gt) vs.push(rv as string);
    });
    if (cniVersion !== '') {
      let gt = false;
      try {
        gt = versionGreaterThan(cniVersion, CURRENT_VERSION);
      } catch (err) {
        fail(`invalid cniVersion ${cniVersion}: ${errorMessage(err)}`);
      }
      if (!gt) vs.push(cniVersion);
    }
    vs.sort((a, b) => (a === b ? 0 : versionGreaterThan(a, b) ? 1 : -1));
    if (vs.length > 0) cniVersion = vs[vs.length - 1]!;
  }
  const readBool = (key: string): boolean => {
    if (!has(key)) return false;
    const v = raw[key];
    if (typeof v === 'boolean') return v;
    if (typeof v !== 'string') return fail(`invalid type ${goTypeOf(v)} for ${key}`);
    const s = v.toLowerCase();
    if (s === 'true') return true;
    if (s === 'false') return false;
    return fail(`invalid value ${JSON.stringify(s)} for ${key}`);
  };
  const list: NetworkConfigList = {
    name: raw.name as string,
    cniVersion,
    disableCheck: readBool('disableCheck'),
    disableGC: readBool('disableGC'),
    loadOnlyInlinedPlugins: readBool('loadOnlyInlinedPlugins'),
    plugins: [],
    bytes,
  };
  if (!has('plugins')) {
    if (list.loadOnlyInlinedPlugins) fail("`loadOnlyInlinedPlugins` is true, and no 'plugins' key");
    return list;
  }
  const plugins = raw.plugins;
  if (!Array.isArray(plugins)) return fail(`invalid 'plugins' type ${goTypeOf(plugins)}`);
  if (plugins.length === 0) fail('no plugins in list');
  plugins.forEach((p, i) => {
    try {
      list.plugins.push(confFromBytes(marshal(sortKeysDeep(p))));
    } catch (err) {
      throw new Error(`failed to parse plugin config ${i}: ${errorMessage(err)}`);
    }
  });
  return list;
}

function readConfigFile(file: string): Buffer {
  try {
    return readFileBounded(file, MAX_NETCONF_FILE);
  } catch (err) {
    throw new Error(`error reading ${file}: ${pathError(readErrorOp(err), file, err).message}`);
  }
}

/** NetworkConfFromFile: a conflist plus `<dir>/<name>/*.conf` plugin objects. */
export function confListFromFile(file: string): NetworkConfigList {
  const list = confListFromBytes(readConfigFile(file));
  if (!list.loadOnlyInlinedPlugins) {
    const pluginDir = join(dirname(file), list.name);
    let files: string[];
    try {
      files = confFiles(pluginDir, ['.conf']);
    } catch (err) {
      throw new Error(`failed to read plugin config files in ${pluginDir}: ${errorMessage(err)}`);
    }
    for (const f of files) list.plugins.push(confFromBytes(readConfigFile(f)));
  }
  if (list.plugins.length === 0) throw new Error('no plugin configs found');
  return list;
}

/** ConfFiles: regular entries of `dir` with one of the extensions (a missing dir is empty). */
export function confFiles(dir: string, extensions: string[]): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw pathError('open', dir, err);
  }
  return entries
    .filter((e) => !e.isDirectory() && extensions.includes(extname(e.name)))
    .map((e) => join(dir, e.name))
    .sort(byteOrder);
}

export const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** LoadConf: the first `.conf`/`.json` single-plugin file whose name matches. */
export function loadConf(dir: string, name: string): NetworkConfig {
  const files = confFiles(dir, ['.conf', '.json']);
  if (files.length === 0) throw new NoConfigsFoundError(dir);
  for (const f of files) {
    const conf = confFromBytes(readConfigFile(f));
    if (conf.network.name === name) return conf;
  }
  throw new NotFoundError(dir, name);
}

/** LoadNetworkConf / LoadConfList. */
export function loadConfList(dir: string, name: string): NetworkConfigList {
  const files = confFiles(dir, ['.conflist']);
  for (const f of files) {
    const list = confListFromFile(f);
    if (list.name === name) return list;
  }
  let single: NetworkConfig;
  try {
    single = loadConf(dir, name);
  } catch (err) {
    if (files.length > 0 && err instanceof NoConfigsFoundError) throw new NotFoundError(dir, name);
    throw err;
  }
  return confListFromConf(single);
}

/** ConfListFromConf: a single plugin config up-converted to a one-entry list. */
export function confListFromConf(conf: NetworkConfig): NetworkConfigList {
  const raw = parseJson(conf.bytes);
  return confListFromBytes(Buffer.from(marshal(sortKeysDeep({ cniVersion: conf.network.cniVersion, name: conf.network.name, plugins: [raw] }))));
}

/** InjectConf: sets top-level keys; values given as already-ordered JSON objects are kept as they are. */
export function injectConf(orig: NetworkConfig, values: JsonObject): NetworkConfig {
  let config: unknown;
  try {
    config = parseJson(orig.bytes);
  } catch (err) {
    throw new Error(`unmarshal existing network bytes: ${errorMessage(err)}`);
  }
  const merged: JsonObject = { ...(config as JsonObject) };
  for (const [k, v] of Object.entries(values)) {
    if (k === '') throw new Error('keys cannot be empty');
    if (v === null || v === undefined) throw new Error(`key '${k}' value must not be nil`);
    merged[k] = v;
  }
  const out: JsonObject = {};
  for (const k of Object.keys(merged).sort(byteOrder)) out[k] = k in values ? merged[k] : sortKeysDeep(merged[k]);
  return { network: orig.network, bytes: marshal(out) };
}
