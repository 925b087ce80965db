// flannel entry: the real process to runPlugin.
import { runPlugin } from '../../shared/cni/skel.js';
import { FLANNEL_FUNCS, INFO } from './flannel.js';

void runPlugin(FLANNEL_FUNCS, INFO).then((code) => (process.exitCode = code));
