// A real etcd that a test can rebuild empty on the same address (issue 9, item 1): wipe() kills it
// (SIGKILL, by PID), deletes its data dir and starts a fresh one with the same name and URLs, as an
// operator restoring a lost etcd would. Runs inside a network namespace of the test's (etcd's
// ports are then free: nothing else listens there), listening on `host` (127.0.0.1, or an address
// that other namespaces reach through a veth).
//
//   const etcd = await startWipeableEtcd({ netns: ns.name, host: '10.60.0.1' });
//   etcd.ctl(['put', k, v]); await etcd.wipe(); await etcd.stop();
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './until.js';

export interface WipeableEtcd {
  endpoint: string;
  /** etcdctl (v3) against it; throws on failure; returns stdout */
  ctl(args: readonly string[]): string;
  /** kill -9, rm -rf the data dir, start again empty on the same URLs; resolves when healthy */
  wipe(): Promise<void>;
  stop(): Promise<void>;
}

export async function startWipeableEtcd(o: { netns: string; host?: string }): Promise<WipeableEtcd> {
  const host = o.host ?? '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), `etcd-wipe-${process.pid}-`));
  const clientPort = 20000 + Math.floor(Math.random() * 20000);
  const endpoint = `http://${host}:${clientPort}`;
  const peer = `http://127.0.0.1:${clientPort + 1}`;
  let child: ChildProcess | undefined;
  let generation = 0;

  const ctl = (a: readonly string[]): string => {
    const r = spawnSync('ip', ['netns', 'exec', o.netns, 'etcdctl', '--endpoints', endpoint, '--dial-timeout', '2s', '--command-timeout', '5s', ...a], {
      encoding: 'utf8',
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    if (r.status !== 0) throw new Error(`etcdctl ${a.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  };

  const start = async () => {
    generation++;
    const args = [
      '--name', 'wipe',
      '--data-dir', join(dir, 'data'),
      '--listen-client-urls', endpoint,
      '--advertise-client-urls', endpoint,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `wipe=${peer}`,
      '--log-outputs', 'stderr',
    ];
    const logFd = openSync(join(dir, `etcd-${generation}.log`), 'w');
    // `ip netns exec` execs etcd in place: the PID is etcd's own
    const c = spawn('ip', ['netns', 'exec', o.netns, 'etcd', ...args], { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    child = c;
    await until(() => {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`etcd exited; see ${dir}`);
      return spawnSync('ip', ['netns', 'exec', o.netns, 'etcdctl', '--endpoints', endpoint, 'endpoint', 'health'], {
        env: { ...process.env, ETCDCTL_API: '3' },
      }).status === 0;
    }, 'etcd to start', 20_000, 100);
  };

  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await gone;
  };
  process.once('exit', () => child?.kill('SIGKILL'));

  await start();
  return {
    endpoint,
    ctl,
    async wipe() {
      await kill();
      rmSync(join(dir, 'data'), { recursive: true, force: true });
      await start();
    },
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
