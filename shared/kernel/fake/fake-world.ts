// FakeWorld: the state behind FakeKernel, every network namespace by path ("/" is the root one), and
// the failures a test injects. Tests read and seed it directly (`world.namespaces.get('/pod')`).
import { formatNet, parseCIDR } from '../../net/ip.js';
import type { Family } from '../../net/ip.js';
import { ERRNO_TEXT, KernelError, type KernelErrorCode } from '../errors.js';
import type { Addr, BridgeVlan, Fdb, KernelEvent, KernelOp, Link, Neigh, Route } from '../kernel.js';
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
  /** FakeKernel.watch exists (off by default: see there) */
  watchable = false;
  /** Kernel.watch subscribers, by namespace path */
  private readonly watchers = new Map<string, Set<(ev: KernelEvent) => void>>();

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

  /** Subscribes to the changes of namespace `path` (FakeKernel.watch). */
  watch(path: string, onEvent: (ev: KernelEvent) => void): { close(): void } {
    let set = this.watchers.get(path);
    if (set === undefined) this.watchers.set(path, (set = new Set()));
    set.add(onEvent);
    return { close: () => void set.delete(onEvent) };
  }

  /**
   * Delivers `ev` to the watchers of `path` asynchronously, as a netlink socket would. Every write
   * through a FakeKernel of that namespace emits (from the daemon or from a test "behind its back");
   * a test seeds a change the kernel never announces by editing `namespaces` directly, and simulates a
   * receive-buffer overflow with `emit(path, { kind: 'resync' })`.
   */
  emit(path: string, ev: KernelEvent): void {
    const set = this.watchers.get(path);
    if (set === undefined || set.size === 0) return;
    queueMicrotask(() => {
      for (const f of [...set]) f(ev);
    });
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

/** The coarse event one applied write produces (undefined: none, e.g. a sysctl). */
export function eventOf(op: KernelOp): KernelEvent | undefined {
  switch (op.op) {
    case 'replaceRoute':
    case 'addRoute':
    case 'prependRoute':
    case 'deleteRoute':
      return { kind: 'route', deleted: op.op === 'deleteRoute', ...(op.route.dev !== undefined ? { dev: op.route.dev } : {}) };
    case 'replaceNeigh':
    case 'deleteNeigh':
      return { kind: 'neigh', deleted: op.op === 'deleteNeigh', dev: op.dev };
    case 'replaceFdb':
    case 'appendFdb':
    case 'deleteFdb':
      return { kind: 'fdb', deleted: op.op === 'deleteFdb', dev: op.dev };
    case 'replaceAddr':
    case 'addAddr':
    case 'deleteAddr':
      return { kind: 'addr', deleted: op.op === 'deleteAddr', dev: op.dev };
    case 'setLinkUp':
    case 'setLink':
    case 'setBridgePort':
    case 'deleteLink':
      return { kind: 'link', deleted: op.op === 'deleteLink', dev: op.dev };
    case 'addBridge':
    case 'addVxlan':
    case 'addIpip':
    case 'addWireguard':
      return { kind: 'link', deleted: false, dev: op.name };
    case 'addVeth':
      return { kind: 'link', deleted: false, dev: op.name };
    default:
      return undefined;
  }
}
