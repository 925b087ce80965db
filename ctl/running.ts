// Is a flanneld running on this node? flanneld (Go's and ours) keeps no pid file or lock, so this
// looks at the processes: a process whose command line is flanneld (the Go binary, or node/bun
// running our bundle) and whose network namespace is ours (/proc/<pid>/ns/net is the same inode as
// /proc/self/ns/net). The namespace is what "this node" means to flanneld: a flanneld of another
// node on the same machine (a lab, kind, a VM's netns) is not ours, and a flanneld in a DaemonSet pod
// with hostNetwork is (it shares the host's namespace; its pid namespace does not matter when
// flannelctl runs on the host). Reading another process's ns link needs root, which cleanup needs anyway.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export interface RunningDaemon {
  pid: number;
  cmdline: string;
}

const base = (s: string) => s.slice(s.lastIndexOf('/') + 1);

/** flanneld's own binary, or an interpreter running a `flanneld` / `flanneld.mjs` script. */
export function isFlanneldArgv(argv: readonly string[]): boolean {
  const first = argv[0];
  if (first === undefined) return false;
  if (base(first) === 'flanneld') return true;
  if (!/^(node|nodejs|bun)$/.test(base(first))) return false;
  const script = argv.slice(1).find((a) => !a.startsWith('-'));
  return script !== undefined && /^flanneld(\.m?js)?$/.test(base(script));
}

/** The flanneld processes in this process's network namespace (never this process). */
export function findFlanneld(proc = '/proc'): RunningDaemon[] {
  let mine: string;
  try {
    mine = readlinkSync(`${proc}/self/ns/net`);
  } catch {
    return [];
  }
  const out: RunningDaemon[] = [];
  for (const e of readdirSync(proc)) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const argv = readFileSync(`${proc}/${e}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      if (!isFlanneldArgv(argv)) continue;
      if (readlinkSync(`${proc}/${e}/ns/net`) !== mine) continue;
      out.push({ pid: Number(e), cmdline: argv.join(' ') });
    } catch {
      /* gone, or not readable */
    }
  }
  return out;
}
