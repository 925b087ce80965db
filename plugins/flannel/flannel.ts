// The flannel CNI meta-plugin (flannel-io/cni-plugin): reads flanneld's subnet.env, turns it into a
// bridge + host-local config (delegate.ts), saves that to <dataDir>/<containerID> and execs the delegate
// by type from CNI_PATH. DEL replays the saved config; CHECK/STATUS/GC do what the reference does.
// ADD and DEL of one container are serialized by a lock in the dataDir (container-lock.ts).
import { CniError } from '../../shared/cni/errors.js';
import { errorMessage } from '../../shared/log.js';
import { GoStruct, parseJson } from '../../shared/go/json.js';
import type { InvokeOptions } from '../../shared/cni/invoke.js';
import { PreformattedResult, type CmdArgs, type Result } from '../../shared/cni/types.js';
import { formatResult } from '../../shared/cni/version.js';
import type { HeldLock } from '../../shared/fs/flock.js';
import { NAME_MAX } from './container-lock.js';
import { buildDelegateConf, goSyntax, refuseSelfDelegation, type Scratch } from './delegate.js';
import { parseFlannelNetConf } from './netconf.js';
import { subnetEnvError, type SubnetEnv } from './subnet-env.js';
import { missingSubnetEnvDetails } from './diagnose.js';
import { parseValidAttachments } from '../host-local/host-local.js';
import { CniErrorCode } from '../../shared/cni/errors.js';

/** What the handlers touch; tests swap parts of it. */
export interface FlannelDeps {
  readSubnetEnv(path: string): SubnetEnv;
  /**
   * Holds off other ADD/DEL of the container. With `create` the dataDir is made first (as saveScratch
   * would); without, a missing dataDir gives undefined.
   */
  lockContainer(dataDir: string, containerId: string, create: boolean): HeldLock | undefined;
  saveScratch(dataDir: string, containerId: string, bytes: string): void;
  consumeScratch(dataDir: string, containerId: string): Scratch;
  delegateAdd(type: string, conf: string, confVersion: string, o: InvokeOptions): Promise<Result>;
  delegateDel(type: string, conf: Buffer, o: InvokeOptions): Promise<void>;
  delegateStatus(type: string, conf: string, o: InvokeOptions): Promise<void>;
  delegateGc(type: string, conf: string, o: InvokeOptions): Promise<void>;
  /** container IDs with a saved delegate config in the dataDir (none when it does not exist) */
  listScratch(dataDir: string): string[];
  /** PIDs of flanneld processes on this node (only asked when subnet.env is missing) */
  flanneldPids(): number[];
  writeStderr(text: string): void;
}

/** subnet.env, or the error the runtime gets: Go's text, and (file missing) who should have written it. */
function loadSubnetEnv(path: string, deps: FlannelDeps, code: number = CniErrorCode.Internal): SubnetEnv {
  try {
    return deps.readSubnetEnv(path);
  } catch (err) {
    const missing = (err as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT' || /no such file or directory$/.test(errorMessage(err));
    const wrapped = subnetEnvError(errorMessage(err));
    if (!missing && code === CniErrorCode.Internal) throw wrapped;
    throw new CniError(code, wrapped.message, missing ? missingSubnetEnvDetails(path, deps.flanneldPids()) : '');
  }
}

export async function cmdAdd(args: CmdArgs, deps: FlannelDeps): Promise<PreformattedResult> {
  const n = parseFlannelNetConf(args.stdinData);
  const d = buildDelegateConf(n, loadSubnetEnv(n.subnetFile, deps));
  deps.writeStderr(`\n${goSyntax(d.conf)}\n`);
  deps.writeStderr(`delegateAdd: netconf sent to delegate plugin:\n${d.bytes}`);
  // an ID too long for a file name can never be saved (Go fails here too, after the same check): refuse
  // it before the lock file exists, so nothing is left for a DEL that can never find it
  if (Buffer.byteLength(args.containerId) > NAME_MAX) {
    throw new Error(`failed to delegate add: open ${n.dataDir}/${args.containerId}: file name too long`);
  }
  // held until the delegate is done: a DEL that comes meanwhile replays the complete ADD afterwards
  const lock = deps.lockContainer(n.dataDir, args.containerId, true);
  let result: Result;
  try {
    // written before the delegate runs: a failed ADD leaves it for the runtime's DEL to replay
    deps.saveScratch(n.dataDir, args.containerId, d.bytes);
    result = await deps.delegateAdd(d.type, d.bytes, n.cniVersion || '0.1.0', { writeStderr: deps.writeStderr });
  } catch (err) {
    // skel HEAD unwraps a wrapped types.Error: the delegate's own {code,msg} reaches the runtime
    if (err instanceof CniError) throw err;
    throw new Error(`failed to delegate add: ${errorMessage(err)}`);
  } finally {
    lock?.release();
  }
  // result.Print(): the delegate's result at the delegate's own cniVersion
  return new PreformattedResult(formatResult(result, result.cniVersion));
}

export async function cmdDel(args: CmdArgs, deps: FlannelDeps): Promise<void> {
  const n = parseFlannelNetConf(args.stdinData);
  const lock = deps.lockContainer(n.dataDir, args.containerId, false);
  // no dataDir: no ADD ever saved anything here
  if (!lock) return;
  // the lock file goes with the last state of the container (a failed delegate DEL included: the
  // scratch file is gone then too); a DEL that fails before that keeps it for the retry
  let removeLock = false;
  try {
    let scratch: Scratch;
    try {
      scratch = deps.consumeScratch(n.dataDir, args.containerId);
    } catch (err) {
      // nothing saved (never added, or already deleted): nothing to do
      // (an ID too long for a file name: ADD refused it, so nothing can be saved under it either)
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENAMETOOLONG') {
        removeLock = true;
        return;
      }
      throw err;
    }
    let type: string;
    try {
      type = GoStruct.from(parseJson(scratch.bytes), 'types.NetConf').string('type') ?? '';
    } catch (err) {
      // flannel-io/cni-plugin#33: a corrupt file must not wedge the pod in Terminating. The file is kept
      // and whatever the delegate created stays until reboot, as in the reference.
      deps.writeStderr(`failed to parse netconf: ${errorMessage(err)}`);
      return;
    }
    try {
      // a saved config naming ourselves (only Go's ADD writes one) would make this DEL run itself again,
      // and wait forever for the lock we hold; handled like a corrupt file
      refuseSelfDelegation(type, undefined, n.type);
    } catch (err) {
      deps.writeStderr(`not replaying ${n.dataDir}/${args.containerId}: ${errorMessage(err)}`);
      return;
    }
    try {
      await deps.delegateDel(type, scratch.bytes, { writeStderr: deps.writeStderr });
    } finally {
      // the reference removes the file even when the delegate's DEL failed; a retried DEL is a no-op
      scratch.remove();
      removeLock = true;
    }
  } finally {
    lock.release(removeLock);
  }
}

