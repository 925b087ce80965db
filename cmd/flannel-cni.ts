// The multi-call executable of the CNI side (scripts/build-exe.mjs compiles it with bun into one
// self-contained file, dist/exe/flannel-cni): it runs as the program its name says, busybox style, so
// `flannel`, `bridge`, `host-local`, `loopback`, `cnitool` and `install-cni` are links to one file.
// A runtime execs /opt/cni/bin/<type> with argv[0] = that path (a symlink's argv[0] is the link's name
// too); `flannel-cni <program> [args]` names the program explicitly.
//
// Each program is imported only when chosen (bun keeps a dynamic import of a bundled module lazy), so
// a loopback start never evaluates bridge's or cnitool's modules. Before it runs, process.argv[1] is set
// to the file we were exec'd as (bun puts its virtual /$bunfs/ entry there; the programs read it as
// Node's script path) and shared/cni/invoke.ts learns our build id, so a delegate found on CNI_PATH
// that is this same executable (any of its names, any copy of this build) runs in this process.
import { writeSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { setSelf } from '../shared/cni/invoke.js';

const PROGRAMS: Record<string, () => Promise<unknown>> = {
  flannel: () => import('../plugins/flannel/main.js'),
  bridge: () => import('../plugins/bridge/main.js'),
  'host-local': () => import('../plugins/host-local/main.js'),
  loopback: () => import('../plugins/loopback/main.js'),
  cnitool: () => import('../scripts/cnitool/main.js'),
  'install-cni': () => import('../scripts/install-cni/main.js'),
};

/** The names this executable answers to (scripts/build-exe.mjs links each of them). */
export const PROGRAM_NAMES = Object.keys(PROGRAMS);

const USAGE = `usage: flannel-cni <program> [args], or run it under one of the names ${PROGRAM_NAMES.join(', ')}\n`;

/** The file we were exec'd as: argv[0] when it is a path, else (found through PATH) the kernel's. */
function invokedAs(argv0: string, execPath: string): string {
  return argv0.includes('/') ? resolve(argv0) : execPath;
}

/** Runs the program named by argv[0] (or argv[2] when argv[0] is no program's name). */
export function main(buildId: string): void {
  const file = invokedAs(process.argv0, process.execPath);
  let name = basename(file);
  if (!(name in PROGRAMS)) {
    const asked = process.argv[2];
    if (asked === undefined || !(asked in PROGRAMS)) {
      writeSync(2, USAGE);
      process.exitCode = 2;
      return;
    }
    name = asked;
    process.argv.splice(2, 1);
  }
  process.argv[1] = file;
  setSelf(file, buildId);
  void PROGRAMS[name]!();
}
