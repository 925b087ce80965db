// Running the built flanneld (what ships, dist/exe/flanneld; with FLANNEL_TEST_BUILD=node the
// Node-script build, dist/bin/flanneld) in a network namespace of the test's own: a veth pair with
// both ends inside stands in for the host's NIC (ext0, 10.50.0.2/24), etcd runs in the same
// namespace (127.0.0.1 there is that namespace's loopback), and every daemon started here is
// killed by its PID when the test ends. A daemon started without --data-dir gets a private one: the
// default, /var/lib/flannel, is the machine's.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, type Netns } from '../../helpers/netns.js';
import { bin, ROOT, TEST_BUILD } from '../../helpers/paths.js';
import { until } from '../../helpers/until.js';

export const FLANNELD = bin('flanneld');
/** /20 leases between 10.10.0.0 and 10.99.0.0, no data plane (the alloc backend) */
export const SEED_ALLOC =
  '{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.0.0","SubnetMax":"10.99.0.0","Backend":{"Type":"alloc"}}';
export const EXT_IP = '10.50.0.2';

export interface Daemon {
  proc: ChildProcess;
  stderr: () => string;
  /** the exit code (null when killed by a signal) */
  exit: Promise<number | null>;
  running: () => boolean;
}

export { until };

/** `p`, or a rejection naming `what` when it takes longer than `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(t);
  }
}

/**
 * Builds FLANNELD from the current sources: the self-contained executable (scripts/build-exe.mjs, which
 * only checks the build id, about 1 s, when the file is current; a compile takes seconds more), or with
 * FLANNEL_TEST_BUILD=node the Node-script bundle alone (0.4 s).
 */
export function buildFlanneld(): void {
  const [script, ...args] = TEST_BUILD === 'exe' ? ['build-exe.mjs', 'flanneld'] : ['build.mjs', 'flanneld', '--node-only'];
  execFileSync(process.execPath, [join(ROOT, 'scripts', script!), ...args], { stdio: 'pipe' });
}

/** A namespace with lo up and ext0 = 10.50.0.2/24 (veth, both ends inside). */
export function createDaemonNetns(prefix: string): Netns {
  const ns = createNetns(prefix);
  ns.exec(['ip', 'link', 'add', 'ext0', 'type', 'veth', 'peer', 'name', 'ext1']);
  ns.exec(['ip', 'addr', 'add', `${EXT_IP}/24`, 'dev', 'ext0']);
  ns.exec(['ip', 'link', 'set', 'ext0', 'up']);
  ns.exec(['ip', 'link', 'set', 'ext1', 'up']);
  return ns;
}

/** The environment without any FLANNELD_* the test runner may have inherited, plus `extra`. */
function daemonEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('FLANNELD_')) env[k] = v;
  return { ...env, ...extra };
}

/** Whether flanneld's command line or environment already names its data dir (Go flag syntax). */
export function hasDataDir(args: readonly string[], env: Record<string, string>): boolean {
  return env.FLANNELD_DATA_DIR !== undefined || args.some((a) => /^--?data-dir(=|$)/.test(a));
}

/** Starts daemons in `ns` and kills (by PID) those still running on killAll(). */
export function daemonRunner(ns: () => Netns) {
  const daemons: Daemon[] = [];
  const dataDirs: string[] = [];
  return {
    run(args: string[], env: Record<string, string> = {}): Daemon {
      if (!hasDataDir(args, env)) {
        const d = mkdtempSync(join(tmpdir(), 'flanneld-data-'));
        dataDirs.push(d);
        args = [...args, '--data-dir', d];
      }
      // `ip netns exec` execs flanneld's launcher in place, so proc.pid is the daemon's own
      const proc = spawn('ip', ['netns', 'exec', ns().name, FLANNELD, ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: daemonEnv(env),
      });
      let err = '';
      proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
      const d: Daemon = {
        proc,
        stderr: () => err,
        exit,
        running: () => proc.exitCode === null && proc.signalCode === null,
      };
      daemons.push(d);
      return d;
    },
    async stop(d: Daemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
      d.proc.kill(signal);
      return d.exit;
    },
    async killAll(): Promise<void> {
      for (const d of daemons.splice(0)) {
        if (d.running()) {
          d.proc.kill('SIGKILL');
          await d.exit;
        }
      }
      for (const d of dataDirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}
