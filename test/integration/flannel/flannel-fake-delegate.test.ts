// The built dist/bin/flannel against a recording fake delegate: what it sends, what it saves, what it
// prints, and how DEL replays. No kernel state is involved.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { DIST, ensureBuilt, SUBNET_ENV, tempDir, writeSubnetEnv } from './helpers.js';
import { ROOT } from '../../helpers/paths.js';
import { runIn } from '../../helpers/run-plugin.js';

let work: string;
let host: Netns;
let linksBefore: string;
// every call runs inside a host netns made here, which must end up exactly as it started
const runPlugin = (bin: string, env: Record<string, string>, stdin: string) => runIn(host, bin, env, stdin);
let bin: string;
const FLANNEL = join(DIST, 'flannel');

beforeAll(() => {
  ensureBuilt('flannel');
  host = createNetns('flfake');
  linksBefore = host.exec(['ip', '-br', 'link']).stdout;
  work = tempDir('flannel-fake');
  bin = join(work, 'bin');
  mkdirSync(bin);
  for (const type of ['bridge', 'ipvlan']) symlinkSync(join(ROOT, 'test/fixtures/cni-bin/recorder'), join(bin, type));
});
afterAll(() => {
  try {
    expect(host.exec(['ip', '-br', 'link']).stdout).toBe(linksBefore);
  } finally {
    cleanupNetns();
    rmSync(work, { recursive: true, force: true });
  }
});

let seq = 0;
function setup(extra: object = {}, envText = SUBNET_ENV.v4()) {
  const dir = join(work, `case-${++seq}`);
  const log = join(dir, 'log');
  mkdirSync(log, { recursive: true });
  const subnetFile = writeSubnetEnv(dir, envText);
  const dataDir = join(dir, 'data');
  const conf = JSON.stringify({ cniVersion: '0.3.1', name: 'cbr0', type: 'flannel', subnetFile, dataDir, delegate: { hairpinMode: true, isDefaultGateway: true }, ...extra });
  const env = (cmd: string, more: Record<string, string> = {}) => ({
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: 'ctr-1',
    CNI_NETNS: '/var/run/netns/fake-pod',
    CNI_IFNAME: 'eth0',
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=p',
    CNI_PATH: bin,
    FAKE_CNI_LOG: log,
    ...more,
  });
  const calls = () =>
    readdirSync(log)
      .filter((f) => f.endsWith('.stdin'))
      .sort((a, b) => parseInt(a) - parseInt(b))
      .map((f) => ({ name: f, stdin: readFileSync(join(log, f), 'utf8'), env: readFileSync(join(log, f.replace('.stdin', '.env')), 'utf8') }));
  return { dir, conf, env, calls, dataDir, scratch: join(dataDir, 'ctr-1') };
}

