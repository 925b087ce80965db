// The bridge plugin's NetConf (plugins/main/bridge loadNetConf, HEAD): Go-compatible JSON decoding
// (case-insensitive keys, unknown keys ignored, wrong types are errors worded like encoding/json),
// the VLAN checks, and the container MAC from CNI_ARGS < args.cni.mac < runtimeConfig.mac.
// Every error here is plain: it reaches the runtime as code 999 with Go's message.
import { parseCniArgs } from '../../shared/cni/args.js';
import { GoJsonError, GoStruct, parseJson } from '../../shared/go/json.js';
import type { DNS } from '../../shared/cni/types.js';

export const DEFAULT_BRIDGE = 'cni0';

export interface BridgeConf {
  cniVersion: string;
  name: string;
  type: string;
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  /** 'iptables' | 'nftables' | undefined (= pick: iptables) */
  ipMasqBackend?: string;
  mtu: number;
  hairpinMode: boolean;
  promiscMode: boolean;
  vlan: number;
  /** sorted unique trunk VLAN ids; undefined when vlanTrunk is absent or empty */
  vlans?: number[];
  preserveDefaultVlan: boolean;
  macspoofchk: boolean;
  enabledad: boolean;
  disableContainerInterface: boolean;
  portIsolation: boolean;
  /** `ipam.type`; '' means L2 mode (no IPAM exec) */
  ipamType: string;
  dns: DNS;
  /** container MAC (CNI_ARGS MAC, args.cni.mac, runtimeConfig.mac: the last set wins) */
  mac?: string;
  /** raw prevResult (CHECK) */
  prevResult?: unknown;
}

/** loadNetConf: parses stdin and CNI_ARGS. Throws plain Errors with Go's messages. */
export function parseBridgeConf(stdin: Buffer | string, envArgs: string): BridgeConf {
  let n: BridgeConf;
  try {
    n = decode(parseJson(stdin));
  } catch (err) {
    if (err instanceof GoJsonError) throw new Error(`failed to load netconf: ${err.message}`, { cause: err });
    throw err;
  }
  if (n.vlan < 0 || n.vlan > 4094) throw new Error(`invalid VLAN ID ${n.vlan} (must be between 0 and 4094)`);
  if (n.vlan > 0 && n.vlans !== undefined) throw new Error('cannot set vlan and vlanTrunk at the same time');
  if (envArgs !== '') {
    const mac = parseCniArgs(envArgs, ['MAC']).get('MAC');
    // precedence: runtimeConfig.mac > args.cni.mac > CNI_ARGS MAC (decode already applied the first two)
    if (mac !== undefined && mac !== '' && n.mac === undefined) n.mac = mac;
  }
  return n;
}

function decode(raw: unknown): BridgeConf {
  const s = GoStruct.from(raw, 'main.NetConf');
  const ipam = s.object('ipam', 'types.IPAM');
  const dnsS = s.object('dns', 'types.DNS');
  const dns: DNS = {};
  if (dnsS) {
    const ns = dnsS.stringArray('nameservers');
    if (ns !== undefined) dns.nameservers = ns;
    const domain = dnsS.string('domain');
    if (domain) dns.domain = domain;
    const search = dnsS.stringArray('search');
    if (search !== undefined) dns.search = search;
    const options = dnsS.stringArray('options');
    if (options !== undefined) dns.options = options;
  }
  const n: BridgeConf = {
    cniVersion: s.string('cniVersion') ?? '',
    name: s.string('name') ?? '',
    type: s.string('type') ?? '',
    // absent or null keeps the default; "" overrides it, as in Go
    bridge: s.string('bridge') ?? DEFAULT_BRIDGE,
    isGateway: s.bool('isGateway', false),
    isDefaultGateway: s.bool('isDefaultGateway', false),
    forceAddress: s.bool('forceAddress', false),
    ipMasq: s.bool('ipMasq', false),
    mtu: s.int('mtu') ?? 0,
    hairpinMode: s.bool('hairpinMode', false),
    promiscMode: s.bool('promiscMode', false),
    vlan: s.int('vlan') ?? 0,
    preserveDefaultVlan: s.bool('preserveDefaultVlan', false),
    macspoofchk: s.bool('macspoofchk', false),
    enabledad: s.bool('enabledad', false),
    disableContainerInterface: s.bool('disableContainerInterface', false),
    portIsolation: s.bool('portIsolation', false),
    ipamType: ipam?.string('type') ?? '',
    dns,
  };
  const backend = s.string('ipMasqBackend');
  if (backend !== undefined) n.ipMasqBackend = backend;
  const trunk = s.array('vlanTrunk', '[]*main.VlanTrunk');
  if (trunk !== undefined) {
    const vlans = collectVlanTrunk(
      trunk.map((item) => {
        if (item === null) return {};
        const t = GoStruct.from(item, 'main.VlanTrunk');
        return { minID: t.int('minID'), maxID: t.int('maxID'), id: t.int('id') };
      }),
    );
    if (vlans !== undefined) n.vlans = vlans;
  }
  const argsMac = s.object('args')?.object('cni')?.string('mac');
  if (argsMac) n.mac = argsMac;
  const rtMac = s.object('runtimeConfig')?.string('mac');
  if (rtMac) n.mac = rtMac;
  const prev = s.raw('prevResult');
  if (prev !== undefined) n.prevResult = prev;
  return n;
}

export interface VlanTrunk {
  minID?: number | undefined;
  maxID?: number | undefined;
  id?: number | undefined;
}

/** collectVlanTrunk: the trunk entries as sorted unique ids; undefined when there are none. */
export function collectVlanTrunk(items: readonly VlanTrunk[]): number[] | undefined {
  const set = new Set<number>();
  for (const item of items) {
    const { minID, maxID, id } = item;
    if (minID !== undefined && maxID !== undefined) {
      if (minID <= 0 || minID > 4094) throw new Error('incorrect trunk minID parameter');
      if (maxID <= 0 || maxID > 4094) throw new Error('incorrect trunk maxID parameter');
      if (maxID < minID) throw new Error('minID is greater than maxID in trunk parameter');
      for (let v = minID; v <= maxID; v++) set.add(v);
    } else if (minID === undefined && maxID !== undefined) {
      throw new Error('minID and maxID should be configured simultaneously, minID is missing');
    } else if (minID !== undefined && maxID === undefined) {
      throw new Error('minID and maxID should be configured simultaneously, maxID is missing');
    }
    if (id !== undefined) {
      if (id <= 0 || id > 4094) throw new Error('incorrect trunk id parameter');
      set.add(id);
    }
  }
  if (set.size === 0) return undefined;
  return [...set].sort((a, b) => a - b);
}
