// Which Kernel adapter this process uses: netlink (in-process, shared/kernel/netlink/) when the native
// shim loads, else iproute2 (execs `ip`/`bridge`). FLANNEL_KERNEL=iproute2|netlink forces one; forcing
// netlink without the shim is an error, not a silent fallback.
import { createKernel as createIproute2Kernel } from './iproute2/kernel.js';
import type { Kernel } from './kernel.js';
import { createNetlinkKernel } from './netlink/kernel.js';
import { nativeAddon, nativeAddonProblem } from '../native/load.js';

export type KernelBackendName = 'netlink' | 'iproute2';

export interface KernelBackendChoice {
  name: KernelBackendName;
  /** why: `FLANNEL_KERNEL=…`, or why the shim is not there, for the start-up log line */
  reason: string;
}

/** The adapter to use, from FLANNEL_KERNEL and whether the shim loads. Throws on a bad or unsatisfiable FLANNEL_KERNEL. */
export function kernelBackend(env: Record<string, string | undefined> = process.env): KernelBackendChoice {
  const forced = env.FLANNEL_KERNEL;
  if (forced === 'iproute2') return { name: 'iproute2', reason: 'FLANNEL_KERNEL=iproute2' };
  if (forced !== undefined && forced !== '' && forced !== 'netlink') {
    throw new Error(`FLANNEL_KERNEL=${forced}: expected "netlink" or "iproute2"`);
  }
  if (nativeAddon() !== undefined) return { name: 'netlink', reason: forced === 'netlink' ? 'FLANNEL_KERNEL=netlink' : 'native shim loaded' };
  if (forced === 'netlink') throw new Error(`FLANNEL_KERNEL=netlink, but the native shim flannel.node is not available: ${nativeAddonProblem()}`);
  return { name: 'iproute2', reason: `native shim not available (${nativeAddonProblem()})` };
}

/** The Kernel of this process's namespace (or, with `netns`, of the one at that path), on the chosen adapter. */
export function createKernel(o?: { netns?: string }): Kernel {
  return kernelBackend().name === 'netlink' ? createNetlinkKernel(o) : createIproute2Kernel(o);
}
