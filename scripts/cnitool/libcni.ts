// libcni for our runtime client (scripts/cnitool), as containernetworking/cni libcni does it:
// - config discovery: `*.conflist` first (sorted full paths, the first whose name matches wins, a parse
//   error in any earlier file aborts), then `*.conf`/`*.json` up-converted to a one-plugin list; plugin
//   objects from `<dir>/<netName>/*.conf` are appended unless `loadOnlyInlinedPlugins`;
// - the chain: per plugin, `name`/`cniVersion` injected, `prevResult` = the previous plugin's result,
//   `runtimeConfig` = its true capabilities ∩ the runtime's capability args; keys re-marshalled sorted;
// - the result cache `<cacheDir>/results/<net>-<containerID>-<ifName>` (kind cniCacheV1, config base64);
// - CHECK/DEL with the cached result as prevResult (≥ 0.4.0), DEL in reverse order, GC of cached
//   attachments, STATUS (≥ 1.1.0).
// Errors are worded as libcni's (`plugin type="bridge" failed (add): ...`).
// One deliberate choice between libcni versions: DEL always removes the cache file (v1.1.x); HEAD keeps
// it for lists below 0.4.0, where no cached result was read.
// Where we differ from libcni on purpose: config and cache files are read bounded (regular files of at
// most 16 MiB, shared/fs/read-bounded.ts): a FIFO or /dev/zero among the configs is an error at once.
import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { CniError } from '../../shared/cni/errors.js';
import { execPlugin, findInPath } from '../../shared/cni/invoke.js';
import { validateContainerId, validateInterfaceName } from '../../shared/cni/skel.js';
import type { Result } from '../../shared/cni/types.js';
import { CURRENT_VERSION, isSupportedVersion, parseResult, resultToVersion } from '../../shared/cni/version.js';
import { MAX_NETCONF_FILE, readFileBounded } from '../../shared/fs/read-bounded.js';
import { pathError, readErrorOp } from '../../shared/go/errors.js';
import { GoStruct, isObject, marshal, parseJson, sortKeysDeep, type JsonObject } from '../../shared/go/json.js';
import { errorMessage } from '../../shared/log.js';

/** types.Error.Error(): `msg` or `msg; details` (Go's %v of a plugin error; libcni's messages embed it). */
export function errorText(err: unknown): string {
  if (err instanceof CniError) return err.details ? `${err.message}; ${err.details}` : err.message;
  return errorMessage(err);
}

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

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

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

// ---------------------------------------------------------------- runtime

export interface RuntimeConf {
  containerId: string;
  netns: string;
  ifName: string;
  /** CNI_ARGS pairs */
  args?: Array<[string, string]>;
  capabilityArgs?: JsonObject;
}

export interface CniConfigOptions {
  /** default /var/lib/cni */
  cacheDir?: string;
  /** base environment for plugins (default process.env) */
  env?: Record<string, string | undefined>;
  /** where the plugins' stderr goes (default our stderr) */
  writeStderr?: (text: string) => void;
}

export interface NetworkAttachment {
  containerId: string;
  network: string;
  ifName: string;
  config: Buffer;
  netns: string;
  cniArgs?: Array<[string, string]>;
  capabilityArgs?: JsonObject;
}

export const DEFAULT_CACHE_DIR = '/var/lib/cni';
const CACHE_KIND = 'cniCacheV1';

type Verb = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC';

export class CNIConfig {
  readonly cacheDir: string;
  private readonly env: Record<string, string | undefined>;
  private readonly writeStderr: (text: string) => void;

  constructor(
    readonly path: string[],
    o: CniConfigOptions = {},
  ) {
    this.cacheDir = o.cacheDir || DEFAULT_CACHE_DIR;
    this.env = o.env ?? process.env;
    this.writeStderr = o.writeStderr ?? ((t) => process.stderr.write(t));
  }

  // ---- exec