describe.skipIf(!canUseNetns)('flannel → fake delegate', () => {
  it('ADD: the delegate gets the upstream conf (also saved, 0600 in a 0700 dir) and the inherited env; the result is re-printed', () => {
    const c = setup();
    const r = runPlugin(FLANNEL, c.env('ADD'), c.conf);
    expect(r.code, r.stdout).toBe(0);
    const [call] = c.calls();
    expect(call!.name).toBe('0-ADD.stdin');
    expect(call!.stdin).toBe(
      '{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}',
    );
    expect(readFileSync(c.scratch, 'utf8')).toBe(call!.stdin);
    expect(statSync(c.scratch).mode & 0o777).toBe(0o600);
    expect(statSync(c.dataDir).mode & 0o777).toBe(0o700);
    expect(call!.env).toBe(
      // plus the delegation chain (shared/cni/invoke.ts): who called whom, so a loop is refused
      `CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=p\nCNI_COMMAND=ADD\nCNI_CONTAINERID=ctr-1\nCNI_IFNAME=eth0\nCNI_NETNS=/var/run/netns/fake-pod\nCNI_PATH=${bin}\n` +
        `CNI_TS_DELEGATION_CHAIN=${FLANNEL}:${join(ROOT, 'test/fixtures/cni-bin/recorder')}\n`,
    );
    expect(r.stdout).toBe(
      '{\n    "cniVersion": "0.3.1",\n    "ips": [\n        {\n            "version": "4",\n            "address": "10.244.1.2/24",\n            "gateway": "10.244.1.1"\n        }\n    ],\n    "dns": {}\n}',
    );
    expect(r.stderr).toContain('delegateAdd: netconf sent to delegate plugin:\n{"cniVersion":"0.3.1"');
  });

  it('the delegate type comes from `delegate.type` and is looked up in CNI_PATH', () => {
    const c = setup({ delegate: { type: 'ipvlan', master: 'eth0' } });
    expect(runPlugin(FLANNEL, c.env('ADD'), c.conf).code).toBe(0);
    expect(JSON.parse(c.calls()[0]!.stdin)).toMatchObject({ type: 'ipvlan', master: 'eth0' });
  });

  it('a result without cniVersion gets the config version; one at another version is printed at its own', () => {
    const c = setup({ cniVersion: '1.0.0' });
    const r = runPlugin(FLANNEL, c.env('ADD', { FAKE_CNI_RESULT: '{"ips":[{"address":"10.244.1.2/24"}]}' }), c.conf);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '1.0.0', ips: [{ address: '10.244.1.2/24' }], dns: {} });
    const d = setup({ cniVersion: '1.0.0' });
    const r2 = runPlugin(FLANNEL, d.env('ADD'), d.conf);
    expect(JSON.parse(r2.stdout).cniVersion).toBe('0.3.1');
  });

  it("a delegate's CNI error reaches the runtime unchanged; the scratch file stays for the runtime's DEL", () => {
    const c = setup();
    const fail = '{"code":11,"msg":"try again","details":"later"}';
    const r = runPlugin(FLANNEL, c.env('ADD', { FAKE_CNI_FAIL: fail }), c.conf);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ code: 11, msg: 'try again', details: 'later' });
    expect(existsSync(c.scratch)).toBe(true);
  });

  it('a delegate that is not in CNI_PATH: code 999 "failed to delegate add: failed to find plugin"', () => {
    const c = setup();
    const r = runPlugin(FLANNEL, c.env('ADD', { CNI_PATH: join(work, 'nowhere') }), c.conf);
    expect(JSON.parse(r.stdout)).toEqual({ code: 999, msg: `failed to delegate add: failed to find plugin "bridge" in path [${join(work, 'nowhere')}]` });
  });

  it('DEL replays the saved bytes (no prevResult, ADD-time version) and removes the file; a second DEL calls nothing', () => {
    const c = setup();
    runPlugin(FLANNEL, c.env('ADD'), c.conf);
    const saved = readFileSync(c.scratch, 'utf8');
    const delConf = JSON.stringify({ ...JSON.parse(c.conf), cniVersion: '1.0.0', prevResult: { cniVersion: '1.0.0' } });
    const r = runPlugin(FLANNEL, c.env('DEL'), delConf);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toBe('');
    const calls = c.calls();
    expect(calls[1]!.name).toBe('1-DEL.stdin');
    expect(calls[1]!.stdin).toBe(saved);
    expect(calls[1]!.env).toContain('CNI_COMMAND=DEL');
    expect(existsSync(c.scratch)).toBe(false);
    expect(runPlugin(FLANNEL, c.env('DEL'), delConf).code).toBe(0);
    expect(c.calls()).toHaveLength(2);
  });

  it('DEL with a corrupt scratch file succeeds, calls nothing, keeps the file (flannel-io/cni-plugin#33)', () => {
    const c = setup();
    mkdirSync(c.dataDir, { recursive: true });
    writeFileSync(c.scratch, '{"type":"bri');
    const r = runPlugin(FLANNEL, c.env('DEL'), c.conf);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('failed to parse netconf: unexpected end of JSON input');
    expect(c.calls()).toHaveLength(0);
    expect(existsSync(c.scratch)).toBe(true);
  });

  it('DEL when the delegate fails: its error is returned and the scratch file is gone anyway', () => {
    const c = setup();
    runPlugin(FLANNEL, c.env('ADD'), c.conf);
    const r = runPlugin(FLANNEL, c.env('DEL', { FAKE_CNI_FAIL: '{"code":999,"msg":"running [/usr/sbin/iptables -t nat -D POSTROUTING]: exit status 1"}' }), c.conf);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).msg).toContain('iptables');
    expect(existsSync(c.scratch)).toBe(false);
  });
});
