// The built loopback in network namespaces made here, side by side with the Go reference
// (/usr/lib/cni/loopback): lo state, byte-identical results over every version Go supports, and the
// same errors for garbage input. Never touches the root namespace.
import { existsSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { GO, OURS, buildPlugins, cniEnv, runPluginSync } from '../host-local/exec-plugin.js';
import { SUPPORTED_VERSIONS } from '../../../shared/cni/version.js';

const haveGo = existsSync(GO.loopback);
const GO_VERSIONS = ['', '0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'];

const conf = (cniVersion: string, extra: Record<string, unknown> = {}) => ({ cniVersion, name: 'cni-loopback', type: 'loopback', ...extra });
const env = (command: string, netns: string) => cniEnv({ command, containerId: 'c1', netns, ifName: 'eth0', path: '/opt/cni/bin' });

/** lo's state in `ns`: up flag and addresses, read with ip -j. */
function lo(ns: Netns): { up: boolean; addrs: string[] } {
  const [link] = JSON.parse(ns.exec(['ip', '-j', 'addr', 'show', 'dev', 'lo']).stdout) as Array<{ flags: string[]; addr_info: Array<{ local: string; prefixlen: number }> }>;
  return { up: link!.flags.includes('UP'), addrs: link!.addr_info.map((a) => `${a.local}/${a.prefixlen}`) };
}

describe.skipIf(!canUseNetns)('loopback in a netns', () => {
  let pod: Netns;
  beforeAll(buildPlugins);
  beforeEach(() => {
    pod = createNetns('lo');
    pod.exec(['ip', 'link', 'set', 'lo', 'down']);
  });
  afterEach(() => pod.delete());
  afterAll(cleanupNetns);

  it.each(SUPPORTED_VERSIONS)('ADD brings lo up, CHECK, DEL brings it down (%s)', (v) => {
    expect(lo(pod).up).toBe(false);
    const add = runPluginSync(OURS.loopback, env('ADD', pod.path), conf(v));
    expect(add.code, add.stdout).toBe(0);
    expect(add.stdout).toMatch(/^\{[\s\S]*\}$/);
    expect(lo(pod)).toEqual({ up: true, addrs: ['127.0.0.1/8', '::1/128'] });
    expect(add.json?.ips).toEqual([
      { interface: 0, address: '127.0.0.1/8' },
      { interface: 0, address: '::1/128' },
    ]);
    const check = runPluginSync(OURS.loopback, env('CHECK', pod.path), conf(v));
    expect(check.code).toBe(v >= '0.4.0' ? 0 : 1);
    const del = runPluginSync(OURS.loopback, env('DEL', pod.path), conf(v));
    expect(del).toMatchObject({ code: 0, stdout: '' });
    expect(lo(pod).up).toBe(false);
    if (v >= '0.4.0') {
      expect(runPluginSync(OURS.loopback, env('CHECK', pod.path), conf(v)).json).toEqual({ code: 999, msg: 'loopback interface is down' });
    }
  });

  it.skipIf(!haveGo).each(GO_VERSIONS)('prints exactly what Go prints for cniVersion %j', (v) => {
    const ours = runPluginSync(OURS.loopback, env('ADD', pod.path), conf(v));
    pod.exec(['ip', 'link', 'set', 'lo', 'down']);
    const go = runPluginSync(GO.loopback, env('ADD', pod.path), conf(v));
    expect(ours.stdout).toBe(go.stdout);
    expect(ours.code).toBe(go.code);
  });

  it.skipIf(!haveGo)('passes a prevResult through like Go', () => {
    const prev = {
      cniVersion: '0.4.0',
      interfaces: [{ name: 'eth0', sandbox: pod.path }],
      ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 0 }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: { nameservers: ['1.1.1.1'] },
    };
    for (const v of ['0.4.0', '1.0.0']) {
      const c = conf(v, { prevResult: { ...prev, cniVersion: v } });
      expect(runPluginSync(OURS.loopback, env('ADD', pod.path), c).stdout).toBe(runPluginSync(GO.loopback, env('ADD', pod.path), c).stdout);
    }
  });

  it.skipIf(!haveGo)('refuses a non-loopback address on lo like Go', () => {
    pod.exec(['ip', 'addr', 'add', '10.9.9.9/32', 'dev', 'lo']);
    const ours = runPluginSync(OURS.loopback, env('ADD', pod.path), conf('0.4.0'));
    expect(ours.json).toEqual({ code: 999, msg: 'loopback interface found with non-loopback address "10.9.9.9"' });
    expect(ours.stdout).toBe(runPluginSync(GO.loopback, env('ADD', pod.path), conf('0.4.0')).stdout);
  });

  it('DEL succeeds when the netns is already gone, twice', () => {
    const gone = createNetns('gone');
    const path = gone.path;
    gone.delete();
    for (let i = 0; i < 2; i++) expect(runPluginSync(OURS.loopback, env('DEL', path), conf('1.0.0'))).toMatchObject({ code: 0, stdout: '' });
    expect(runPluginSync(OURS.loopback, env('DEL', ''), conf('1.0.0'))).toMatchObject({ code: 0, stdout: '' });
  });
});

