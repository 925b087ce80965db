// Network namespaces from TypeScript, through the native shim's setns(2).
//
// setns switches only the calling thread, and in Node that is the JS thread: so a section that must
// run in another namespace (a pod's /proc/sys writes, the socket() of a netlink socket that then lives
// there for good) is a SYNCHRONOUS function run between two setns calls, and we always switch back,
// even when it throws. Never await inside: the event loop would run other code in the wrong namespace.
// libuv's threadpool (async fs, dns) never switches, which is why the sync fs calls are the ones to use.
import { codeFromErrno, errnoText, KernelError } from '../errors.js';
import { nativeAddon, nativeAddonProblem, type Addon } from '../../native/load.js';

const CLONE_NEWNET = 0x40000000;
const O_RDONLY = 0;

/** The shim, or a KernelError saying why there is none (the callers picked netlink on purpose). */
export function requireAddon(): Addon {
  const a = nativeAddon();
  if (a === undefined) throw new KernelError(`netlink: the native shim flannel.node is not available (${nativeAddonProblem()})`, { code: 'EOPNOTSUPP' });
  return a;
}

/** A KernelError for a failed syscall or netlink request: `<what>: <strerror>[: <kernel's message>]`. */
export function errnoError(what: string, errno: number, extack?: string): KernelError {
  return new KernelError(`${what}: ${errnoText(errno)}${extack ? `: ${extack}` : ''}`, { code: codeFromErrno(errno) });
}

/** Opens a namespace file (/var/run/netns/x, /proc/<pid>/ns/net) read-only: an fd for IFLA_NET_NS_FD or setns. */
export function openNetnsFd(path: string): number {
  const fd = requireAddon().open(path, O_RDONLY);
  if (fd < 0) throw errnoError(`open netns ${path}`, -fd);
  return fd;
}

export function closeFd(fd: number): void {
  requireAddon().close(fd);
}

/**
 * Runs `f` with the calling thread in the network namespace at `path`, and switches back to the
 * namespace it was in (nesting works), whether `f` returns or throws. `f` must be synchronous.
 */
export function withNetns<T>(path: string, f: () => T): T {
  const a = requireAddon();
  const target = openNetnsFd(path);
  try {
    const home = a.open('/proc/thread-self/ns/net', O_RDONLY);
    if (home < 0) throw errnoError('open /proc/thread-self/ns/net', -home);
    try {
      const rc = a.setns(target, CLONE_NEWNET);
      if (rc < 0) throw errnoError(`setns ${path}`, -rc);
      try {
        return f();
      } finally {
        const back = a.setns(home, CLONE_NEWNET);
        // Never seen in practice (our own namespace fd); if it happened, going on would program the
        // pod's namespace as if it were the host's: better to stop the process than to be wrong.
        if (back < 0) {
          process.stderr.write(`fatal: could not switch back from network namespace ${path}: ${errnoText(-back)}\n`);
          process.abort();
        }
      }
    } finally {
      a.close(home);
    }
  } finally {
    a.close(target);
  }
}
