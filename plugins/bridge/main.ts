// bridge entry: the real process and kernel wired to runPlugin (CJS bundle: no top-level await).
import { runPlugin } from '../../shared/cni/skel.js';
import { ABOUT, cmdAdd, cmdCheck, cmdDel, cmdStatus } from './bridge.js';

void runPlugin({ add: cmdAdd, del: cmdDel, check: cmdCheck, status: cmdStatus }, { about: ABOUT }).then((code) => (process.exitCode = code));
