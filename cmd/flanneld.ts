// The entry of the self-contained dist/exe/flanneld (scripts/build-exe.mjs compiles it with bun): a
// two-program multi-call file, so the node tool ships without a third ~100 MiB executable. Run under
// the name `flannelctl` (dist/exe/flannelctl is a hard link to flanneld; a symlink or a copy under that
// name works too) it is flannelctl (ctl/main.ts); under any other name it is the daemon (daemon/main.ts),
// as the single-download install names it.
//
// Only the program chosen is evaluated: bun keeps a dynamic import of a bundled module lazy, so a
// daemon start never evaluates flannelctl's modules (and the reverse). Dispatch is by name only, never
// by an argument: `flanneld flannelctl ...` would still look like a running daemon in /proc to
// `flannelctl cleanup` (ctl/running.ts finds flanneld by argv[0]'s name).
import { basename, resolve } from 'node:path';

const PROGRAMS = {
  flanneld: () => import('../daemon/main.js'),
  flannelctl: () => import('../ctl/main.js'),
};

/** The program a start under argv[0] runs: flannelctl under that name, the daemon under any other. */
export function programOf(argv0: string): keyof typeof PROGRAMS {
  return basename(argv0) === 'flannelctl' ? 'flannelctl' : 'flanneld';
}

/**
 * Runs the program argv[0] names. process.argv[1] becomes the file we were exec'd as (bun puts its
 * virtual /$bunfs/ entry there; the programs read it as Node's script path: the native shim's dir, the
 * Kubernetes user agent): argv[0] when it is a path, else (found through PATH) the kernel's.
 */
export function main(): void {
  const argv0 = process.argv0;
  process.argv[1] = argv0.includes('/') ? resolve(argv0) : process.execPath;
  void PROGRAMS[programOf(argv0)]();
}
