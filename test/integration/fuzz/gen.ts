// A small seeded generator of hostile CNI inputs for plugins-fuzz.test.ts: valid configs of the four
// plugins, mutated (wrong JSON types, deleted and case-shadowed keys, huge and odd numbers, unicode,
// garbage prevResult, garbage stdin), and hostile environments (IDs, ifnames, CNI_ARGS, CNI_PATH,
// netns paths). The same seed gives the same inputs.
//
// Safety: every path a plugin may WRITE stays under the test's root. Whatever the mutations did, the
// config is repaired at the end so that the effective (Go's case-insensitive, last-match) `dataDir` at
// the top level (flannel) and in `ipam` (host-local) is a private directory: a missing one would mean
// the defaults /var/lib/cni/flannel and /var/lib/cni/networks.
import { join } from 'node:path';

export type PluginName = 'bridge' | 'host-local' | 'loopback' | 'flannel';
export const PLUGINS: readonly PluginName[] = ['bridge', 'host-local', 'loopback', 'flannel'];

/** mulberry32: tiny, fast, good enough to spread inputs; deterministic for a seed. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r: Rng = {
    next,
    int: (n) => Math.floor(next() * n),
    chance: (p) => next() < p,
    pick: (list) => list[Math.floor(next() * list.length)]!,
  };
  return r;
}

export interface Rng {
  next(): number;
  int(n: number): number;
  chance(p: number): boolean;
  pick<T>(list: readonly T[]): T;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

/** Number literals JSON.stringify cannot write; swapped in after stringify. */
const RAW_NUMBERS = ['1e400', '-0', '1E+2', '123456789012345678901234567890', '0.0000000000000000000001', '-9223372036854775809'];
const rawMark = (i: number) => `@@RAW${i}@@`;

const STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ufeff',
  '\u202e',
  '💥',
  'ü',
  '../../etc/passwd',
  '/dev/zero',
  'a'.repeat(5000),
  '10.0.0.0/8',
  '::ffff:10.0.0.0/104',
  '0.0.0.0/0',
  '300.1.1.1',
  'fe80::1%eth0',
  '10.1.2.3',
  'true',
  '1.0.0',
  'host-local',
  'bridge',
  'loopback',
  'flannel',
  '<script>&',
];

function hostileValue(r: Rng): Json {
  switch (r.int(7)) {
    case 0:
      return r.pick([null, true, false]);
    case 1:
      return r.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 18446744073709551616, 65536, 4095, 4096, 65535]);
    case 2:
      return rawMark(r.int(RAW_NUMBERS.length));
    case 3:
    case 4:
      return r.pick(STRINGS);
    case 5:
      return r.pick<Json>([[], [1, 'x', null], [[]], [{ dst: '0.0.0.0/0' }], ['10.0.0.1']]);
    default:
      return r.pick<Json>([{}, { a: { b: [] } }, { type: 'host-local' }, { subnet: '10.9.0.0/24' }]);
  }
}

const KEYS = [
  'cniVersion', 'CNIVERSION', 'name', 'Name', 'type', 'TYPE', 'ipam', 'IPAM', 'prevResult', 'runtimeConfig', 'capabilities', 'args',
  'delegate', 'ranges', 'routes', 'subnet', 'gateway', 'rangeStart', 'rangeEnd', 'mtu', 'vlan', 'vlanTrunk', 'ipMasq', 'hairpinMode',
  'bridge', 'isGateway', 'isDefaultGateway', 'forceAddress', 'promiscMode', 'macspoofchk', 'enabledad', 'mac', 'dns', 'preserveDefaultVlan',
  'subnetFile', 'ips', 'ipRanges', 'resolvConf', 'disableContainerInterface', 'portMappings',
];