/** The reference's cmdCheck is a stub that returns nil; it does not CHECK the delegate either. */
export async function cmdCheck(_args: CmdArgs, _deps?: FlannelDeps): Promise<void> {}

/**
 * STATUS (CNI 1.1; the reference registers no handler, i.e. always "ready"): the plugin can serve an ADD
 * when flanneld has written a complete subnet.env. Otherwise code 50 (plugin not available) with why and
 * the fix, so a runtime that asks (containerd's NetworkReady) holds pods back instead of failing each ADD.
 * Then the delegate (bridge → IPAM) is asked, as the spec wants STATUS forwarded.
 */
export async function cmdStatus(args: CmdArgs, deps: FlannelDeps): Promise<void> {
  const n = parseFlannelNetConf(args.stdinData);
  const d = buildDelegateConf(n, loadSubnetEnv(n.subnetFile, deps, CniErrorCode.PluginNotAvailable));
  await deps.delegateStatus(d.type, d.bytes, { writeStderr: deps.writeStderr });
}

/**
 * GC (CNI 1.1; the reference has none): given the runtime's valid attachments, the saved delegate
 * configs of every other container go (with their lock files), and the GC is passed to the delegate
 * (bridge → host-local releases every address no valid attachment holds). libcni has already DELeted the
 * attachments it knows; what is left is what a runtime killed mid-ADD leaked, which users otherwise clean
 * with `rm -rf /var/lib/cni/networks/cbr0`. Errors are joined as libcni joins them; one never stops the rest.
 */
export async function cmdGc(args: CmdArgs, deps: FlannelDeps): Promise<void> {
  const n = parseFlannelNetConf(args.stdinData);
  const valid = parseValidAttachments(parseJson(args.stdinData));
  const keep = new Set(valid.map((a) => a.containerId));
  const errs: string[] = [];
  for (const id of deps.listScratch(n.dataDir)) {
    if (keep.has(id)) continue;
    const lock = deps.lockContainer(n.dataDir, id, false);
    try {
      deps.consumeScratch(n.dataDir, id).remove();
      deps.writeStderr(`GC: removed the saved delegate config of container ${id} (no valid attachment)\n`);
    } catch (err) {
      errs.push(errorMessage(err));
    } finally {
      lock?.release(true);
    }
  }
  let fenv: SubnetEnv | undefined;
  try {
    fenv = deps.readSubnetEnv(n.subnetFile);
  } catch (err) {
    // without subnet.env the delegate's config (its IPAM ranges, dataDir) is unknown: nothing to pass on
    errs.push(`GC not passed to the delegate: ${subnetEnvError(errorMessage(err)).message}`);
  }
  if (fenv) {
    const d = buildDelegateConf(n, fenv);
    const conf = { ...(JSON.parse(d.bytes) as Record<string, unknown>), 'cni.dev/valid-attachments': valid.map((a) => ({ containerID: a.containerId, ifname: a.ifname })) };
    try {
      await deps.delegateGc(d.type, JSON.stringify(conf), { writeStderr: deps.writeStderr });
    } catch (err) {
      errs.push(errorMessage(err));
    }
  }
  if (errs.length > 0) throw new Error(errs.join('; '));
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export const FLANNEL_VERSION = 'v1.9.1-flannel1-ts';

export const ABOUT = `CNI Plugin flannel version ${FLANNEL_VERSION} (linux/${GOARCH[process.arch] ?? process.arch}) commit unknown`;
