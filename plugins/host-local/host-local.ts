// host-local IPAM (plugins/ipam/host-local/main.go): ADD allocates one address per range set from a
// store shared by every plugin process on the node, DEL releases all addresses of (container ID, ifname),
// CHECK confirms one is held, GC (spec 1.1) releases every reservation the runtime no longer lists.
// Every error is plain, so it reaches the runtime as code 999 with Go's message.
import { GoJsonError, GoStruct, isObject, parseJson } from '../../shared/go/json.js';
import type { CmdArgs, DNS, IPConfig, Result } from '../../shared/cni/types.js';
import { type IP, formatIP, ipEqual } from '../../shared/net/ip.js';
import { IPAllocator } from './allocator.js';
import { loadIPAMConfig } from './netconf.js';
import { rangeSetContains } from './range-set.js';
import type { Attachment, Store } from './store.js';

export const ABOUT = 'CNI host-local plugin version unknown';

export interface HostLocalDeps {
  /** disk.New: the store of `network` under `dataDir` ('' = the default) */
  openStore(network: string, dataDir: string): Store;
  /** reads resolvConf */
  readFile(path: string): string;
  /** Go's log.Printf, to stderr */
  log(msg: string): void;
}

/** Runs `f` on the network's store, closed (unlocked) afterwards whatever happens. */
function withStore<T>(ipam: { name: string; dataDir: string }, deps: HostLocalDeps, f: (store: Store) => T): T {
  const store = deps.openStore(ipam.name, ipam.dataDir);
  try {
    return f(store);
  } finally {
    store.close();
  }
}

export function cmdAdd(args: CmdArgs, deps: HostLocalDeps): Result {
  const { ipam, cniVersion } = loadIPAMConfig(args.stdinData, args.args);
  const result: Result = { cniVersion };
  if (ipam.resolvConf !== '') result.dns = parseResolvConf(deps.readFile(ipam.resolvConf));

  return withStore(ipam, deps, (store) => {
    const allocs: IPAllocator[] = [];
    const releaseAll = (): void => {
      for (const alloc of allocs) {
        try {
          alloc.release(args.containerId, args.ifName);
        } catch {
          // best effort, as Go's `_ = alloc.Release(...)`
        }
      }
    };
    // Requested IPs, deduplicated by text like Go's map; each is consumed by the first set holding it.
    const requested: IP[] = [];
    for (const ip of ipam.ipArgs) if (!requested.some((r) => ipEqual(r, ip))) requested.push(ip);

    const ips: IPConfig[] = [];
    ipam.ranges.forEach((rangeSet, idx) => {
      const allocator = new IPAllocator(rangeSet, store, idx, deps.log);
      const i = requested.findIndex((ip) => rangeSetContains(rangeSet, ip));
      const requestedIP = i >= 0 ? requested.splice(i, 1)[0] : undefined;
      try {
        ips.push(allocator.get(args.containerId, args.ifName, requestedIP));
      } catch (err) {
        releaseAll();
        throw new Error(`failed to allocate for range ${idx}: ${(err as Error).message}`, { cause: err });
      }
      allocs.push(allocator);
    });
    if (requested.length > 0) {
      releaseAll();
      throw new Error(`failed to allocate all requested IPs: ${requested.map(formatIP).join(' ')}`);
    }
    result.ips = ips;
    if (ipam.routes.length > 0) result.routes = ipam.routes;
    return result;
  });
}

export function cmdDel(args: CmdArgs, deps: HostLocalDeps): void {
  const { ipam } = loadIPAMConfig(args.stdinData, args.args);
  withStore(ipam, deps, (store) => {
    // Release in every range set even if one fails; report all failures joined by ";".
    const errors: string[] = [];
    ipam.ranges.forEach((rangeSet, idx) => {
      try {
        new IPAllocator(rangeSet, store, idx, deps.log).release(args.containerId, args.ifName);
      } catch (err) {
        errors.push((err as Error).message);
      }
    });
    if (errors.length > 0) throw new Error(errors.join(';'));
  });
}

export function cmdCheck(args: CmdArgs, deps: HostLocalDeps): void {
  const { ipam } = loadIPAMConfig(args.stdinData, args.args);
  withStore(ipam, deps, (store) => {
    if (!store.findByID(args.containerId, args.ifName)) {
      throw new Error(`host-local: Failed to find address added by container ${args.containerId}`);
    }
  });
}

/** GC: releases every reservation whose (containerID, ifname) is not in `cni.dev/valid-attachments`. */
export function cmdGc(args: CmdArgs, deps: HostLocalDeps): void {
  const { ipam } = loadIPAMConfig(args.stdinData, args.args);
  const valid = parseValidAttachments(parseJson(args.stdinData));
  withStore(ipam, deps, (store) => store.gc(valid));
}

const VALID_ATTACHMENTS = 'cni.dev/valid-attachments';

export function parseValidAttachments(raw: unknown): Attachment[] {
  const conf = GoStruct.from(raw, 'types.GCNetConf');
  const list = conf.array(VALID_ATTACHMENTS, '[]types.GCAttachment') ?? [];
  return list.map((item) => {
    if (!isObject(item)) throw new GoJsonError(`json: cannot unmarshal ${Array.isArray(item) ? 'array' : typeof item} into Go struct field GCNetConf.${VALID_ATTACHMENTS} of type types.GCAttachment`);
    const a = new GoStruct(item, `GCAttachment.${VALID_ATTACHMENTS}`);
    return { containerId: a.string('containerID') ?? '', ifname: a.string('ifname') ?? '' };
  });
}

/** parseResolvConf (dns.go): nameserver, domain, search, options; `#`/`;` comments. */
export function parseResolvConf(text: string): DNS {
  const dns: DNS = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const fields = line.split(/\s+/);
    if (fields.length < 2) continue;
    const [key, ...rest] = fields as [string, ...string[]];
    switch (key) {
      case 'nameserver':
        (dns.nameservers ??= []).push(rest[0]!);
        break;
      case 'domain':
        dns.domain = rest[0]!;
        break;
      case 'search':
        (dns.search ??= []).push(...rest);
        break;
      case 'options':
        (dns.options ??= []).push(...rest);
        break;
    }
  }
  return dns;
}