const PREV_RESULTS: Json[] = [
  5,
  'x',
  [],
  {},
  { cniVersion: '9.9.9' },
  { cniVersion: 5 },
  { ips: 'x' },
  { ips: [{ address: 'bogus' }] },
  { ips: [{ address: '10.0.0.2/24', gateway: 'x', interface: 99 }] },
  { interfaces: [{ name: 5 }] },
  { interfaces: [{ name: 'eth0', mtu: 'x' }], ips: [{ version: '4', address: '10.0.0.2/24', interface: 0 }] },
  { routes: [{ dst: '0.0.0.0' }] },
  { ip4: { ip: '1.2.3.4' } },
  { dns: { nameservers: 'x' } },
  { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.2/24', interface: 0 }], routes: [{ dst: '0.0.0.0/0' }] },
];

const VERSIONS: Json[] = ['', '0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0', '9.9.9', '1.0', 'x', 5, null];
export const GOOD_VERSIONS = ['0.3.1', '0.4.0', '1.0.0', '1.1.0'];

/** All (object) paths in a config tree, for picking a place to mutate. */
function paths(v: Json, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (v !== null && typeof v === 'object') {
    for (const [k, child] of Array.isArray(v) ? v.map((c, i) => [i, c] as const) : Object.entries(v)) {
      out.push([...prefix, k]);
      paths(child as Json, [...prefix, k], out);
    }
  }
  return out;
}

function parentOf(root: Json, path: Array<string | number>): { parent: Obj | Json[]; key: string | number } | undefined {
  let cur: Json = root;
  for (const k of path.slice(0, -1)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Obj)[k as string] as Json;
  }
  if (cur === null || typeof cur !== 'object') return undefined;
  return { parent: cur as Obj, key: path[path.length - 1]! };
}

export function mutate(conf: Obj, r: Rng): Obj {
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const all = paths(conf);
    switch (r.int(6)) {
      case 0:
      case 1: {
        const p = all.length ? r.pick(all) : undefined;
        const at = p && parentOf(conf, p);
        if (at) (at.parent as Obj)[at.key as string] = hostileValue(r);
        break;
      }
      case 2: {
        const p = all.length ? r.pick(all) : undefined;
        const at = p && parentOf(conf, p);
        if (at && !Array.isArray(at.parent)) delete (at.parent as Obj)[at.key as string];
        break;
      }
      case 3: {
        // a key added at the top or in a nested object (case variants shadow the real one)
        const objs: Obj[] = [conf, ...all.map((p) => parentOf(conf, [...p, 'x'])?.parent).filter((o): o is Obj => !!o && !Array.isArray(o))];
        r.pick(objs)[r.pick(KEYS)] = hostileValue(r);
        break;
      }
      case 4:
        conf.prevResult = r.pick(PREV_RESULTS);
        break;
      default:
        conf.cniVersion = r.pick(VERSIONS);
    }
  }
  return conf;
}

/** Stdin that is not a config at all. */
const GARBAGE_STDIN = [
  '',
  'null',
  '[]',
  '{',
  'not json',
  '{"a":1}{"b":2}',
  '\ufeff{"cniVersion":"1.0.0","name":"n"}',
  `${'['.repeat(20000)}${']'.repeat(20000)}`,
  ' '.repeat(100000),
  '{"cniVersion":"1.0.0","name":"n","type":"bridge","ipam":',
  '"just a string"',
  '12345',
];

export interface Paths {
  root: string;
  /** a directory with only our four plugins (symlinks): CNI_PATH never reaches flanneld or cnitool */
  bin: string;
  /** a valid subnet.env */
  subnetFile: string;
  /** files and paths that make hostile subnetFile values, all read-only for the plugins */
  hostileSubnetFiles: readonly string[];
}

export interface Case {
  id: number;
  plugin: PluginName;
  command: string;
  env: Record<string, string>;
  stdin: string;
  /** the private directory this case's plugin may write under */
  dir: string;
  note: string;
}

function dataDirOf(dir: string): { ipam: string; flannel: string } {
  return { ipam: join(dir, 'ipam'), flannel: join(dir, 'flannel') };
}

