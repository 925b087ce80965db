// libcni parity without root: config discovery, injection, the chain and cache driven against tiny
// shell plugins in a temp dir (no namespaces, nothing touches the kernel).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CNIConfig } from '../../../../scripts/cnitool/libcni/api.js';
import { confListFromBytes, injectConf, loadConfList, parseVersion, versionGreaterThanOrEqualTo } from '../../../../scripts/cnitool/libcni/conf.js';
import { containerIdFor, parseArgs, runCnitool } from '../../../../scripts/cnitool/cnitool.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cnitool-unit-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function netdir(files: Record<string, string>): string {
  const d = mkdtempSync(join(dir, 'net-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(d, name, '..'), { recursive: true });
    writeFileSync(join(d, name), text);
  }
  return d;
}

describe('cnitool command line', () => {
  it('container ID is cnitool- + sha512(netns)[:10 bytes] (the ID Go cnitool derives for that netns path)', () => {
    expect(containerIdFor('/var/run/netns/cnires-c1')).toBe('cnitool-3047cba8a257f4c2abeb');
  });

  it('CNI_ARGS pairs are strict', () => {
    expect(parseArgs('IgnoreUnknown=1;K8S_POD_NAME=a')).toEqual([
      ['IgnoreUnknown', '1'],
      ['K8S_POD_NAME', 'a'],
    ]);
    expect(() => parseArgs('A=1;B')).toThrow('invalid CNI_ARGS pair "B"');
    expect(() => parseArgs('A=')).toThrow('invalid CNI_ARGS pair "A="');
  });

  it('usage on stderr with exit 1 for fewer than three arguments; errors are bare text', async () => {
    const err: string[] = [];
    const io = (argv: string[], env = {}) => ({ argv, env, cwd: '/', writeStdout: () => {}, writeStderr: (t: string) => void err.push(t) });
    expect(await runCnitool(io(['node', '/x/cnitool', 'add', 'n']))).toBe(1);
    expect(err[0]).toBe('cnitool: Add, check, remove, gc or status network interfaces from a network namespace\n');
    err.length = 0;
    expect(await runCnitool(io(['node', 'cnitool', 'add', 'nope', '/run/netns/x'], { NETCONFPATH: join(dir, 'empty') }))).toBe(1);
    expect(err).toEqual([`no net configurations found in ${join(dir, 'empty')}\n`]);
  });
});

describe('config discovery (LoadConfList)', () => {
  it('conflists first, sorted; the first with the name wins; .conf is up-converted', () => {
    const d = netdir({
      '20-b.conflist': '{"name":"net","cniVersion":"1.0.0","plugins":[{"type":"second"}]}',
      '10-a.conflist': '{"name":"net","cniVersion":"1.0.0","plugins":[{"type":"first"}]}',
      '05-single.conf': '{"name":"single","cniVersion":"0.4.0","type":"bridge","bridge":"x"}',
    });
    expect(loadConfList(d, 'net').plugins.map((p) => p.network.type)).toEqual(['first']);
    const single = loadConfList(d, 'single');
    expect(single.cniVersion).toBe('0.4.0');
    expect(single.bytes.toString()).toBe('{"cniVersion":"0.4.0","name":"single","plugins":[{"bridge":"x","cniVersion":"0.4.0","name":"single","type":"bridge"}]}');
    expect(() => loadConfList(d, 'other')).toThrow(`no net configuration with name "other" in ${d}`);
  });

  it('a broken earlier file aborts; plugin objects from <dir>/<name>/*.conf are appended', () => {
    const d = netdir({ '01-bad.conflist': '{"name":"x","plugins":[{}]}', '02.conflist': '{"name":"ok","plugins":[{"type":"a"}]}' });
    expect(() => loadConfList(d, 'ok')).toThrow("failed to parse plugin config 0: error parsing configuration: missing 'type'");
    const e = netdir({ '02.conflist': '{"name":"ok","plugins":[{"type":"a"}]}', 'ok/10-extra.conf': '{"type":"b"}' });
    expect(loadConfList(e, 'ok').plugins.map((p) => p.network.type)).toEqual(['a', 'b']);
  });

  it('list parse errors are worded as libcni', () => {
    expect(() => confListFromBytes(Buffer.from('{"plugins":[]}'))).toThrow('error parsing configuration list: no name');
    expect(() => confListFromBytes(Buffer.from('{"name":5}'))).toThrow('error parsing configuration list: invalid name type float64');
    expect(() => confListFromBytes(Buffer.from('{"name":"n","plugins":[]}'))).toThrow('error parsing configuration list: no plugins in list');
    expect(() => confListFromBytes(Buffer.from('{"name":"n","disableCheck":"maybe","plugins":[{"type":"a"}]}'))).toThrow(
      'error parsing configuration list: invalid value "maybe" for disableCheck',
    );
    expect(confListFromBytes(Buffer.from('{"name":"n","disableCheck":"TRUE","plugins":[{"type":"a"}]}')).disableCheck).toBe(true);
  });

  it('cniVersions: the highest entry not above our Current(), cniVersion included', () => {
    const l = confListFromBytes(Buffer.from('{"name":"n","cniVersion":"0.4.0","cniVersions":["1.0.0","9.0.0"],"plugins":[{"type":"a"}]}'));
    expect(l.cniVersion).toBe('1.0.0');
  });
});

