// bridge wired to the real world (the host's kernel, iptables and nftables through their adapters, IPAM
// through CNI_PATH, /dev/urandom) on a skeleton io: main.ts runs it on the process, flannel in-process as
// its delegate, the fuzz test's driver in-process. Its IPAM delegate host-local runs in this process when
// CNI_PATH resolves it to our own build (shared/cni/invoke.ts, registerInProcess).
import { closeSync, openSync, readSync } from 'node:fs';
import { delegateAdd, delegateCheck, delegateDel, delegateGc, delegateStatus, registerInProcess } from '../../shared/cni/invoke.js';
import { processIo, runPlugin, type PluginIo } from '../../shared/cni/skel.js';
import type { CmdArgs } from '../../shared/cni/types.js';
import { createIptables } from '../../shared/kernel/iproute2/iptables.js';
import { createKernel } from '../../shared/kernel/create.js';
import { createNft } from '../../shared/kernel/iproute2/nft.js';
import { checkNetnsPath } from '../../shared/ns/netns.js';
import { runHostLocal } from '../host-local/world.js';
import { ABOUT, cmdAdd, cmdDel, cmdGc, cmdStatus, type BridgeDeps } from './bridge.js';
import { cmdCheck } from './check.js';

registerInProcess('host-local', runHostLocal);

/** Random bytes from /dev/urandom: loading node:crypto would cost milliseconds of start-up per ADD. */
function urandom(n: number): Buffer {
  const b = Buffer.alloc(n);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, b, 0, n, null);
  } finally {
    closeSync(fd);
  }
  return b;
}

/**
 * The real world for one invocation: our own namespace's kernel, iptables and nftables, IPAM through
 * CNI_PATH with the invocation's environment, and logs to the invocation's stderr (the process's, or
 * the caller's buffer when bridge runs in-process as a delegate).
 */
export function realDeps(io: { env: Record<string, string | undefined>; writeStderr(text: string): void }): BridgeDeps {
  const o = { env: io.env, writeStderr: (t: string) => io.writeStderr(t) };
  return {
    kernel: createKernel(),
    iptables: (family) => createIptables(family),
    nft: createNft(),
    ipam: {
      add: (type, stdin, v) => delegateAdd(type, stdin, v, o),
      del: (type, stdin) => delegateDel(type, stdin, o),
      check: (type, stdin) => delegateCheck(type, stdin, o),
      status: (type, stdin) => delegateStatus(type, stdin, o),
      gc: (type, stdin) => delegateGc(type, stdin, o),
    },
    openNetns: (path) => checkNetnsPath(path),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    random: urandom,
    log: (msg) => io.writeStderr(`${msg}\n`),
  };
}

export function runBridge(io: PluginIo = processIo, deps: BridgeDeps = realDeps(io)): Promise<number> {
  const funcs = {
    add: (a: CmdArgs) => cmdAdd(a, deps),
    del: (a: CmdArgs) => cmdDel(a, deps),
    check: (a: CmdArgs) => cmdCheck(a, deps),
    status: (a: CmdArgs) => cmdStatus(a, deps),
    gc: (a: CmdArgs) => cmdGc(a, deps),
  };
  return runPlugin(funcs, { about: ABOUT }, io);
}
