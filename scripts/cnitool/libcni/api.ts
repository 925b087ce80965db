// libcni's runtime side, as containernetworking/cni libcni/api.go does it, for our runtime client
// (scripts/cnitool):
// - the chain: per plugin, `name`/`cniVersion` injected, `prevResult` = the previous plugin's result,
//   `runtimeConfig` = its true capabilities ∩ the runtime's capability args;
// - the result cache `<cacheDir>/results/<net>-<containerID>-<ifName>` (kind cniCacheV1, config base64);
// - CHECK/DEL with the cached result as prevResult (≥ 0.4.0), DEL in reverse order, GC of cached
//   attachments, STATUS (≥ 1.1.0).
// Errors are worded as libcni's (`plugin type="bridge" failed (add): ...`).
// One deliberate choice between libcni versions: DEL always removes the cache file (v1.1.x); HEAD keeps
// it for lists below 0.4.0, where no cached result was read.
// Where we differ from libcni on purpose: cache files are read bounded, as configs are (conf.ts).
import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CniError } from '../../../shared/cni/errors.js';
import { execPlugin, findInPath } from '../../../shared/cni/invoke.js';
import { validateContainerId, validateInterfaceName } from '../../../shared/cni/skel.js';
import type { Result } from '../../../shared/cni/types.js';
import { isSupportedVersion, parseResult, resultToVersion } from '../../../shared/cni/version.js';
import { MAX_NETCONF_FILE, readFileBounded } from '../../../shared/fs/read-bounded.js';
import { isObject, marshal, parseJson, sortKeysDeep, type JsonObject } from '../../../shared/go/json.js';
import { errorMessage } from '../../../shared/log.js';
import { byteOrder, injectConf, versionGreaterThanOrEqualTo, type NetworkConfig, type NetworkConfigList, type PluginConf } from './conf.js';

/** types.Error.Error(): `msg` or `msg; details` (Go's %v of a plugin error; libcni's messages embed it). */
export function errorText(err: unknown): string {
  if (err instanceof CniError) return err.details ? `${err.message}; ${err.details}` : err.message;
  return errorMessage(err);
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
