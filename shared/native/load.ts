// The one loader of flannel.node, the native shim (shared/native/shim.c): a few syscalls Node has no
// binding for (netlink sockets, setns, flock). Everything above it is TypeScript.
//
// Where it comes from, first found wins:
// - handed over by a compiled single executable (`bun build --compile` embeds the .node file: its entry
//   imports it statically and calls provideNativeAddon before anything else runs);
// - `flannel.node` next to the running executable or bundle: the directory of process.argv[1] (as
//   given, then with symlinks resolved: /opt/cni/bin/x → dist/bin/x), then of process.execPath;
// - `dist/bin/flannel.node` of this checkout, for code run from source (vitest, a .ts script): the
//   checkout is what precedes `/node_modules/` in the runner's path, or the nearest package.json above
//   a .ts entry.
// FLANNEL_NATIVE=off makes it absent (to exercise the fallbacks: iproute2 execs, flock(1)).
// A missing or unloadable file is not an error: callers fall back; `nativeAddonProblem()` says why.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** What shim.c exports. Every call returns a negative errno on failure (never throws for a syscall error). */
export interface Addon {
  /** flock(2); 0, or the errno as a POSITIVE number (the contract of the flock.node it replaces) */
  flock(fd: number, op: number): number;
  /** socket(2) with SOCK_CLOEXEC → fd | -errno */
  socket(domain: number, type: number, protocol: number): number;
  /** bind(2) to a netlink address: kernel-chosen port id, `groups` the legacy multicast bitmask → 0 | -errno */
  bind(fd: number, groups: number): number;
  /** the netlink port id the kernel gave the socket (getsockname) | -errno */
  portId(fd: number): number;
  /** setsockopt(2) with an int value; SO_RCVTIMEO/SO_SNDTIMEO take milliseconds → 0 | -errno */
  setsockopt(fd: number, level: number, opt: number, value: number): number;
  /** getsockopt(2) of an int option → value | -errno */
  getsockopt(fd: number, level: number, opt: number): number;
  /** one sendto(2) to the kernel (netlink port 0) of `bytes` (or its first `length` bytes) → bytes sent | -errno */
  send(fd: number, bytes: Uint8Array, length?: number): number;
  /** one recv(2) into `into` → bytes | -errno; with MSG_TRUNC in flags the datagram's real length */
  recv(fd: number, into: Uint8Array, flags: number): number;
  /** setns(2) of the calling thread → 0 | -errno */
  setns(fd: number, nstype: number): number;
  /** open(2) with O_CLOEXEC → fd | -errno */
  open(path: string, flags: number): number;
  /** close(2) → 0 | -errno */
  close(fd: number): number;
}

const FILE = 'flannel.node';
const FUNCTIONS: readonly (keyof Addon)[] = ['flock', 'socket', 'bind', 'portId', 'setsockopt', 'getsockopt', 'send', 'recv', 'setns', 'open', 'close'];

let provided: Addon | undefined;
let loaded: { addon: Addon | undefined; problem: string } | undefined;

/** The addon's exports when they have every function of `Addon`, else undefined. */
function asAddon(mod: unknown): Addon | undefined {
  if (mod === null || (typeof mod !== 'object' && typeof mod !== 'function')) return undefined;
  const m = mod as Record<string, unknown>;
  return FUNCTIONS.every((f) => typeof m[f] === 'function') ? (m as unknown as Addon) : undefined;
}

/**
 * For a compiled single executable: `import addon from './flannel.node'` (bun embeds it) and hand the
 * module over here before anything else runs. Throws when it is not the shim (a build mistake).
 */
export function provideNativeAddon(mod: unknown): void {
  const m = mod as { default?: unknown } | null;
  const addon = asAddon(mod) ?? asAddon(m?.default);
  if (addon === undefined) throw new Error('provideNativeAddon: the module given is not flannel.node (missing functions)');
  provided = addon;
  loaded = undefined;
}

/** dlopen of one file; undefined (with the reason) when it is absent, does not load, or is not the shim. */
export function loadAddonFile(file: string): { addon?: Addon; problem?: string } {
  if (!existsSync(file)) return { problem: `${file}: not found` };
  const mod: { exports: unknown } = { exports: {} };
  try {
    process.dlopen(mod, file);
  } catch (err) {
    return { problem: `${file}: ${err instanceof Error ? err.message : String(err)}` };
  }
  const addon = asAddon(mod.exports);
  return addon !== undefined ? { addon } : { problem: `${file}: not the flannel shim (missing functions)` };
}

/** The directories searched for flannel.node, most specific first, without duplicates. */
export function addonDirs(argv1: string | undefined = process.argv[1], execPath: string = process.execPath): string[] {
  const dirs: string[] = [];
  if (argv1 !== undefined && argv1 !== '') {
    dirs.push(dirname(argv1));
    let real = argv1;
    try {
      real = realpathSync(argv1);
      dirs.push(dirname(real));
    } catch {
      // a path that does not resolve (bun's /$bunfs/ entry): only its own directory was worth a look
    }
    const nm = real.indexOf('/node_modules/');
    if (nm > 0) dirs.push(join(real.slice(0, nm), 'dist', 'bin'));
    else if (/\.[cm]?ts$/.test(real)) {
      for (let d = dirname(real); d !== dirname(d); d = dirname(d)) {
        if (existsSync(join(d, 'package.json'))) {
          dirs.push(join(d, 'dist', 'bin'));
          break;
        }
      }
    }
  }
  dirs.push(dirname(execPath));
  return [...new Set(dirs)];
}

/** The shim, or undefined when this process has none (callers fall back). Looked up once per process. */
export function nativeAddon(): Addon | undefined {
  if (process.env.FLANNEL_NATIVE === 'off') return undefined;
  loaded ??= find();
  return loaded.addon;
}

/** Why nativeAddon() is undefined ('' when it is not): for a log line at startup. */
export function nativeAddonProblem(): string {
  if (process.env.FLANNEL_NATIVE === 'off') return 'disabled by FLANNEL_NATIVE=off';
  loaded ??= find();
  return loaded.problem;
}

function find(): { addon: Addon | undefined; problem: string } {
  if (provided !== undefined) return { addon: provided, problem: '' };
  const problems: string[] = [];
  for (const dir of addonDirs()) {
    const r = loadAddonFile(join(dir, FILE));
    if (r.addon !== undefined) return { addon: r.addon, problem: '' };
    if (r.problem !== undefined && !r.problem.endsWith('not found')) problems.push(r.problem);
  }
  return { addon: undefined, problem: problems.length > 0 ? problems.join('; ') : `no ${FILE} in ${addonDirs().join(', ')}` };
}
