// bridge wired to the real kernel and to a skeleton io; its IPAM delegate host-local runs in this
// process when CNI_PATH resolves it to our own build (shared/cni/invoke.ts, registerInProcess).
import { registerInProcess } from '../../shared/cni/invoke.js';
import { runPlugin, type PluginIo } from '../../shared/cni/skel.js';
import { runHostLocal } from '../host-local/world.js';
import { ABOUT, add, check, del, realDeps, status } from './bridge.js';

registerInProcess('host-local', runHostLocal);

export function runBridge(io: PluginIo): Promise<number> {
  const deps = realDeps(io);
  return runPlugin({ add: (a) => add(a, deps), del: (a) => del(a, deps), check: (a) => check(a, deps), status: (a) => status(a, deps) }, { about: ABOUT }, io);
}
