// install-cni's command line, flanneld style: --flag=value or --flag value.
import type { InstallOptions } from './install.js';

export const USAGE = `usage: install-cni [--cni-bin-dir DIR] [--cni-conf-dir DIR --conflist FILE] [options]

Installs flannel-ts's CNI executable(s) and a conflist onto the host, atomically (temp name, fsync,
rename) and idempotently (a file already identical is not rewritten). kube-flannel.yml's init container.

  --cni-bin-dir DIR     host CNI bin dir to install the executables into (e.g. /host/opt/cni/bin)
  --cni-conf-dir DIR    host CNI conf dir to install the conflist into (e.g. /host/etc/cni/net.d)
  --conflist FILE       the conflist to install (e.g. /etc/kube-flannel/cni-conf.json)
  --conflist-name NAME  its file name in --cni-conf-dir (default 10-flannel.conflist)
  --plugins LIST        comma-separated executables to install (default flannel; bridge, host-local and
                        loopback are ours too, for hosts without the reference plugins)
  --source-dir DIR      where the executables are (default: the directory of install-cni itself)
  --node PATH           point the executables' #! line at this node binary on the host
  --help                this text
`;

export class UsageError extends Error {}

const VALUED = new Set(['cni-bin-dir', 'cni-conf-dir', 'conflist', 'conflist-name', 'plugins', 'source-dir', 'node']);

/** Parses argv (without node and script); `defaultSourceDir` is where install-cni itself lives. */
export function parseArgs(argv: string[], defaultSourceDir: string): InstallOptions | 'help' {
  const v: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return 'help';
    const m = /^--?([a-z-]+)(?:=(.*))?$/s.exec(a);
    if (!m || !VALUED.has(m[1]!)) throw new UsageError(`unknown argument: ${a}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${m[1]} needs a value`);
    if (value === '') throw new UsageError(`--${m[1]} is empty`);
    v[m[1]!] = value;
  }
  return {
    sourceDir: v['source-dir'] ?? defaultSourceDir,
    plugins: (v['plugins'] ?? 'flannel').split(',').map((p) => p.trim()).filter(Boolean),
    binDir: v['cni-bin-dir'],
    confDir: v['cni-conf-dir'],
    conflist: v['conflist'],
    conflistName: v['conflist-name'] ?? '10-flannel.conflist',
    nodePath: v['node'],
  };
}
