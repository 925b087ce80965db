// host-local entry: the real process (CJS bundle: no top-level await).
import { processIo } from '../../shared/cni/skel.js';
import { runHostLocal } from './world.js';

void runHostLocal(processIo).then((code) => (process.exitCode = code));