  private async exec(verb: Verb, pluginPath: string, stdin: string, rt: RuntimeConf): Promise<Buffer> {
    const env: Record<string, string | undefined> = {
      ...this.env,
      CNI_COMMAND: verb,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_ARGS: (rt.args ?? []).map(([k, v]) => `${k}=${v}`).join(';'),
      CNI_IFNAME: rt.ifName,
      CNI_PATH: this.path.join(':'),
    };
    const { stdout, stderr } = await execPlugin(pluginPath, stdin, env);
    if (stderr.length > 0) this.writeStderr(stderr.toString('utf8'));
    return stdout;
  }

  private find(type: string): string {
    return findInPath(type, this.path.join(':'));
  }

  private buildOneConfig(list: NetworkConfigList, net: NetworkConfig, prevResult: Result | undefined, rt: RuntimeConf): NetworkConfig {
    const inject: JsonObject = { name: list.name, cniVersion: list.cniVersion };
    if (prevResult) inject.prevResult = resultToVersion(prevResult, prevResult.cniVersion);
    let conf = injectConf(net, inject);
    const rc: JsonObject = {};
    for (const [cap, supported] of Object.entries(net.network.capabilities)) {
      if (supported && rt.capabilityArgs && Object.prototype.hasOwnProperty.call(rt.capabilityArgs, cap)) rc[cap] = rt.capabilityArgs[cap];
    }
    if (Object.keys(rc).length > 0) conf = injectConf(conf, { runtimeConfig: sortKeysDeep(rc) });
    return conf;
  }