/** A valid config of `plugin` writing under `dir`. */
export function baseConfig(plugin: PluginName, r: Rng, dir: string, p: Paths, k: number): Obj {
  const dd = dataDirOf(dir);
  const v4 = r.pick(['10.77.0.0/24', '10.77.8.0/22', '192.168.201.0/28']);
  const ipamRanges: Obj = r.pick<Obj>([
    { subnet: v4 },
    { ranges: [[{ subnet: v4 }]] },
    { ranges: [[{ subnet: v4 }], [{ subnet: 'fd77::/64' }]] },
    { subnet: v4, routes: [{ dst: '0.0.0.0/0' }] },
  ]);
  const cniVersion = r.pick(GOOD_VERSIONS);
  switch (plugin) {
    case 'loopback':
      return { cniVersion, name: 'fz-lo', type: 'loopback' };
    case 'host-local':
      return { cniVersion, name: 'fz-hl', type: 'host-local', ipam: { type: 'host-local', dataDir: dd.ipam, ...ipamRanges } };
    case 'bridge':
      return {
        cniVersion,
        name: 'fz-br',
        type: 'bridge',
        bridge: `fzb${k}`,
        isGateway: r.chance(0.7),
        ipMasq: r.chance(0.3),
        hairpinMode: r.chance(0.3),
        ...(r.chance(0.3) ? { mtu: r.pick([1400, 1500, 9000]) } : {}),
        ipam: { type: 'host-local', dataDir: dd.ipam, ...ipamRanges },
      };
    case 'flannel':
      return {
        cniVersion,
        name: 'fz-fl',
        type: 'flannel',
        subnetFile: p.subnetFile,
        dataDir: dd.flannel,
        ipam: { dataDir: dd.ipam },
        delegate: { bridge: `fzf${k}`, ...(r.chance(0.3) ? { hairpinMode: true } : {}), ...(r.chance(0.2) ? { isDefaultGateway: true } : {}) },
      };
  }
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets `key` in `o` as the only case variant of it. */
function setOnly(o: Obj, key: string, value: Json): void {
  for (const k of Object.keys(o)) if (k.toLowerCase() === key.toLowerCase()) delete o[k];
  o[key] = value;
}

function lastMatch(o: Obj, key: string): Json | undefined {
  let v: Json | undefined;
  for (const k of Object.keys(o)) if (k.toLowerCase() === key.toLowerCase()) v = o[k];
  return v;
}

/**
 * The safety repair (see the header): effective top-level dataDir and ipam.dataDir inside `dir` (a
 * hostile but private value is kept), subnetFile inside the root or a hostile read-only path.
 */
export function confine(conf: Obj, dir: string, p: Paths): Obj {
  const dd = dataDirOf(dir);
  const inside = (v: Json | undefined, base: string) => typeof v === 'string' && v.startsWith(`${base}/`) && !v.includes('..');
  if (!inside(lastMatch(conf, 'dataDir'), dir)) setOnly(conf, 'dataDir', dd.flannel);
  const sf = lastMatch(conf, 'subnetFile');
  if (!(typeof sf === 'string' && (sf === p.subnetFile || p.hostileSubnetFiles.includes(sf)))) setOnly(conf, 'subnetFile', p.subnetFile);
  const ipam = lastMatch(conf, 'ipam');
  if (ipam === undefined || ipam === null) setOnly(conf, 'ipam', { dataDir: dd.ipam });
  else if (isObj(ipam) && !inside(lastMatch(ipam, 'dataDir'), dir)) setOnly(ipam, 'dataDir', dd.ipam);
  // flannel hands `delegate` to its delegate with flannel's ipam; a delegate map never carries one
  return conf;
}

const IDS = ['', '../../x', 'a/b', '.x', '-x', 'x'.repeat(300), 'ü', 'a b', 'ok-id.1_2'];
const IFNAMES = ['eth0', '', '.', '..', 'x'.repeat(16), 'eth0:1', 'e th0', 'eth\ufeff0', 'eth\u00850', 'ü', 'a/b', 'x'.repeat(15), 'lo'];
const CNI_ARGS = ['', 'IgnoreUnknown=1', 'IP=10.77.0.9', 'IP=garbage', 'junk', 'K8S_POD_NAME=x;IgnoreUnknown=true', 'a=b=c', ';;;', 'IP=10.77.0.300', 'IgnoreUnknown=maybe'];
const COMMANDS = ['VERSION', 'ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'add', 'BOGUS', ''];

/**
 * One hostile input that never gets a usable pod netns (`netns` is junk), so any kernel work a plugin
 * could reach is refused: these run concurrently.
 */
export function hostileCase(id: number, r: Rng, p: Paths, badNetns: readonly string[]): Case {
  const plugin = r.pick(PLUGINS);
  const dir = join(p.root, `c${id}`);
  const command = r.pick(COMMANDS);
  let stdin: string;
  let note = '';
  if (r.chance(0.1)) {
    stdin = r.pick(GARBAGE_STDIN);
    note = 'garbage stdin';
  } else {
    // a quarter stays valid, so that hostile environments meet configs that would otherwise work
    const base = baseConfig(plugin, r, dir, p, id);
    const conf = confine(r.chance(0.75) ? mutate(base, r) : base, dir, p);
    if (plugin === 'flannel' && r.chance(0.3)) conf.subnetFile = r.pick(p.hostileSubnetFiles);
    stdin = JSON.stringify(conf).replace(/"@@RAW(\d+)@@"/g, (_m, i: string) => RAW_NUMBERS[Number(i)]!);
  }
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: r.chance(0.25) ? r.pick(IDS) : `fz-${id}`,
    CNI_NETNS: r.pick(badNetns),
    CNI_IFNAME: r.chance(0.3) ? r.pick(IFNAMES) : 'eth0',
    CNI_PATH: r.chance(0.15) ? r.pick(['', '/nonexistent', `/nonexistent:${p.bin}`, `${p.bin}/`, 'relative/dir']) : p.bin,
  };
  if (r.chance(0.3)) env.CNI_ARGS = r.pick(CNI_ARGS);
  for (const [k, v] of Object.entries(env)) if (v === '' && r.chance(0.5)) delete env[k];
  return { id, plugin, command, env, stdin, dir, note };
}

/** A mostly valid input for a real ADD+DEL against the pod netns `netns` (mild mutations only). */
export function realCase(id: number, r: Rng, p: Paths, netns: string): Case {
  const plugin = r.pick(PLUGINS);
  const dir = join(p.root, `r${id}`);
  const conf = baseConfig(plugin, r, dir, p, id);
  if (r.chance(0.35)) mutate(conf, r);
  if (plugin === 'bridge' && r.chance(0.15)) (conf.ipam as Obj).routes = [{ dst: (conf.ipam as Obj).subnet ?? '10.77.0.0/24' }];
  confine(conf, dir, p);
  const env: Record<string, string> = {
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: `fzr-${id}`,
    CNI_NETNS: netns,
    CNI_IFNAME: r.pick(['eth0', 'eth0', 'eth\ufeff0', 'ü0', 'e.1', 'x'.repeat(15)]),
    CNI_PATH: p.bin,
  };
  if (r.chance(0.2)) env.CNI_ARGS = r.pick(['IgnoreUnknown=1', 'K8S_POD_NAME=x;IgnoreUnknown=true', 'IP=10.77.0.9']);
  const stdin = JSON.stringify(conf).replace(/"@@RAW(\d+)@@"/g, (_m, i: string) => RAW_NUMBERS[Number(i)]!);
  return { id, plugin, command: 'ADD', env, stdin, dir, note: 'real' };
}
