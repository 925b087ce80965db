// A real flock(2) on `<dataDir>/<network>/lock`, the lock the Go host-local takes (go-filemutex:
// open O_CREAT|O_RDONLY 0750, flock LOCK_EX, LOCK_UN). Both implementations lock the same open file
// description, so a Go and a TypeScript host-local on one node exclude each other.
//
// Node has no flock binding. Options measured on this machine (Node 20, 2 vCPU; see README "Performance"):
// - re-exec the whole plugin under `flock(1) <lock> node ...`: a second Node start, ~+24 ms per call;
// - a child `flock <lock> cat` kept alive by a pipe until we are done: one async spawn plus a readiness
//   handshake per lock, and a lock that outlives us if the child is orphaned;
// - `flock -x 3` run with our own fd as its fd 3 (this file, `utilFlock`): flock(1) locks the open file
//   description it shares with us and exits; the lock stays held by our fd until we close it.
//   Costs one spawnSync (~4 ms for the first in a process, ~1.2 ms after), needs only util-linux
//   (Essential in Debian) and no build step;
// - a 20-line N-API addon calling flock(2) (`nativeFlock`): ~0.3 ms to dlopen, ~0.2 µs per call, but
//   it must be compiled with the Node headers and a C compiler at build time.
// main.ts uses the addon when the build produced it next to the executable (plugins/host-local/native/
// build.mjs writes dist/bin/flock.node), flock(1) otherwise.
// Unlock closes the fd (which drops the lock with no syscall beyond close) and reopens it on the next lock.
import { closeSync, constants, existsSync, openSync } from 'node:fs';

/** Blocks until `fd` holds an exclusive flock; throws on failure. */
export type FlockFn = (fd: number) => void;

export class FileLock {
  private fd: number | undefined;

  /** Opens (creating) the lock file, like filemutex.New. */
  constructor(
    readonly path: string,
    private readonly flockExclusive: FlockFn,
  ) {
    this.fd = openLockFile(path);
  }

  lock(): void {
    this.fd ??= openLockFile(this.path);
    this.flockExclusive(this.fd);
  }

  /** Closing our only reference to the open file description releases the lock. */
  unlock(): void {
    this.close();
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function openLockFile(path: string): number {
  return openSync(path, constants.O_CREAT | constants.O_RDONLY, 0o750);
}

const FLOCK_PATHS = ['/usr/bin/flock', '/bin/flock'];

/** flock(2) through util-linux flock(1) operating on our fd, passed as its fd 3. */
export function utilFlock(): FlockFn {
  const bin = FLOCK_PATHS.find((p) => existsSync(p)) ?? 'flock';
  return (fd) => {
    // Loaded on first use: node:child_process costs ~1.8 ms to load, which the addon path never pays.
    const { spawnSync } = process.getBuiltinModule('node:child_process');
    const r = spawnSync(bin, ['-x', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], env: {} });
    if (r.error) throw new Error(`failed to lock: ${bin}: ${r.error.message}`, { cause: r.error });
    if (r.status !== 0) throw new Error(`failed to lock: ${bin} exited ${r.status}: ${r.stderr.toString().trim()}`);
  };
}

interface FlockAddon {
  flock(fd: number, op: number): number;
}

const LOCK_EX = 2;

/** flock(2) through the optional N-API addon at `file`; undefined when it is absent or does not load. */
export function nativeFlock(file: string): FlockFn | undefined {
  if (!existsSync(file)) return undefined;
  const mod: { exports: Partial<FlockAddon> } = { exports: {} };
  try {
    process.dlopen(mod, file);
  } catch {
    return undefined;
  }
  const addon = mod.exports;
  if (typeof addon.flock !== 'function') return undefined;
  const flock = addon.flock.bind(addon);
  return (fd) => {
    const errno = flock(fd, LOCK_EX);
    if (errno !== 0) throw new Error(`failed to lock: flock: errno ${errno}`);
  };
}
