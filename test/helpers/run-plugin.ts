// Execs a CNI plugin the way a runtime does: a clean environment (PATH + CNI_*), the config on stdin,
// optionally inside a network namespace the test made.
import { spawn, spawnSync } from 'node:child_process';
import type { Netns } from './netns.js';

export interface PluginRun {
  /** exit code (-1 when killed by a signal) */
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is a JSON document */
  json?: Record<string, unknown>;
}

/** The CNI_* variables by their short names. */
export interface CniEnv {
  command: string;
  containerId?: string;
  netns?: string;
  ifName?: string;
  args?: string;
  path?: string;
}

/** Raw variables (`CNI_COMMAND`, ...; undefined = unset), for tests that leave some out or spell them wrong. */
export type RawEnv = Record<string, string | undefined>;

const DEFAULT_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/** The full environment for one call: PATH plus the CNI_* variables, nothing inherited. */
export function cniEnv(e: CniEnv | RawEnv): Record<string, string> {
  const env: Record<string, string> = { PATH: DEFAULT_PATH };
  const raw: RawEnv =
    'command' in e && typeof e.command === 'string'
      ? { CNI_COMMAND: e.command, CNI_CONTAINERID: e.containerId, CNI_NETNS: e.netns, CNI_IFNAME: e.ifName, CNI_ARGS: e.args, CNI_PATH: e.path }
      : (e as RawEnv);
  for (const [k, v] of Object.entries(raw)) if (v !== undefined) env[k] = v;
  return env;
}

const stdinOf = (conf: unknown): string => (typeof conf === 'string' ? conf : JSON.stringify(conf));

function toRun(code: number | null, stdout: string, stderr: string): PluginRun {
  const r: PluginRun = { code: code ?? -1, stdout, stderr };
  if (stdout.trim() !== '') {
    try {
      r.json = JSON.parse(stdout) as Record<string, unknown>;
    } catch {
      // left unparsed: the test sees stdout
    }
  }
  return r;
}

/** Runs `bin` to completion; in `ns` when given (`ip netns exec`). `conf` is sent as is if a string, else as JSON. */
export function runPluginSync(bin: string, env: CniEnv | RawEnv, conf: unknown, ns?: Netns): PluginRun {
  if (ns) {
    const r = ns.exec([bin], { input: stdinOf(conf), env: cniEnv(env), allowFail: true });
    return toRun(r.status, r.stdout, r.stderr);
  }
  const r = spawnSync(bin, [], { env: cniEnv(env), input: stdinOf(conf), encoding: 'utf8' });
  return toRun(r.status, r.stdout ?? '', r.stderr ?? '');
}

/** runPluginSync inside `ns`, arguments in the order a harness reads best. */
export function runIn(ns: Netns, bin: string, env: CniEnv | RawEnv, conf: unknown): PluginRun {
  return runPluginSync(bin, env, conf, ns);
}

/** Runs `bin` without blocking the event loop (concurrent ADD/DEL tests). */
export function runPlugin(bin: string, env: CniEnv | RawEnv, conf: unknown): Promise<PluginRun> {
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