  private async addNetwork(list: NetworkConfigList, net: NetworkConfig, prevResult: Result | undefined, rt: RuntimeConf): Promise<Result> {
    const pluginPath = this.find(net.network.type);
    validateContainerId(rt.containerId);
    if (list.name === '') throw new CniError(7, 'missing network name:');
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(list.name)) throw new CniError(7, 'invalid characters found in network name', list.name);
    validateInterfaceName(rt.ifName);
    const conf = this.buildOneConfig(list, net, prevResult, rt);
    const stdout = await this.exec('ADD', pluginPath, conf.bytes, rt);
    return decodeResult(stdout, list.cniVersion);
  }

  /** AddNetworkList: the chain with prevResult, then the cache. */
  async addNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<Result | undefined> {
    let result: Result | undefined;
    for (const net of list.plugins) {
      try {
        result = await this.addNetwork(list, net, result, rt);
      } catch (err) {
        throw new Error(`plugin ${pluginDescription(net.network)} failed (add): ${errorText(err)}`, { cause: err });
      }
    }
    try {
      this.cacheAdd(result, list, rt);
    } catch (err) {
      throw new Error(`failed to set network ${JSON.stringify(list.name)} cached result: ${errorText(err)}`);
    }
    return result;
  }

  /** CheckNetworkList: ≥ 0.4.0, the cached result as prevResult for every plugin, stops at the first error. */
  async checkNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<void> {
    if (!versionGreaterThanOrEqualTo(list.cniVersion, '0.4.0')) {
      throw new Error(`configuration version ${JSON.stringify(list.cniVersion)} does not support the CHECK command`);
    }
    if (list.disableCheck) return;
    let cached: Result | undefined;
    try {
      cached = this.getCachedResult(list.name, list.cniVersion, rt);
    } catch (err) {
      throw new Error(`failed to get network ${JSON.stringify(list.name)} cached result: ${errorText(err)}`);
    }
    for (const net of list.plugins) {
      const pluginPath = this.find(net.network.type);
      const conf = this.buildOneConfig(list, net, cached, rt);
      await this.exec('CHECK', pluginPath, conf.bytes, rt);
    }
  }

  /** DelNetworkList: reverse order, cached prevResult for ≥ 0.4.0 (a bad cache is dropped), then the cache goes. */
  async delNetworkList(list: NetworkConfigList, rt: RuntimeConf): Promise<void> {
    let cached: Result | undefined;
    if (versionGreaterThanOrEqualTo(list.cniVersion, '0.4.0')) {
      try {
        cached = this.getCachedResult(list.name, list.cniVersion, rt);
      } catch {
        this.cacheDel(list.name, rt);
        cached = undefined;
      }
    }
    for (let i = list.plugins.length - 1; i >= 0; i--) {
      const net = list.plugins[i]!;
      try {
        const pluginPath = this.find(net.network.type);
        const conf = this.buildOneConfig(list, net, cached, rt);
        await this.exec('DEL', pluginPath, conf.bytes, rt);
      } catch (err) {
        throw new Error(`plugin ${pluginDescription(net.network)} failed (delete): ${errorText(err)}`, { cause: err });
      }
    }
    this.cacheDel(list.name, rt);
  }

  /** GCNetworkList: DEL every cached attachment of this network not in `validAttachments`, then GC (≥ 1.1.0). */
  async gcNetworkList(list: NetworkConfigList, validAttachments?: Array<{ containerID: string; ifname: string }>): Promise<void> {
    let cachedAttachments: NetworkAttachment[];
    try {
      cachedAttachments = this.getCachedAttachments('');
    } catch {
      return;
    }
    const valid = new Set((validAttachments ?? []).map((a) => `${a.containerID}\0${a.ifname}`));
    const errs: string[] = [];
    for (const a of cachedAttachments) {
      if (a.network !== list.name || valid.has(`${a.containerId}\0${a.ifName}`)) continue;
      const rt: RuntimeConf = { containerId: a.containerId, netns: a.netns, ifName: a.ifName, args: a.cniArgs, capabilityArgs: a.capabilityArgs };
      try {
        await this.delNetworkList(list, rt);
      } catch (err) {
        errs.push(`failed to delete stale attachment ${rt.containerId} ${rt.ifName}: ${errorText(err)}`);
      }
    }
    if (safeGte(list.cniVersion, '1.1.0')) {
      const inject: JsonObject = { name: list.name, cniVersion: list.cniVersion };
      if (validAttachments) inject['cni.dev/valid-attachments'] = validAttachments;
      for (const plugin of list.plugins) {
        try {
          const conf = injectConf(plugin, inject);
          await this.exec('GC', this.find(plugin.network.type), conf.bytes, EMPTY_RT);
        } catch (err) {
          errs.push(`failed to GC plugin ${plugin.network.type}: ${errorText(err)}`);
        }
      }
    }
    if (errs.length > 0) throw new Error(errs.join('\n'));
  }

  /** GetStatusNetworkList: STATUS to each plugin (≥ 1.1.0), the first error returned as is. */
  async getStatusNetworkList(list: NetworkConfigList): Promise<void> {
    if (!safeGte(list.cniVersion, '1.1.0')) return;
    for (const plugin of list.plugins) {
      const conf = injectConf(plugin, { name: list.name, cniVersion: list.cniVersion });
      await this.exec('STATUS', this.find(plugin.network.type), conf.bytes, EMPTY_RT);
    }
  }

  // ---- cache

  cacheFilePath(netName: string, rt: RuntimeConf): string {
    if (netName === '' || rt.containerId === '' || rt.ifName === '') {
      throw new Error(
        `cache file path requires network name (${JSON.stringify(netName)}), container ID (${JSON.stringify(rt.containerId)}), and interface name (${JSON.stringify(rt.ifName)})`,
      );
    }
    return join(this.cacheDir, 'results', `${netName}-${rt.containerId}-${rt.ifName}`);
  }

  private cacheAdd(result: Result | undefined, list: NetworkConfigList, rt: RuntimeConf): void {
    const cached: JsonObject = {
      kind: CACHE_KIND,
      containerId: rt.containerId,
      config: list.bytes.toString('base64'),
      ifName: rt.ifName,
      networkName: list.name,
    };
    if (rt.netns) cached.netns = rt.netns;
    if (rt.args && rt.args.length > 0) cached.cniArgs = rt.args;
    if (rt.capabilityArgs && Object.keys(rt.capabilityArgs).length > 0) cached.capabilityArgs = sortKeysDeep(rt.capabilityArgs);
    if (result) cached.result = sortKeysDeep(resultToVersion(result, result.cniVersion));
    const file = this.cacheFilePath(list.name, rt);
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, marshal(cached), { mode: 0o600 });
  }

  private cacheDel(netName: string, rt: RuntimeConf): void {
    try {
      unlinkSync(this.cacheFilePath(netName, rt));
    } catch {
      // nothing cached
    }
  }

  /** getCachedResult: undefined when there is no file; converted to `cniVersion`. */
  getCachedResult(netName: string, cniVersion: string, rt: RuntimeConf): Result | undefined {
    const file = this.cacheFilePath(netName, rt);
    let data: Buffer;
    try {
      data = readFileBounded(file, MAX_NETCONF_FILE);
    } catch {
      return undefined;
    }
    let raw: unknown;
    try {
      const info = parseJson(data);
      raw = isObject(info) && info.kind === CACHE_KIND ? (info.result ?? {}) : info;
    } catch (err) {
      throw new Error(errorMessage(err));
    }
    const result = decodeResultObject(raw, '');
    try {
      return parseResult(resultToVersion(result, cniVersion === '' ? '0.1.0' : cniVersion), cniVersion);
    } catch (err) {
      throw new Error(`failed to convert cached result to config version ${JSON.stringify(cniVersion)}: ${errorMessage(err)}`);
    }
  }

  /** GetCachedAttachments: every valid cniCacheV1 file, optionally for one container. */
  getCachedAttachments(containerId: string): NetworkAttachment[] {
    const dir = join(this.cacheDir, 'results');
    const names = readdirSync(dir).sort(byteOrder);
    const out: NetworkAttachment[] = [];
    for (const name of names) {
      if (containerId !== '') {
        const part = `-${containerId}-`;
        const pos = name.indexOf(part);
        if (pos <= 0 || pos + part.length >= name.length) continue;
      }
      let info: unknown;
      try {
        info = parseJson(readFileBounded(join(dir, name), MAX_NETCONF_FILE));
      } catch {
        continue;
      }
      if (!isObject(info) || info.kind !== CACHE_KIND) continue;
      if (containerId !== '' && info.containerId !== containerId) continue;
      if (typeof info.ifName !== 'string' || info.ifName === '' || typeof info.networkName !== 'string' || info.networkName === '') continue;
      out.push({
        containerId: String(info.containerId ?? ''),
        network: info.networkName,
        ifName: info.ifName,
        config: Buffer.from(typeof info.config === 'string' ? info.config : '', 'base64'),
        netns: typeof info.netns === 'string' ? info.netns : '',
        cniArgs: Array.isArray(info.cniArgs) ? (info.cniArgs as Array<[string, string]>) : undefined,
        capabilityArgs: isObject(info.capabilityArgs) ? info.capabilityArgs : undefined,
      });
    }
    return out;
  }
}

const EMPTY_RT: RuntimeConf = { containerId: '', netns: '', ifName: '' };

function safeGte(v: string, min: string): boolean {
  try {
    return versionGreaterThanOrEqualTo(v, min);
  } catch {
    return false;
  }
}

function pluginDescription(net: PluginConf): string {
  return net.name ? `type=${JSON.stringify(net.type)} name=${JSON.stringify(net.name)}` : `type=${JSON.stringify(net.type)}`;
}

/** ExecPluginWithResult's decoding: a result without cniVersion gets the config's (fixupResultVersion). */
function decodeResult(stdout: Buffer, confVersion: string): Result {
  let raw: unknown;
  try {
    raw = parseJson(stdout);
  } catch (err) {
    throw new Error(`decoding version from network config: ${errorMessage(err)}`);
  }
  return decodeResultObject(raw, confVersion === '' ? '0.1.0' : confVersion);
}

function decodeResultObject(raw: unknown, fallbackVersion: string): Result {
  const result = parseResult(raw, fallbackVersion || '0.1.0');
  if (!isSupportedVersion(result.cniVersion)) throw new Error(`unsupported CNI result version ${JSON.stringify(result.cniVersion)}`);
  return result;
}
