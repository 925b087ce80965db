// Issue 9: inputs where our host-local (through the shared skeleton and address parser) answered
// differently from the Go reference. Each runs Go's and ours side by side, each with its own dataDir,
// and wants the same bytes; plus the own-netns case, where we are deliberately better than skel.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import tmp from 'tmp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GO, OURS, buildPlugins, cniEnv, runPluginSync, snapshot } from './exec-plugin.js';

const haveGo = existsSync(GO.hostLocal);
let tmpDir: tmp.DirResult;
let seq = 0;
beforeAll(() => {
  buildPlugins();
  tmpDir = tmp.dirSync({ unsafeCleanup: true });
});
afterAll(() => tmpDir.removeCallback());

const conf = (dataDir: string, ipam: Record<string, unknown>) =>
  JSON.stringify({ cniVersion: '1.0.0', name: 'divnet', ipam: { type: 'host-local', dataDir, ...ipam } });
const env = (extra: Record<string, string> = {}) => ({
  ...cniEnv({ command: 'ADD', containerId: 'c1', netns: '/var/run/netns/none', ifName: 'eth0', path: '/opt/cni/bin' }),
  ...extra,
});

/** Go's and our answer to the same input, each against a fresh dataDir. */
function both(ipam: Record<string, unknown>, extra: Record<string, string> = {}) {
  const dirs = { go: join(tmpDir.name, `go${++seq}`), ours: join(tmpDir.name, `ours${seq}`) };
  const go = runPluginSync(GO.hostLocal, env(extra), conf(dirs.go, ipam));
  const ours = runPluginSync(OURS.hostLocal, env(extra), conf(dirs.ours, ipam));
  return { go, ours, dirs };
}

describe.skipIf(!haveGo)('host-local: same answer as Go where we used to differ', () => {
  it('CNI_IFNAME with U+FEFF is a name like any other (Go: unicode.IsSpace is false for it)', () => {
    const { go, ours, dirs } = both({ subnet: '10.1.0.0/24' }, { CNI_IFNAME: 'eth\ufeff0' });
    expect(go.code).toBe(0);
    expect(ours.code, ours.stdout).toBe(0);
    expect(ours.stdout).toBe(go.stdout);
    // the store records the interface name as written
    expect(snapshot(dirs.ours)).toEqual(snapshot(dirs.go));
  });

  it('CNI_IFNAME with U+0085 (NEL) is whitespace for Go: code 4 for both', () => {
    const { go, ours } = both({ subnet: '10.1.0.0/24' }, { CNI_IFNAME: 'eth\u00850' });
    expect(go.json?.code).toBe(4);
    expect(ours.stdout).toBe(go.stdout);
  });

  it('a route dst ::ffff:10.0.0.0/104 is the IPv4 network 10.0.0.0/8 (net.ParseCIDR)', () => {
    const { go, ours } = both({ subnet: '10.1.0.0/24', routes: [{ dst: '::ffff:10.0.0.0/104' }, { dst: '::ffff:192.168.1.7/128' }] });
    expect(go.code).toBe(0);
    expect(ours.stdout).toBe(go.stdout);
    expect(ours.json?.routes).toEqual([{ dst: '10.0.0.0/8' }, { dst: '192.168.1.7/32' }]);
  });

  it('a subnet ::ffff:10.0.0.0/104 parses, then the range refuses it with Go\'s words', () => {
    for (const ipam of [{ subnet: '::ffff:10.0.0.0/104' }, { ranges: [[{ subnet: '10.2.0.0/24' }], [{ subnet: '::ffff:10.0.0.0/120' }]] }]) {
      const { go, ours, dirs } = both(ipam);
      expect(go.code).toBe(1);
      expect(ours.stdout).toBe(go.stdout);
      expect(existsSync(join(dirs.ours, 'divnet')) ? readdirSync(join(dirs.ours, 'divnet')) : []).toEqual([]);
    }
  });
});

describe('host-local: CNI_NETNS naming the plugin\'s own netns', () => {
  it('one code-8 error document and nothing allocated (skel HEAD allocates, prints the result, then the error)', () => {
    const dataDir = join(tmpDir.name, 'own');
    const r = runPluginSync(OURS.hostLocal, env({ CNI_NETNS: '/proc/self/ns/net' }), conf(dataDir, { subnet: '10.1.0.0/24' }));
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ code: 8, msg: "plugin's netns and netns from CNI_NETNS should not be the same" });
    const files = existsSync(join(dataDir, 'divnet')) ? readdirSync(join(dataDir, 'divnet')).filter((f) => f !== 'lock') : [];
    expect(files).toEqual([]);
    // CNI_NETNS_OVERRIDE=1 lets it through, as in skel
    const ok = runPluginSync(OURS.hostLocal, env({ CNI_NETNS: '/proc/self/ns/net', CNI_NETNS_OVERRIDE: '1' }), conf(dataDir, { subnet: '10.1.0.0/24' }));
    expect(ok.code, ok.stdout).toBe(0);
  });

  it('an endless stdin (/dev/zero) is refused with code 5, memory bounded', () => {
    const zero = openSync('/dev/zero', 'r');
    try {
      // a generous timeout only so that a regression fails instead of hanging the run
      const r = spawnSync(OURS.hostLocal, [], { env: env(), stdio: [zero, 'pipe', 'pipe'], encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(1);
      expect(JSON.parse(r.stdout)).toEqual({ code: 5, msg: 'error reading from stdin: more than 4194304 bytes (4 MiB): not a network config' });
    } finally {
      closeSync(zero);
    }
  });
});
