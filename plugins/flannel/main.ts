// flannel entry: the real process. Its usual delegates, our bridge and host-local, run in this process
// when CNI_PATH resolves them to our own build (shared/cni/invoke.ts, registerInProcess).
import { registerInProcess } from '../../shared/cni/invoke.js';
import { processIo, runPlugin } from '../../shared/cni/skel.js';
import { runBridge } from '../bridge/process.js';
import { FLANNEL_FUNCS, INFO } from './flannel.js';

registerInProcess('bridge', runBridge);

void runPlugin(FLANNEL_FUNCS, INFO, processIo).then((code) => (process.exitCode = code));
