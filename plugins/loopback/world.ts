// loopback wired to the real world (the kernel adapter of shared/kernel/create.ts, statfs(2)) on a skeleton io: main.ts runs
// it on the process, the fuzz test's driver in-process, unit tests with fake deps.
import { processIo, runPlugin, type PluginIo } from '../../shared/cni/skel.js';
import { createKernel } from '../../shared/kernel/create.js';
import { statfsType } from '../../shared/ns/netns.js';
import { ABOUT, cmdAdd, cmdCheck, cmdDel, type LoopbackDeps } from './loopback.js';

export function realDeps(): LoopbackDeps {
  return { kernel: createKernel(), statfsType };
}

export function runLoopback(io: PluginIo = processIo, deps: LoopbackDeps = realDeps()): Promise<number> {
  return runPlugin({ add: (a) => cmdAdd(a, deps), del: (a) => cmdDel(a, deps), check: (a) => cmdCheck(a, deps) }, { about: ABOUT }, io);
}
