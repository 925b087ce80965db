// bridge wired to the real kernel and to a skeleton io; its IPAM delegate host-local runs in this
// process when CNI_PATH resolves it to our own build (shared/cni/invoke.ts, registerInProcess).
import { registerInProcess } from '../../shared/cni/invoke.js';
import { runPlugin, type PluginIo } from '../../shared/cni/skel.js';
import { runHostLocal } from '../host-local/process.js';
import { ABOUT, cmdAdd, cmdCheck, cmdDel, cmdStatus } from './bridge.js';

registerInProcess('host-local', runHostLocal);

export function runBridge(io: PluginIo): Promise<number> {
  return runPlugin({ add: cmdAdd, del: cmdDel, check: cmdCheck, status: cmdStatus }, { about: ABOUT }, io);
}
