// Runs scripts/lab/lib.sh functions for the e2e tests, each lab in its own namespaces and state dir.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

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
