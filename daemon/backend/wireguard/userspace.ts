// wireguard-go, started and supervised by flanneld when the kernel has no WireGuard.
//
// `wireguard-go -f <dev>` creates the TUN device <dev> and listens on /var/run/wireguard/<dev>.sock;
// the device lives as long as the process. We run it in the foreground (so its PID is ours to watch
// and to stop), log what it prints as lines of ours, and when it dies while we run we start it again
// (back-off 0.5 s doubling to 30 s) and tell the network, which re-creates everything on the new
// device (MTU, address, route, key, port, every peer). On stop: SIGTERM, then SIGKILL after 3 s.
//
// The binary: $WG_QUICK_USERSPACE_IMPLEMENTATION (wg-quick's variable for the same choice), else
// `wireguard-go` from PATH.
import { spawn, type ChildProcess } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { Logger } from '../../../shared/log.js';
import { sleep } from '../../sleep.js';
import { uapiExchange, uapiSocketPath, UAPI_SOCKET_DIR } from './control.js';

/** The first executable `name` on PATH (or `name` itself when it has a slash), else undefined. */
export async function findExecutable(name: string, path = process.env.PATH ?? ''): Promise<string | undefined> {
  const candidates = name.includes('/') ? [name] : path.split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return undefined;
}

export function userspaceImplementation(env: NodeJS.ProcessEnv = process.env): string {
  return env.WG_QUICK_USERSPACE_IMPLEMENTATION || 'wireguard-go';
}

export interface SupervisorOptions {
  binary: string;
  dev: string;
  logger: Logger;
  /** where the UAPI socket appears (tests) */
  socketDir?: string;
  /** called (serialized by the caller) after a restart, once the new process answers on its socket */
  onRestart: () => Promise<void>;
  /** how long to wait for the socket after a start */
  startTimeoutMs?: number;
}

const MAX_BACKOFF = 30_000;

export class WireguardGo {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;
  private readonly ac = new AbortController();
  private supervising: Promise<void> | undefined;

  constructor(private readonly o: SupervisorOptions) {}

  /** The PID of the running wireguard-go (tests kill it to show the restart). */
  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  get restartCount(): number {
    return this.restarts;
  }

  /**
   * Starts the process and waits until its UAPI socket answers; throws if it does not come up after 3
   * tries (a wireguard-go of an earlier run may still be letting go of the device and its socket).
   */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const exited = this.spawnOnce();
      try {
        await this.waitReady(exited);
        this.supervising = this.supervise(exited);
        return;
      } catch (err) {
        if (attempt >= 3 || this.ac.signal.aborted) throw err;
        this.o.logger.warn(`${(err as Error).message}; trying again`);
        await sleep(500 * attempt, this.ac.signal);
      }
    }
  }

  private spawnOnce(): Promise<number | string> {
    const { binary, dev, logger } = this.o;
    const child = spawn(binary, ['-f', dev], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // WG_PROCESS_FOREGROUND=1: what -f means; it also drops the "kernel has WireGuard" banner, wrong here
      env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'error', WG_PROCESS_FOREGROUND: '1' },
    });
    this.child = child;
    if (child.pid !== undefined) logger.info(`started ${binary} for ${dev} (pid ${child.pid})`);
    const relay = (d: Buffer): void => {
      for (const line of d.toString().split('\n')) if (line.trim()) logger.info(`wireguard-go[${child.pid}]: ${line.trim()}`);
    };
    child.stdout!.on('data', relay);
    child.stderr!.on('data', relay);
    return new Promise((resolve) => {
      child.once('error', (err) => resolve(`failed to start ${binary}: ${err.message}`));
      child.once('exit', (code, signal) => resolve(signal ?? code ?? -1));
    });
  }

  private async waitReady(exited: Promise<number | string>): Promise<void> {
    const sock = uapiSocketPath(this.o.dev, this.o.socketDir ?? UAPI_SOCKET_DIR);
    const deadline = Date.now() + (this.o.startTimeoutMs ?? 10_000);
    let gone: number | string | undefined;
    void exited.then((r) => (gone = r));
    for (;;) {
      if (gone !== undefined) {
        throw new Error(`${this.o.binary} for ${this.o.dev} exited (${typeof gone === 'number' ? `status ${gone}` : gone}) before it was ready; see its lines above`);
      }
      try {
        await uapiExchange(sock, 'get=1\n\n', 1000);
        return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`${this.o.binary} for ${this.o.dev} did not answer on ${sock} within ${this.o.startTimeoutMs ?? 10_000} ms`);
      }
      await sleep(50, this.ac.signal);
    }
  }

  private async supervise(first: Promise<number | string>): Promise<void> {
    let exited = first;
    let backoff = 500;
    for (;;) {
      const how = await exited;
      if (this.stopping) return;
      this.o.logger.error(
        `wireguard-go for ${this.o.dev} (pid ${this.child?.pid}) exited (${typeof how === 'number' ? `status ${how}` : how}); restarting it in ${backoff} ms`,
      );
      if (!(await sleep(backoff, this.ac.signal))) return;
      exited = this.spawnOnce();
      try {
        await this.waitReady(exited);
      } catch (err) {
        this.o.logger.error(`restarting wireguard-go for ${this.o.dev}: ${(err as Error).message}`);
        backoff = Math.min(backoff * 2, MAX_BACKOFF);
        continue;
      }
      this.restarts++;
      this.o.logger.info(`wireguard-go for ${this.o.dev} restarted (pid ${this.child?.pid}); re-applying the device and its peers`);
      backoff = 500;
      await this.o.onRestart();
    }
  }

  private async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  }

  /** Stops supervising and the process (its TUN device goes with it). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.ac.abort();
    await this.kill();
    await this.supervising;
  }
}
