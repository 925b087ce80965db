// loopback wired to the real kernel (iproute2 under nsenter) and statfs(2), on a skeleton io: main.ts
// runs it on the process; the fuzz test's driver runs it in-process.
import { statfsSync } from 'node:fs';
import { runPlugin, type PluginIo } from '../../shared/cni/skel.js';
import { createKernel } from '../../shared/kernel/iproute.js';
import { ABOUT, loopback } from './loopback.js';
import { StatfsError } from './netns-path.js';

/** statfs(2) f_type; errors worded as Go's syscall.Errno. */
function statfsType(path: string): number {
  try {
    return statfsSync(path).type;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_INVALID_ARG_VALUE' || e.code === 'ERR_INVALID_ARG_TYPE') throw new StatfsError(false, 'invalid argument');
    const what = /^[A-Z]+: ([^,]+)/.exec(e.message)?.[1] ?? e.message;
    throw new StatfsError(e.code === 'ENOENT', what);
  }
}

export function runLoopback(io?: PluginIo): Promise<number> {
  return runPlugin(loopback({ kernel: createKernel(), statfsType }), { about: ABOUT }, io);
}
