// FakeWorld: the state behind FakeKernel, every network namespace by path ("/" is the root one), and
// the failures a test injects. Tests read and seed it directly (`world.namespaces.get('/pod')`).
import { formatNet, parseCIDR } from '../../net/ip.js';
import type { Family } from '../../net/ip.js';
import { ERRNO_TEXT, KernelError, type KernelErrorCode } from '../errors.js';
import type { Addr, BridgeVlan, Fdb, Link, Neigh, Route } from '../kernel.js';
export { normCidr } from '../../ip/configure-iface.js'; // `ip/prefix` as the kernel lists it

/** `<what>: <strerror(code)>`, the shape of the adapter's messages. */
export const fail = (code: KernelErrorCode, what: string) => new KernelError(`${what}: ${ERRNO_TEXT[code]}`, { code });

export interface FakeNs {
  links: Map<string, Link>;
  addrs: Addr[];
  routes: Route[];
  neighs: Neigh[];
  fdb: Fdb[];
  vlans: Map<string, BridgeVlan[]>;
  sysctls: Map<string, string>;
}

export function newNs(): FakeNs {
  const ns: FakeNs = { links: new Map(), addrs: [], routes: [], neighs: [], fdb: [], vlans: new Map(), sysctls: new Map() };
  ns.links.set('lo', { name: 'lo', index: 1, kind: 'loopback', mtu: 65536, mac: '00:00:00:00:00:00', up: false });
  return ns;
}

export class FakeWorld {
  readonly namespaces = new Map<string, FakeNs>([['/', newNs()]]);
  nextIndex = 2;
  /** Kernel calls made (a batch is one; seeding verbs are not counted): the seam's cost, as tests state it */
  calls = 0;
  /** what would have been execs with the iproute2 adapter (superseded by `calls`; kept while tests move) */
  execs = 0;
  private macSeq = 0;
  private readonly failures = new Map<string, KernelError>();

  addNetns(path: string): FakeNs {
    const ns = newNs();
    this.namespaces.set(path, ns);
    return ns;
  }

  deleteNetns(path: string): void {
    this.namespaces.delete(path);
  }

  /** The next call of verb/op `name` (e.g. `getLink`, `addVeth`) fails with `code`. */
  failOn(name: string, code: KernelErrorCode = 'EPERM'): void {
    this.failures.set(name, fail(code, name));
  }

  takeFailure(name: string): void {
    const e = this.failures.get(name);
    if (e !== undefined) {
      this.failures.delete(name);
      throw e;
    }
  }

  randomMac(): string {
    const n = ++this.macSeq;
    return `02:fa:00:00:${((n >> 8) & 0xff).toString(16).padStart(2, '0')}:${(n & 0xff).toString(16).padStart(2, '0')}`;
  }
}

const peerMaps = new WeakMap<FakeWorld, Map<Link, Link>>();
export function peersOf(w: FakeWorld): Map<Link, Link> {
  let m = peerMaps.get(w);
  if (m === undefined) {
    m = new Map();
    peerMaps.set(w, m);
  }
  return m;
}

export function normKey(key: string): string {
  return key.includes('/') ? key.replace(/^\/+/, '').replace(/^proc\/sys\//, '') : key.replace(/\./g, '/');
}

export function famOf(s: string): Family {
  return s.includes(':') ? 6 : 4;
}

/** network of an `ip/prefix` as text, e.g. 10.1.2.3/24 → 10.1.2.0/24 */
export function netOf(cidr: string): string {
  return formatNet(parseCIDR(cidr).net);
}
