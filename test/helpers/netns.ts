// Network namespaces for integration tests: never touch the root namespace.
//
// createNetns('br') makes `ftest-<pid>-br-<n>` (unique per process and call; names stay ≤ 32 chars)
// with `lo` up, and returns {name, path, exec, delete}. Every namespace made here is also deleted by
// `cleanupNetns()` (call it in afterAll) and, as a last resort, on process exit.
// `canUseNetns` tells whether this process may create namespaces (root + iproute2), for describe.skipIf.
import { execFileSync, spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';

export interface Netns {
  name: string;
  /** /var/run/netns/<name>, what CNI_NETNS gets */
  path: string;
  /** runs argv inside the namespace (`ip netns exec`, so /sys matches); throws on a non-zero exit */
  exec(argv: readonly string[], o?: { input?: string; env?: NodeJS.ProcessEnv; allowFail?: boolean }): ExecResult;
  delete(): void;
}

export interface ExecResult {
  status: number;
  stdout: string;
  stderr: string;
}

const live = new Set<string>();
let seq = 0;

function probe(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  const name = `ftest-${process.pid}-probe`;
  const r = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (r.status !== 0) return false;
  spawnSync('ip', ['netns', 'del', name]);
  return true;
}

export const canUseNetns: boolean = probe();

export function createNetns(prefix = 'ns'): Netns {
  const name = `ftest-${process.pid}-${prefix}-${++seq}`.slice(0, 32);
  execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
  live.add(name);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
  const path = `/var/run/netns/${name}`;
  return {
    name,
    path,
    exec(argv, o) {
      const r: SpawnSyncReturns<string> = spawnSync('ip', ['netns', 'exec', name, ...argv], {
        encoding: 'utf8',
        input: o?.input ?? '',
        env: o?.env ?? process.env,
      });
      const res = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error?.message ?? '') };
      if (res.status !== 0 && !o?.allowFail) {
        throw new Error(`in netns ${name}: ${argv.join(' ')} exited ${res.status}: ${res.stderr}`);
      }
      return res;
    },
    delete() {
      deleteNetns(name);
    },
  };
}

function deleteNetns(name: string): void {
  if (!live.has(name)) return;
  spawnSync('ip', ['netns', 'del', name], { stdio: 'pipe' });
  live.delete(name);
}

/** Deletes every namespace this process created and has not deleted yet. */
export function cleanupNetns(): void {
  for (const name of [...live]) deleteNetns(name);
}

process.on('exit', cleanupNetns);
