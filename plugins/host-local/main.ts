// host-local entry: the real process.
import { processIo } from '../../shared/cni/skel.js';
import { runHostLocal } from './process.js';

void runHostLocal(processIo).then((code) => {
  process.exitCode = code;
});