describe.skipIf(!canUseNetns || !haveGo)('loopback garbage input: same error code as Go, lo untouched', () => {
  let pod: Netns;
  beforeAll(() => {
    buildPlugins();
    pod = createNetns('lg');
    pod.exec(['ip', 'link', 'set', 'lo', 'down']);
  });
  afterAll(() => {
    pod.delete();
    cleanupNetns();
  });

  const CASES: Array<[string, string, () => Record<string, string>, string]> = [
    ['empty stdin', 'ADD', () => env('ADD', pod.path), ''],
    ['broken JSON', 'ADD', () => env('ADD', pod.path), '{"cniVersion"'],
    ['unknown cniVersion', 'ADD', () => env('ADD', pod.path), JSON.stringify(conf('9.9.9'))],
    ['missing name', 'ADD', () => env('ADD', pod.path), '{"cniVersion":"1.0.0","type":"loopback"}'],
    ['NUL in name', 'ADD', () => env('ADD', pod.path), JSON.stringify(conf('1.0.0', { name: 'a\u0000b' }))],
    ['prevResult not an object', 'ADD', () => env('ADD', pod.path), JSON.stringify(conf('1.0.0', { prevResult: [1] }))],
    ['netns path that does not exist (ADD)', 'ADD', () => env('ADD', '/var/run/netns/ftest-none'), JSON.stringify(conf('1.0.0'))],
    ['netns path that does not exist (CHECK)', 'CHECK', () => env('CHECK', '/var/run/netns/ftest-none'), JSON.stringify(conf('1.0.0'))],
    ['netns path that is not a netns (ADD)', 'ADD', () => env('ADD', '/tmp'), JSON.stringify(conf('1.0.0'))],
    ['netns path that is not a netns (DEL)', 'DEL', () => env('DEL', '/tmp'), JSON.stringify(conf('1.0.0'))],
    ['hostile container ID', 'ADD', () => ({ ...env('ADD', pod.path), CNI_CONTAINERID: '../../etc' }), JSON.stringify(conf('1.0.0'))],
    ['over-long ifname', 'ADD', () => ({ ...env('ADD', pod.path), CNI_IFNAME: 'x'.repeat(16) }), JSON.stringify(conf('1.0.0'))],
    ['missing CNI_NETNS', 'ADD', () => ({ ...env('ADD', pod.path), CNI_NETNS: '' }), JSON.stringify(conf('1.0.0'))],
    ['missing CNI_PATH', 'DEL', () => ({ ...env('DEL', pod.path), CNI_PATH: '' }), JSON.stringify(conf('1.0.0'))],
  ];

  it.each(CASES)('%s', (_name, _cmd, mkEnv, stdin) => {
    const e = Object.fromEntries(Object.entries(mkEnv()).filter(([, v]) => v !== ''));
    const ours = runPluginSync(OURS.loopback, e, stdin);
    expect(lo(pod).up).toBe(false);
    const go = runPluginSync(GO.loopback, e, stdin);
    expect(lo(pod).up).toBe(false);
    expect(ours.code).toBe(1);
    expect(ours.code).toBe(go.code);
    expect(ours.json?.code).toBe(go.json?.code);
    expect(typeof ours.json?.msg).toBe('string');
  });
});

// Issue 9: Go reads the config into types.NetConf and the prevResult into the result struct of the
// config's version; a wrong JSON type or an unparsable prevResult is an error there, not a success
// (lo untouched). Where Go's words are from the cni library we ship (1.0 results), ours are the same.
describe.skipIf(!canUseNetns || !haveGo)('loopback config decoding: Go rejects, we reject with its words', () => {
  let pod: Netns;
  beforeAll(() => {
    buildPlugins();
    pod = createNetns('ld');
    pod.exec(['ip', 'link', 'set', 'lo', 'down']);
  });
  afterAll(() => {
    pod.delete();
    cleanupNetns();
  });

  const WRONG: Array<[string, Record<string, unknown>]> = [
    ['type is a number', conf('1.0.0', { type: 5 })],
    ['name is an array (skel reads it first)', conf('1.0.0', { name: ['x'] })],
    ['capabilities value not a bool', conf('1.0.0', { capabilities: { portMappings: 'yes' } })],
    ['ipam is a string', conf('1.0.0', { ipam: 'host-local' })],
    ['ipam.type is a number', conf('1.0.0', { ipam: { type: 1 } })],
    ['dns.nameservers is a string', conf('1.0.0', { dns: { nameservers: '1.1.1.1' } })],
    ['dns.search holds a number', conf('0.4.0', { dns: { search: [1] } })],
    ['prevResult of an unknown version', conf('1.0.0', { prevResult: { cniVersion: '0.3.1' } })],
    ['prevResult.cniVersion is a number', conf('0.4.0', { prevResult: { cniVersion: 5 } })],
    ['prevResult.ips is a string', conf('1.0.0', { prevResult: { ips: 'x' } })],
    ['prevResult address not a CIDR', conf('0.3.1', { prevResult: { cniVersion: '0.3.1', ips: [{ version: '4', address: 'bogus' }] } })],
    ['prevResult gateway not an IP', conf('1.0.0', { prevResult: { ips: [{ address: '10.0.0.2/24', gateway: 'x' }] } })],
    ['prevResult route dst not a CIDR', conf('0.4.0', { prevResult: { routes: [{ dst: '0.0.0.0' }] } })],
    ['prevResult ip4 without a prefix (0.2.0)', conf('0.2.0', { prevResult: { ip4: { ip: '1.2.3.4' } } })],
    ['prevResult dns.domain is a number', conf('0.4.0', { prevResult: { dns: { domain: 3 } } })],
  ];

  it.each(WRONG)('%s', (_name, c) => {
    const go = runPluginSync(GO.loopback, env('ADD', pod.path), c);
    const ours = runPluginSync(OURS.loopback, env('ADD', pod.path), c);
    expect(lo(pod).up).toBe(false);
    expect(go.code).toBe(1);
    expect(ours.code, ours.stdout).toBe(1);
    // we also support 1.1.0 results (as the cni library ≥ 1.2 does); Go's 1.0 library names 1.0.0 only
    expect(ours.stdout.replace('[1.0.0 1.1.0]', '[1.0.0]')).toBe(go.stdout);
  });
});
