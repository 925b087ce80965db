// cnitool's command line (containernetworking/cni cnitool): `cnitool add|check|del|status|gc NAME NETNS`.
//   NETCONFPATH  config dir (default /etc/cni/net.d)      CNI_PATH  plugin dirs (no default)
//   CNI_IFNAME   interface (default eth0)                 CNI_ARGS  `K=V;...` (strict pairs)
//   CAP_ARGS     JSON object of capability args           CNI_CACHE_DIR  ours: libcni's cache dir (default /var/lib/cni)
// The container ID is "cnitool-" + the first 10 bytes of sha512(abs(NETNS)) in hex. `add` prints the
// final result; any error goes to stderr as its bare text with exit status 1.
import { createHash } from 'node:crypto';
import { basename, resolve } from 'node:path';
import { formatResult } from '../../shared/cni/version.js';
import { isObject, parseJson } from '../../shared/go/json.js';
import { CNIConfig, DEFAULT_CACHE_DIR, errorText, type RuntimeConf } from './libcni/api.js';
import { loadConfList } from './libcni/conf.js';

export const DEFAULT_NET_DIR = '/etc/cni/net.d';

export interface ToolIo {
  argv: string[];
  env: Record<string, string | undefined>;
  cwd: string;
  writeStdout(text: string): void;
  writeStderr(text: string): void;
}

/** parseArgs: `K=V` pairs split on ';', each exactly one '=' with both sides non-empty. */
export function parseArgs(args: string): Array<[string, string]> {
  return args.split(';').map((pair) => {
    const kv = pair.split('=');
    if (kv.length !== 2 || kv[0] === '' || kv[1] === '') throw new Error(`invalid CNI_ARGS pair ${JSON.stringify(pair)}`);
    return [kv[0]!, kv[1]!];
  });
}

export function containerIdFor(netns: string): string {
  return `cnitool-${createHash('sha512').update(netns).digest('hex').slice(0, 20)}`;
}

function usage(io: ToolIo): number {
  const exe = basename(io.argv[1] ?? 'cnitool');
  io.writeStderr(`${exe}: Add, check, remove, gc or status network interfaces from a network namespace\n`);
  for (const c of ['add   ', 'check ', 'del   ', 'gc    ', 'status']) io.writeStderr(`  ${exe} ${c} <net> <netns>\n`);
  return 1;
}

/** Runs one cnitool invocation; returns the exit status. */
export async function runCnitool(io: ToolIo): Promise<number> {
  const argv = io.argv;
  if (argv.length < 5) return usage(io);
  const [, , cmd, netName, netnsArg] = argv as [string, string, string, string, string];
  try {
    const netdir = io.env.NETCONFPATH || DEFAULT_NET_DIR;
    const list = loadConfList(netdir, netName);
    let capabilityArgs: Record<string, unknown> | undefined;
    const capText = io.env.CAP_ARGS ?? '';
    if (capText.length > 0) {
      const raw = parseJson(capText);
      if (!isObject(raw)) throw new Error('json: cannot unmarshal into Go value of type map[string]interface {}');
      capabilityArgs = raw;
    }
    const argsText = io.env.CNI_ARGS ?? '';
    const cniArgs = argsText.length > 0 ? parseArgs(argsText) : undefined;
    const ifName = io.env.CNI_IFNAME ?? 'eth0';
    const netns = resolve(io.cwd, netnsArg);
    const rt: RuntimeConf = { containerId: containerIdFor(netns), netns, ifName, args: cniArgs, capabilityArgs };
    const cni = new CNIConfig((io.env.CNI_PATH ?? '').split(':').filter((d) => d !== ''), {
      cacheDir: io.env.CNI_CACHE_DIR || DEFAULT_CACHE_DIR,
      env: io.env,
      writeStderr: io.writeStderr,
    });
    switch (cmd) {
      case 'add': {
        const result = await cni.addNetworkList(list, rt);
        if (result) io.writeStdout(formatResult(result, result.cniVersion));
        return 0;
      }
      case 'check':
        await cni.checkNetworkList(list, rt);
        return 0;
      case 'del':
        await cni.delNetworkList(list, rt);
        return 0;
      case 'gc':
        // as cnitool: no valid attachments, so every cached attachment of the network is deleted
        await cni.gcNetworkList(list);
        return 0;
      case 'status':
        await cni.getStatusNetworkList(list);
        return 0;
      default:
        return 0;
    }
  } catch (err) {
    io.writeStderr(`${errorText(err)}\n`);
    return 1;
  }
}
