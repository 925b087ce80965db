// bridge entry: the real process (CJS bundle: no top-level await).
import { processIo } from '../../shared/cni/skel.js';
import { runBridge } from './world.js';

void runBridge(processIo).then((code) => (process.exitCode = code));
