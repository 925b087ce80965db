// flock(2) for the plugins. Node has no flock binding; the options, cheapest last:
// - re-exec the whole plugin under `flock(1) <lock> node ...`: a second Node start per call;
// - a child `flock <lock> cat` kept alive by a pipe until we are done: one async spawn plus a readiness
//   handshake per lock, and a lock that outlives us if the child is orphaned;
// - `flock -x 3` run with our own fd as its fd 3 (`utilFlock`): flock(1) locks the open file
//   description it shares with us and exits; the lock stays held by our fd until we close it.
//   Costs one spawnSync per lock (a few ms), needs only util-linux (Essential in Debian) and no build step;
// - flock(2) from the project's native shim (flannel.node, shared/native/): a dlopen once, then a plain
//   syscall, but it must be compiled with the Node headers and a C compiler at build time.
// `processFlock` picks the shim when shared/native/load.ts finds it (or, from an older build, a
// flock.node next to the executable: `nativeFlock`), flock(1) otherwise.
// Every fd Node opens is O_CLOEXEC: a delegate we exec never inherits (and so never holds) our locks.
import { closeSync, constants, existsSync, fstatSync, openSync, realpathSync, statSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadAddonFile, nativeAddon } from '../native/load.js';

/** Blocks until `fd` holds an exclusive flock; throws on failure. */
export type FlockFn = (fd: number) => void;

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

const LOCK_EX = 2;

/** One dlopen per addon file and process, whoever asks (flannel and its in-process host-local). */
const addons = new Map<string, FlockFn | undefined>();

/** flock(2) through the addon file at `file` (a flannel.node, or flock.node of an older build); undefined when it is absent or does not load. */
export function nativeFlock(file: string): FlockFn | undefined {
  if (addons.has(file)) return addons.get(file);
  const fn = legacyAddon(file);
  addons.set(file, fn);
  return fn;
}

type FlockSyscall = (fd: number, op: number) => number;

function asFlockFn(flock: FlockSyscall): FlockFn {
  return (fd) => {
    const errno = flock(fd, LOCK_EX);
    if (errno !== 0) throw new Error(`failed to lock: flock: errno ${errno}`);
  };
}

/** flock.node (the addon before the shim) exports only `flock`; the shim exports it too. */
function legacyAddon(file: string): FlockFn | undefined {
  const shim = loadAddonFile(file).addon;
  if (shim !== undefined) return asFlockFn(shim.flock.bind(shim));
  if (!existsSync(file)) return undefined;
  const mod: { exports: { flock?: unknown } } = { exports: {} };
  try {
    process.dlopen(mod, file);
  } catch {
    return undefined;
  }
  const addon = mod.exports;
  return typeof addon.flock === 'function' ? asFlockFn((addon.flock as FlockSyscall).bind(addon)) : undefined;
}

/** flock.node of an older build, next to the real executable (resolving /opt/cni/bin/x → dist/bin only if needed). */
function legacyAddonPath(): string {
  const self = process.argv[1] ?? '.';
  const beside = join(dirname(self), 'flock.node');
  if (existsSync(beside)) return beside;
  try {
    return join(dirname(realpathSync(self)), 'flock.node');
  } catch {
    return beside;
  }
}

function shimFlock(): FlockFn | undefined {
  const a = nativeAddon();
  return a === undefined ? undefined : asFlockFn(a.flock.bind(a));
}

let chosen: FlockFn | undefined;

/** The fastest flock this process has, picked on first use. */
export const processFlock: FlockFn = (fd) => {
  chosen ??= shimFlock() ?? (process.env.FLANNEL_NATIVE === 'off' ? undefined : nativeFlock(legacyAddonPath())) ?? utilFlock();
  chosen(fd);
};

/** A held lock on a file that may be removed by its holder. */
export interface HeldLock {
  readonly path: string;
  /** Drops the lock; with `remove`, unlinks the lock file first (while still holding it). */
  release(remove?: boolean): void;
}

/**
 * Takes an exclusive flock on `path` (created 0600 if missing), for lock files that holders delete.
 * Deleting a lock file is only safe with a check after locking: a waiter may have opened the file before
 * the holder unlinked it and then "hold" a lock on an orphan inode while a newcomer locks a fresh file.
 * So after flock we verify that `path` still names the inode we locked, and start over if not.
 * Open errors are thrown as they are (ENOENT when the directory is missing).
 */
export function lockFile(path: string, flock: FlockFn = processFlock): HeldLock {
  for (;;) {
    const fd = openSync(path, constants.O_CREAT | constants.O_RDONLY, 0o600);
    let current: boolean;
    try {
      flock(fd);
      const held = fstatSync(fd);
      let now;
      try {
        now = statSync(path);
      } catch {
        now = undefined;
      }
      current = now !== undefined && now.ino === held.ino && now.dev === held.dev;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (!current) {
      closeSync(fd);
      continue;
    }
    let released = false;
    return {
      path,
      release(remove = false) {
        if (released) return;
        released = true;
        if (remove) {
          try {
            unlinkSync(path);
          } catch {
            // already gone or not removable: a leftover empty lock file is harmless
          }
        }
        // closing our only reference to the open file description drops the lock
        closeSync(fd);
      },
    };
  }
}
