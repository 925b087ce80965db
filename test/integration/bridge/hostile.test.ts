// Issue 9, bridge under hostile or unlucky input, side by side with the Go reference where it is safe
// to run it:
// - `ipam.type` naming bridge itself: Go's ADD fails only because the inner call trips over the veth the
//   outer one made (and leaks it); its DEL forks bridges until the runtime kills it (never run here). Ours
//   refuses the delegation before anything is done: one code-7 error, host and pod untouched.
// - CNI_NETNS naming the plugin's own netns: skel HEAD configures, prints the result AND a code-8 error,
//   and keeps the allocation (Go 1.1.1 here has no check at all and configures the host as the pod);
//   ours prints one code-8 error and does nothing.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { canUseNetns, type Netns } from '../../helpers/netns.js';
import { GO_BRIDGE, OUR_BRIDGE, conf, haveGo, haveOurs, ipamFiles, ipamPath, normalizeResult, routes, worldsPerTest, type World } from './harness.js';
import { type PluginRun, type RawEnv } from '../../helpers/run-plugin.js';

/** runIn with a deadline: before the fix, a self-delegating bridge never ended. */
function runBounded(host: Netns, bin: string, env: RawEnv, stdin: string): PluginRun {
  const r = spawnSync('ip', ['netns', 'exec', host.name, bin], {
    input: stdin,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...env },
    timeout: 60_000,
  });
  const out: PluginRun = { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  try {
    out.json = JSON.parse(out.stdout) as Record<string, unknown>;
  } catch {
    // not one JSON document
  }
  return out;
}

describe.skipIf(!canUseNetns || !haveOurs)('bridge: hostile input', () => {
  const world = worldsPerTest('x');
  const env = (w: World, cmd: string, o: { netns?: string; cniPath?: string } = {}): RawEnv => ({
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: 'ctr-1',
    CNI_NETNS: o.netns ?? w.pod().path,
    CNI_IFNAME: 'eth0',
    CNI_PATH: o.cniPath ?? ipamPath('ours'),
  });
  const podLinks = (w: World) => (JSON.parse(w.pod().exec(['ip', '-j', 'link', 'show']).stdout) as Array<{ ifname: string }>).map((l) => l.ifname);

  it('ipam.type "bridge": one code-7 error for ADD and DEL, nothing created', () => {
    const w = world();
    const c = JSON.stringify(conf(w, { ipam: { type: 'bridge' } }));
    const before = w.hostLinks();
    for (const cmd of ['ADD', 'DEL']) {
      const r = runBounded(w.host, OUR_BRIDGE, env(w, cmd), c);
      expect(r.code, r.stdout + r.stderr).toBe(1);
      expect(r.json).toEqual({
        code: 7,
        msg: 'refusing to delegate to plugin "bridge": it is already running in this call (bridge → bridge); check the delegate types in the network config (e.g. ipam.type)',
      });
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(w.hostLinks()).toEqual(before);
    expect(podLinks(w)).toEqual(['lo']);
  });

  it.skipIf(!haveGo)('ipam.type "bridge" in Go: ADD fails late and leaves a veth behind (we do better)', () => {
    const w = world();
    const c = JSON.stringify(conf(w, { ipam: { type: 'bridge' } }));
    const go = runBounded(w.host, GO_BRIDGE, env(w, 'ADD', { cniPath: ipamPath('go') }), c);
    expect(go.json).toEqual({ code: 999, msg: 'container veth name provided (eth0) already exists' });
    expect(podLinks(w)).toContain('eth0');
  });

  it('CNI_NETNS = the plugin\'s own netns: one code-8 error, no link, no allocation', () => {
    const w = world();
    const c = JSON.stringify(conf(w));
    const before = w.hostLinks();
    const r = runBounded(w.host, OUR_BRIDGE, env(w, 'ADD', { netns: w.host.path }), c);
    expect(r.code).toBe(1);
    expect(r.json).toEqual({ code: 8, msg: "plugin's netns and netns from CNI_NETNS should not be the same" });
    expect(w.hostLinks()).toEqual(before);
    expect(ipamFiles(w)).toEqual([]);
  });

  it.skipIf(!haveGo)('an IPAM route equal to the pod subnet: ADD succeeds with the same result and routes as Go (was "File exists")', () => {
    const [go, ours] = [world(), world()];
    const ipam = { subnet: '10.1.2.0/24', routes: [{ dst: '10.1.2.0/24' }, { dst: '0.0.0.0/0' }] };
    const rGo = runBounded(go.host, GO_BRIDGE, env(go, 'ADD', { cniPath: ipamPath('go') }), JSON.stringify(conf(go, { isGateway: true }, ipam)));
    const rOurs = runBounded(ours.host, OUR_BRIDGE, env(ours, 'ADD'), JSON.stringify(conf(ours, { isGateway: true }, ipam)));
    expect(rGo.code, rGo.stdout).toBe(0);
    expect(rOurs.code, rOurs.stdout).toBe(0);
    const sandboxFree = (w: World, r: PluginRun) => JSON.parse(JSON.stringify(normalizeResult(r.json)).replaceAll(w.pod().path, 'POD')) as unknown;
    expect(sandboxFree(ours, rOurs)).toEqual(sandboxFree(go, rGo));
    // Go's RouteAddEcmp (ours: `ip route prepend`) puts a second route ahead of the connected one
    expect(routes(go.pod(), 4)).toEqual(['default via 10.1.2.1 dev eth0', '10.1.2.0/24 via 10.1.2.1 dev eth0', '10.1.2.0/24 dev eth0']);
    expect(routes(ours.pod(), 4)).toEqual(routes(go.pod(), 4));
    for (const [w, bin, p] of [[go, GO_BRIDGE, ipamPath('go')], [ours, OUR_BRIDGE, ipamPath('ours')]] as const) {
      const d = runBounded(w.host, bin, env(w, 'DEL', { cniPath: p }), JSON.stringify(conf(w, { isGateway: true }, ipam)));
      expect(d.code, d.stdout).toBe(0);
      expect(ipamFiles(w)).toEqual([]);
    }
  });
});
