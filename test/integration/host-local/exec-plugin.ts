// host-local and loopback side by side with Go's: where the executables are, an IPAM env, store
// snapshots. Execing them is test/helpers/run-plugin.ts (re-exported here for these tests).
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { bin, ROOT } from '../../helpers/paths.js';
import type { CniEnv } from '../../helpers/run-plugin.js';

export { ROOT } from '../../helpers/paths.js';
export { cniEnv, runPlugin, runPluginSync, type CniEnv, type PluginRun } from '../../helpers/run-plugin.js';
/** ours as the test build has them: dist/exe (links to the multi-call file), or dist/bin with FLANNEL_TEST_BUILD=node */
export const OURS = { hostLocal: bin('host-local'), loopback: bin('loopback') };
export const GO = { hostLocal: '/usr/lib/cni/host-local', loopback: '/usr/lib/cni/loopback' };

/** Builds our executables once per test file. */
export function buildPlugins(): void {
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), 'host-local', 'loopback'], { stdio: 'pipe' });
}

/** Typical ADD/DEL/CHECK env for an IPAM call. */
export function ipamEnv(command: string, containerId = 'dummy', ifName = 'eth0', args?: string): CniEnv {
  return { command, containerId, netns: '/var/run/netns/none', ifName, path: '/opt/cni/bin', ...(args !== undefined ? { args } : {}) };
}

/** name → content of every file under `dir` (recursively), for comparing two stores. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, prefix: string): void => {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p, `${prefix}${n}/`);
      else out[`${prefix}${n}`] = readFileSync(p, 'latin1');
    }
  };
  walk(dir, '');
  return out;
}
