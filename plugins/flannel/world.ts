// flannel wired to the real world (subnet.env, the dataDir, delegates through CNI_PATH) on a skeleton io:
// main.ts runs it on the process, the fuzz test's driver in-process, unit tests with their own deps. Its
// usual delegates, our bridge and host-local, run in this process when CNI_PATH resolves them to our own
// build (shared/cni/invoke.ts, registerInProcess; bridge's world registers host-local).
import { delegateAdd, delegateDel, delegateGc, delegateStatus, registerInProcess } from '../../shared/cni/invoke.js';
import { processIo, runPlugin, type PluginIo } from '../../shared/cni/skel.js';
import type { CmdArgs } from '../../shared/cni/types.js';
import { runBridge } from '../bridge/world.js';
import { lockContainer } from './container-lock.js';
import { consumeScratch, listScratch, saveScratch } from './delegate.js';
import { flanneldPids } from './diagnose.js';
import { ABOUT, cmdAdd, cmdCheck, cmdDel, cmdGc, cmdStatus, type FlannelDeps } from './flannel.js';
import { readSubnetEnv } from './subnet-env.js';

registerInProcess('bridge', runBridge);

export function realDeps(io: PluginIo): FlannelDeps {
  return {
    readSubnetEnv: (path) => readSubnetEnv(path),
    lockContainer: (dataDir, containerId, create) => lockContainer(dataDir, containerId, create),
    saveScratch,
    consumeScratch,
    delegateAdd,
    delegateDel,
    delegateStatus,
    delegateGc,
    listScratch,
    flanneldPids: () => flanneldPids(),
    writeStderr: (text) => io.writeStderr(text),
  };
}

export function runFlannel(io: PluginIo = processIo, deps: FlannelDeps = realDeps(io)): Promise<number> {
  const funcs = {
    add: (a: CmdArgs) => cmdAdd(a, deps),
    del: (a: CmdArgs) => cmdDel(a, deps),
    check: (a: CmdArgs) => cmdCheck(a, deps),
    status: (a: CmdArgs) => cmdStatus(a, deps),
    gc: (a: CmdArgs) => cmdGc(a, deps),
  };
  return runPlugin(funcs, { about: ABOUT }, io);
}
