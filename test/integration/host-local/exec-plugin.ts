// Execs a built plugin the way a runtime does: a clean environment (PATH + CNI_*), config on stdin.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const OURS = { hostLocal: join(ROOT, 'dist/bin/host-local'), loopback: join(ROOT, 'dist/bin/loopback') };
export const GO = { hostLocal: '/usr/lib/cni/host-local', loopback: '/usr/lib/cni/loopback' };

/** Builds our executables once per test file. */
export function buildPlugins(): void {
  execFileSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), 'host-local', 'loopback'], { stdio: 'pipe' });
}

export interface CniEnv {
  command: string;
  containerId?: string;
  netns?: string;
  ifName?: string;
  args?: string;
  path?: string;
}

export interface PluginRun {
  code: number;
  stdout: string;
  stderr: string;
  /** parsed stdout, if any */
  json?: Record<string, unknown>;
}

export function cniEnv(e: CniEnv): Record<string, string> {
  const env: Record<string, string> = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: e.command };
  if (e.containerId !== undefined) env.CNI_CONTAINERID = e.containerId;
  if (e.netns !== undefined) env.CNI_NETNS = e.netns;
  if (e.ifName !== undefined) env.CNI_IFNAME = e.ifName;
  if (e.args !== undefined) env.CNI_ARGS = e.args;
  if (e.path !== undefined) env.CNI_PATH = e.path;
  return env;
}

/** Typical ADD/DEL/CHECK env for an IPAM call. */
export function ipamEnv(command: string, containerId = 'dummy', ifName = 'eth0', args?: string): CniEnv {
  return { command, containerId, netns: '/var/run/netns/none', ifName, path: '/opt/cni/bin', ...(args !== undefined ? { args } : {}) };
}

function toRun(code: number | null, stdout: string, stderr: string): PluginRun {
  const r: PluginRun = { code: code ?? -1, stdout, stderr };
  if (stdout.trim() !== '') {
    try {
      r.json = JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      // left unparsed: the test will see stdout
    }
  }
  return r;
}

const stdinOf = (conf: unknown): string => (typeof conf === 'string' ? conf : JSON.stringify(conf));

export function runPluginSync(bin: string, env: CniEnv | Record<string, string>, conf: unknown): PluginRun {
  const e = 'command' in env ? cniEnv(env as CniEnv) : env;
  const r = spawnSync(bin, [], { env: e, input: stdinOf(conf), encoding: 'utf8' });
  return toRun(r.status, r.stdout, r.stderr);
}

export function runPlugin(bin: string, env: CniEnv, conf: unknown): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { env: cniEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve(toRun(code, stdout, stderr)));
    child.stdin.end(stdinOf(conf));
  });
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
