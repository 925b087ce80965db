// host-local wired to the real disk (with the fastest flock available) and to a skeleton io: the
// executable's main.ts runs it on the process; bridge and flannel run it in-process as a delegate
// (shared/cni/invoke.ts, registerInProcess); unit tests pass their own deps.
import { processIo, runPlugin, type PluginIo } from '../../shared/cni/skel.js';
import type { CmdArgs } from '../../shared/cni/types.js';
import { processFlock } from '../../shared/fs/flock.js';
import { MAX_STATE_FILE, readFileBounded } from '../../shared/fs/read-bounded.js';
import { pathError, readErrorOp } from '../../shared/go/errors.js';
import { DiskStore } from './disk-store.js';
import { ABOUT, cmdAdd, cmdCheck, cmdDel, cmdGc, type HostLocalDeps } from './host-local.js';

/** os.ReadFile (resolvConf), bounded, with Go's error text (`open <path>: no such file or directory`). */
function readFile(path: string): string {
  try {
    return readFileBounded(path, MAX_STATE_FILE).toString('utf8');
  } catch (err) {
    throw pathError(readErrorOp(err), path, err);
  }
}

export function realDeps(io: PluginIo): HostLocalDeps {
  return {
    openStore: (network, dataDir) => DiskStore.open(network, dataDir, processFlock),
    readFile,
    log: (msg) => io.writeStderr(`${new Date().toISOString().replace('T', ' ').slice(0, 19).replaceAll('-', '/')} ${msg}\n`),
  };
}

export function runHostLocal(io: PluginIo = processIo, deps: HostLocalDeps = realDeps(io)): Promise<number> {
  const funcs = {
    add: async (a: CmdArgs) => cmdAdd(a, deps),
    del: async (a: CmdArgs) => cmdDel(a, deps),
    check: async (a: CmdArgs) => cmdCheck(a, deps),
    gc: async (a: CmdArgs) => cmdGc(a, deps),
  };
  return runPlugin(funcs, { about: ABOUT }, io);
}
