// loopback entry: the real process (CJS bundle: no top-level await).
import { processIo } from '../../shared/cni/skel.js';
import { runLoopback } from './world.js';

void runLoopback(processIo).then((code) => (process.exitCode = code));
