// Garbage input for the built host-local, side by side with the Go reference: a valid CNI error JSON
// on stdout, exit status 1, the same error code as Go, and nothing created or changed in the dataDir.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import tmp from 'tmp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GO, OURS, buildPlugins, cniEnv, runPluginSync, snapshot } from './exec-plugin.js';

const haveGo = existsSync(GO.hostLocal);
let tmpDir: tmp.DirResult;
let dataDir: string;
beforeAll(() => {
  buildPlugins();
  tmpDir = tmp.dirSync({ unsafeCleanup: true });
  dataDir = join(tmpDir.name, 'data');
});
afterAll(() => tmpDir.removeCallback());

const ENV = { command: 'ADD', containerId: 'c1', netns: '/var/run/netns/none', ifName: 'eth0', path: '/opt/cni/bin' };
const good = () => JSON.stringify({ cniVersion: '0.3.1', name: 'mynet', ipam: { type: 'host-local', subnet: '10.1.2.0/24', dataDir } });
const withIpam = (extra: Record<string, unknown>, top: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: '0.3.1', name: 'mynet', ipam: { type: 'host-local', subnet: '10.1.2.0/24', dataDir, ...extra }, ...top });

const CASES: Array<[string, () => string, Record<string, string | undefined>]> = [
  ['empty stdin', () => '', {}],
  ['broken JSON', () => '{"cniVersion":', {}],
  ['not JSON', () => 'not json', {}],
  ['a JSON array', () => '[1,2]', {}],
  ['unknown cniVersion', () => withIpam({}, { cniVersion: '9.9.9' }), {}],
  ['cniVersion of the wrong type', () => withIpam({}, { cniVersion: 5 }), {}],
  ['missing network name', () => JSON.stringify({ cniVersion: '0.3.1', ipam: {} }), {}],
  ['hostile network name', () => withIpam({}, { name: '../../etc' }), {}],
  ['NUL in network name', () => withIpam({}, { name: 'a\u0000b' }), {}],
  ['over-long network name', () => withIpam({}, { name: 'n'.repeat(300) }), {}],
  ['NUL in dataDir', () => withIpam({ dataDir: `${tmpDir.name}/x\u0000y` }), {}],
  ['missing ipam', () => JSON.stringify({ cniVersion: '0.3.1', name: 'mynet' }), {}],
  ['missing CNI_CONTAINERID', good, { CNI_CONTAINERID: undefined }],
  ['missing CNI_PATH', good, { CNI_PATH: undefined }],
  ['missing everything but CNI_COMMAND', good, { CNI_CONTAINERID: undefined, CNI_NETNS: undefined, CNI_IFNAME: undefined, CNI_PATH: undefined }],
  ['unknown CNI_COMMAND', good, { CNI_COMMAND: 'BOGUS' }],
  ['container ID ../../etc', good, { CNI_CONTAINERID: '../../etc' }],
  ['container ID with a slash', good, { CNI_CONTAINERID: 'a/b' }],
  ['container ID starting with a dot', good, { CNI_CONTAINERID: '.hidden' }],
  ['over-long ifname', good, { CNI_IFNAME: 'eth0123456789abc' }],
  ['ifname ..', good, { CNI_IFNAME: '..' }],
  ['ifname with a colon', good, { CNI_IFNAME: 'eth0:1' }],
  ['ifname with a space', good, { CNI_IFNAME: 'eth 0' }],
  ['CNI_ARGS without =', good, { CNI_ARGS: 'junk' }],
  ['CNI_ARGS unknown key', good, { CNI_ARGS: 'K8S_POD_NAME=x' }],
  ['CNI_ARGS bad IP', good, { CNI_ARGS: 'IP=10.1.2.300' }],
  ['CHECK before 0.4.0', good, { CNI_COMMAND: 'CHECK' }],
  ['DEL of a hostile container ID', good, { CNI_COMMAND: 'DEL', CNI_CONTAINERID: '../../etc' }],
];

describe.skipIf(!haveGo)('host-local garbage input: same error code as Go, nothing changed', () => {
  it.each(CASES)('%s', (_name, stdin, override) => {
    const env: Record<string, string> = cniEnv(ENV);
    for (const [k, v] of Object.entries(override)) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const input = stdin();
    const before = snapshot(tmpDir.name);
    const ours = runPluginSync(OURS.hostLocal, env, input);
    expect(snapshot(tmpDir.name)).toEqual(before);
    const go = runPluginSync(GO.hostLocal, env, input);
    expect(snapshot(tmpDir.name)).toEqual(before);

    expect(ours.code).toBe(1);
    expect(ours.code).toBe(go.code);
    expect(ours.json).toBeDefined();
    expect(Object.keys(ours.json!).sort()).toEqual(Object.keys(go.json!).sort());
    expect(typeof ours.json!.msg).toBe('string');
    expect(ours.json!.code).toBe(go.json!.code);
    expect(ours.stdout.endsWith('\n')).toBe(false);
  });
});