describe('injection', () => {
  it('name/cniVersion/prevResult injected, keys sorted, capabilities kept (libcni quirk)', () => {
    const list = confListFromBytes(Buffer.from('{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"portmap","capabilities":{"portMappings":true}}]}'));
    const out = injectConf(list.plugins[0]!, { name: 'n', cniVersion: '1.0.0', runtimeConfig: { portMappings: [] } });
    expect(out.bytes).toBe('{"capabilities":{"portMappings":true},"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[]},"type":"portmap"}');
  });

  it('version parsing follows version.ParseVersion', () => {
    expect(parseVersion('')).toEqual([0, 1, 0]);
    expect(parseVersion('1.0')).toEqual([1, 0, 0]);
    expect(versionGreaterThanOrEqualTo('0.3.1', '0.4.0')).toBe(false);
    expect(() => parseVersion('1.2.3.4')).toThrow('too many parts');
  });
});

describe('the chain, against recording shell plugins', () => {
  // Each fake plugin appends "<COMMAND> <stdin>" to $LOG and prints a canned result on ADD.
  function fakePlugin(bin: string, name: string, ip: string): void {
    writeFileSync(
      join(bin, name),
      `#!/bin/sh\nin=$(cat)\nprintf '%s %s %s\\n' "$CNI_COMMAND" "${name}" "$in" >> "$LOG"\n` +
        `[ "$CNI_COMMAND" = ADD ] && printf '{"cniVersion":"1.0.0","ips":[{"address":"${ip}"}]}'\nexit 0\n`,
    );
    chmodSync(join(bin, name), 0o755);
  }

  it('ADD chains prevResult, runtimeConfig only for declared capabilities, caches; CHECK/DEL reuse the cache; DEL in reverse', async () => {
    const bin = mkdtempSync(join(dir, 'bin-'));
    fakePlugin(bin, 'one', '10.0.0.2/24');
    fakePlugin(bin, 'two', '10.0.0.3/24');
    const log = join(dir, 'chain.log');
    const cache = join(dir, 'cache');
    const d = netdir({
      'x.conflist': '{"name":"chain","cniVersion":"1.0.0","plugins":[{"type":"one"},{"type":"two","capabilities":{"portMappings":true,"mac":false}}]}',
    });
    const cni = new CNIConfig([bin], { cacheDir: cache, env: { ...process.env, LOG: log }, writeStderr: () => {} });
    const list = loadConfList(d, 'chain');
    const rt = { containerId: 'c1', netns: '/var/run/netns/x', ifName: 'eth0', capabilityArgs: { portMappings: [{ hostPort: 1 }], mac: 'x' } };
    const result = await cni.addNetworkList(list, rt);
    expect(result?.ips?.[0]?.address).toBe('10.0.0.3/24');
    const lines = () => readFileSync(log, 'utf8').trim().split('\n');
    expect(lines()[0]).toBe('ADD one {"cniVersion":"1.0.0","name":"chain","type":"one"}');
    const second = JSON.parse(lines()[1]!.slice('ADD two '.length));
    expect(second.prevResult).toEqual({ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24' }], dns: {} });
    expect(second.runtimeConfig).toEqual({ portMappings: [{ hostPort: 1 }] });
    const cacheFile = join(cache, 'results', 'chain-c1-eth0');
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8'));
    expect(cached).toMatchObject({ kind: 'cniCacheV1', containerId: 'c1', ifName: 'eth0', networkName: 'chain', netns: '/var/run/netns/x' });
    expect(Buffer.from(cached.config, 'base64').toString()).toBe(readFileSync(join(d, 'x.conflist'), 'utf8'));

    await cni.checkNetworkList(list, rt);
    expect(lines().slice(2).map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['CHECK one', 'CHECK two']);
    expect(JSON.parse(lines()[2]!.slice('CHECK one '.length)).prevResult.ips[0].address).toBe('10.0.0.3/24');

    await cni.delNetworkList(list, rt);
    expect(lines().slice(4).map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['DEL two', 'DEL one']);
    expect(JSON.parse(lines()[4]!.slice('DEL two '.length)).prevResult.ips[0].address).toBe('10.0.0.3/24');
    expect(existsSync(cacheFile)).toBe(false);
  });

  it('0.3.1 lists: CHECK is refused, DEL gets no prevResult; a failing plugin is named in the error', async () => {
    const bin = mkdtempSync(join(dir, 'bin-'));
    fakePlugin(bin, 'one', '10.0.0.2/24');
    writeFileSync(join(bin, 'bad'), '#!/bin/sh\ncat >/dev/null\nprintf \'{"code":7,"msg":"nope","details":"why"}\'\nexit 1\n');
    chmodSync(join(bin, 'bad'), 0o755);
    const log = join(dir, 'old.log');
    const d = netdir({ 'x.conflist': '{"name":"old","cniVersion":"0.3.1","plugins":[{"type":"one"},{"type":"bad","name":"b"}]}' });
    const cni = new CNIConfig([bin], { cacheDir: join(dir, 'cache2'), env: { ...process.env, LOG: log }, writeStderr: () => {} });
    const list = loadConfList(d, 'old');
    const rt = { containerId: 'c2', netns: '/x', ifName: 'eth0' };
    await expect(cni.addNetworkList(list, rt)).rejects.toThrow('plugin type="bad" name="b" failed (add): nope; why');
    await expect(cni.checkNetworkList(list, rt)).rejects.toThrow('configuration version "0.3.1" does not support the CHECK command');
    await expect(cni.delNetworkList(list, rt)).rejects.toThrow('plugin type="bad" name="b" failed (delete): nope; why');
    const del = readFileSync(log, 'utf8').trim().split('\n').filter((l) => l.startsWith('DEL'));
    expect(del).toEqual([]);
  });
});
