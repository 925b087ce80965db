// The flannel plugin's own config (flannel-io/cni-plugin NetConf): types.NetConf plus subnetFile,
// dataDir, delegate, ipam and runtimeConfig. Keys match case-insensitively and wrong JSON types are
// errors, as Go's encoding/json does; `delegate`, `ipam` and `runtimeConfig` stay raw maps.
import { GoStruct, isObject, parseJson, type JsonObject } from '../../shared/go/json.js';
import { errorMessage } from '../../shared/log.js';

export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env';
export const DEFAULT_DATA_DIR = '/var/lib/cni/flannel';

export interface FlannelNetConf {
  name: string;
  /** '' when absent: then the delegate gets no cniVersion either */
  cniVersion: string;
  type: string;
  subnetFile: string;
  dataDir: string;
  delegate?: JsonObject;
  ipam?: JsonObject;
  runtimeConfig?: JsonObject;
}

/** loadFlannelNetConf, with HEAD's wrapper: `failed to load flannel netconf file: failed to load netconf: <err>`. */
export function parseFlannelNetConf(stdin: Buffer | string): FlannelNetConf {
  try {
    return parseNetConf(parseJson(stdin));
  } catch (err) {
    throw new Error(`failed to load flannel netconf file: failed to load netconf: ${errorMessage(err)}`);
  }
}

function parseNetConf(raw: unknown): FlannelNetConf {
  const s = GoStruct.from(raw, 'main.NetConf');
  // the embedded types.NetConf fields, type-checked as json.Unmarshal would
  const capabilities = s.map('capabilities');
  if (capabilities) {
    for (const v of Object.values(capabilities)) {
      if (v !== null && typeof v !== 'boolean') throw new Error(`json: cannot unmarshal ${typeName(v)} into Go struct field NetConf.capabilities of type bool`);
    }
  }
  s.map('prevResult');
  const dns = s.object('dns', 'types.DNS');
  if (dns) {
    dns.stringArray('nameservers');
    dns.string('domain');
    dns.stringArray('search');
    dns.stringArray('options');
  }
  return {
    name: s.string('name') ?? '',
    cniVersion: s.string('cniVersion') ?? '',
    type: s.string('type') ?? '',
    subnetFile: s.string('subnetFile') ?? DEFAULT_SUBNET_FILE,
    dataDir: s.string('dataDir') ?? DEFAULT_DATA_DIR,
    delegate: s.map('delegate'),
    ipam: s.map('ipam'),
    runtimeConfig: s.map('runtimeConfig'),
  };
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (isObject(v)) return 'object';
  return typeof v === 'number' ? 'number' : typeof v === 'string' ? 'string' : 'bool';
}
