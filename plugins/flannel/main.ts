// flannel entry: the real process (CJS bundle: no top-level await).
import { processIo } from '../../shared/cni/skel.js';
import { runFlannel } from './world.js';

void runFlannel(processIo).then((code) => (process.exitCode = code));
