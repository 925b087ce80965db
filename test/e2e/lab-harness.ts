// Runs scripts/lab/lib.sh functions for the e2e tests, each lab in its own namespaces (a per-process
// prefix) and its own temp state dir.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, ROOT } from '../helpers/paths.js';

export type LabRun = { status: number; stdout: string; stderr: string };

/** `lab(script, allowFail)`: runs lab shell functions with `env`; throws with the output on failure unless allowFail. */
export function labShell(env: NodeJS.ProcessEnv): (script: string, allowFail?: boolean) => LabRun {
  return (script, allowFail = false) => {
    const r = spawnSync('bash', ['-c', `. scripts/lab/lib.sh; ${script}`], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
    const res = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    if (res.status !== 0 && !allowFail) throw new Error(`lab: ${script} → ${res.status}\n${res.stdout}\n${res.stderr}`);
    return res;
  };
}

/** Whether a lab can run here: root, etcd, ping (plus `tools`), the built flanneld, and cnitool unless pods are added by hand. */
export function labCanRun(tools: readonly string[] = [], needCnitool = true): boolean {
  const executable = (p: string) => spawnSync('test', ['-x', p]).status === 0;
  return (
    process.getuid?.() === 0 &&
    spawnSync('which', ['etcd', 'etcdctl', 'ping', ...tools]).status === 0 &&
    executable(bin('flanneld')) &&
    (!needCnitool || executable(bin('cnitool')))
  );
}

export interface LabOptions {
  /** names the temp dir (flannel-e2e-<name>-) */
  name: string;
  /** namespace prefix before the pid (`fl-e2e` → fl-e2e-<pid>-h1) */
  prefix: string;
  hosts: number;
  pods: number;
  /** the network config put into etcd (LAB_CONFIG), else lib.sh's vxlan default */
  config?: string;
}

export interface Lab {
  dir: string;
  env: NodeJS.ProcessEnv;
  run: (script: string, allowFail?: boolean) => LabRun;
  /** a lab namespace's full name: ns('h1p1') */
  ns(name: string): string;
  /** argv inside host i's namespace */
  inHost(i: number, argv: string[]): SpawnSyncReturns<string>;
  flanneldLog(i: number): string;
  /** lab_down, then the state dir goes */
  down(): void;
}

export function newLab(o: LabOptions): Lab {
  const dir = mkdtempSync(join(tmpdir(), `flannel-e2e-${o.name}-`));
  const prefix = `${o.prefix}-${process.pid}-`;
  const env: NodeJS.ProcessEnv = { ...process.env, LAB_DIR: dir, LAB_PREFIX: prefix, LAB_HOSTS: String(o.hosts), LAB_PODS: String(o.pods) };
  if (o.config !== undefined) env.LAB_CONFIG = o.config;
  const run = labShell(env);
  return {
    dir,
    env,
    run,
    ns: (name) => `${prefix}${name}`,
    inHost: (i, argv) => spawnSync('ip', ['netns', 'exec', `${prefix}h${i}`, ...argv], { encoding: 'utf8' }),
    flanneldLog: (i) => readFileSync(join(dir, `h${i}`, 'flanneld.log'), 'utf8'),
    down() {
      run('lab_down', true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
