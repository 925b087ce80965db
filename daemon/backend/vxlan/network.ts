// The vxlan event loop (flannel's vxlan_network.go): turns peer lease batches into kernel state.
//
// - Every batch from `watchLeases` (the snapshot first, then changes) becomes ONE `Kernel.batch()` call:
//   per added peer neighbour → FDB → route, per removed peer route → neighbour → FDB. With iproute2 that is
//   one `ip -batch` (plus one `bridge -batch`) exec for the whole batch, so 5000 peers converge in a few
//   execs instead of 15000.
// - Never half-programmed: if the combined batch fails, each lease is retried on its own; a lease that
//   still fails is rolled back (its neighbour and FDB entry removed), logged and retried later with
//   back-off, and the other leases are unaffected. A lease we cannot use (other backend type, bad
//   BackendData, no PublicIP) is logged and skipped.
// - Leftovers: after the first batch (the snapshot of every current peer) is programmed, the flannel-owned
//   routes, neighbours and FDB entries on our own devices that no current peer accounts for are removed
//   in one batch (`removeStaleEntries`): those of leases deleted while flanneld was not running, which
//   upstream keeps forever.
// - Device watchdog: we poll `getLink` (one `ip -j link show dev` exec, ~2 ms) every second rather than
//   keep an `ip monitor link` child. Polling cannot miss an event (a monitor can lose lines when its pipe
//   or process dies, and needs its own restart logic), sees every kind of damage in one read (deleted,
//   re-created by someone else with a new ifindex or MAC, set down, wrong MTU), and its worst-case
//   detection delay of one interval is small next to upstream's 1–30 s re-create back-off. On damage the
//   device is re-created with the same MAC and every known peer is re-programmed in one batch.
import type { Kernel, KernelOp, Route } from '../../../shared/kernel/kernel.js';
import { field } from '../../../shared/cni/go-json.js';
import {
  formatIP,
  formatNet,
  makeNet,
  netContains,
  netEqual,
  netIP,
  tryParseCIDR,
  tryParseIP,
  type IP,
  type IPNet,
} from '../../../shared/net/ip.js';
import type { Network, SubnetManager } from '../backend.js';
import { lastEventPerLease, type Lease, type LeaseEvent } from '../../lease.js';
import { PeerGuard } from '../peer-guard.js';
import { sleep } from '../../sleep.js';
import { vxlanIncompat, type Neighbor, type VxlanDevice } from './device.js';
import { isUnicastMac, normalizeMac, ZERO_MAC } from '../../../shared/net/mac.js';
import { longestPrefixMatch, parseRouteDst } from '../../../shared/net/route.js';

export interface VxlanNetworkOptions {
  subnetManager: SubnetManager;
  kernel: Kernel;
  log: (msg: string) => void;
  lease: Lease;
  dev?: VxlanDevice;
  v6Dev?: VxlanDevice;
  directRouting: boolean;
  /** the flannel Network, for re-configuring a re-created device (VxlanDevice.configure); peers outside it are refused */
  network?: IPNet;
  /** the flannel IPv6Network; IPv6 peers outside it are refused */
  ipv6Network?: IPNet;
  mtu: number;
  /** device watchdog period (ms); 0 disables it */
  pollInterval?: number;
  /** first retry delay for a lease that failed to program (ms), doubled up to 30 s */
  retryDelay?: number;
  /** our own addresses besides the lease's PublicIPs (the underlay address): never a peer's */
  ownAddrs?: readonly (IP | undefined)[];
  /** the IPv4 networks on the external interface: a peer's PublicIP is not their broadcast address */
  underlay?: readonly IPNet[];
}

/** What we programmed for one peer in one family. */
interface FamilyState {
  n: Neighbor;
  direct: boolean;
}

interface Peer {
  lease: Lease;
  v4?: FamilyState;
  v6?: FamilyState;
}

interface Plan {
  key: string;
  kind: 'add' | 'remove';
  ops: KernelOp[];
  /** on success: record the new state */
  commit: () => void;
  /** the lease to retry if an add fails */
  lease?: Lease;
  /** best-effort removal of whatever part of an add got written */
  undo?: KernelOp[];
}

const isZero = (ip: IP | undefined): boolean => ip === undefined || ip.value === 0n;

export class VxlanNetwork implements Network {
  private readonly peers = new Map<string, Peer>();
  private readonly retries = new Map<string, { lease: Lease; delay: number; at: number }>();
  private retryTimer: NodeJS.Timeout | undefined;
  private firstSyncDone: () => void = () => {};
  /** Settles once the first lease snapshot is programmed and stale entries are removed. */
  readonly firstSync = new Promise<void>((resolve) => (this.firstSyncDone = resolve));
  private tail: Promise<void> = Promise.resolve();
  private signal: AbortSignal | undefined;
  /** which peer leases may be programmed (overlaps, shared VtepMACs, bad PublicIPs are refused) */
  private readonly guard: PeerGuard;
  /** lease key → the last error programming it, so a lease the kernel keeps refusing is logged once */
  private readonly failing = new Map<string, string>();

  constructor(private readonly o: VxlanNetworkOptions) {
    this.guard = new PeerGuard({
      own: o.lease,
      enableIPv4: !!o.dev,
      enableIPv6: !!o.v6Dev,
      ...(o.network ? { network: o.network } : {}),
      ...(o.ipv6Network ? { ipv6Network: o.ipv6Network } : {}),
      ownAddrs: [o.lease.attrs.publicIP, o.lease.attrs.publicIPv6, ...(o.ownAddrs ?? [])],
      ...(o.underlay ? { underlay: o.underlay } : {}),
      claims: (l) => this.claims(l),
      log: o.log,
    });
  }

  /**
   * What a vxlan lease holds exclusively besides its subnet: its VtepMAC per family (the FDB is keyed
   * by MAC, so two leases with one MAC would take each other's entry). A VtepMAC that is not unicast is
   * refused here: the kernel refuses a multicast FDB replace, and retrying it would go on forever.
   */
  private claims(l: Lease): string[] | string {
    if (l.attrs.backendType !== 'vxlan') return [];
    const out: string[] = [];
    for (const family of [4, 6] as const) {
      if (!(family === 4 ? this.o.dev : this.o.v6Dev)) continue;
      const data = family === 4 ? l.attrs.backendData : l.attrs.backendV6Data;
      if (typeof data !== 'object' || data === null) continue;
      const mac = normalizeMac(field(data as Record<string, unknown>, 'VtepMAC'));
      if (!mac) continue; // the lease is skipped with its own log line in neighbor()
      if (!isUnicastMac(mac)) return `its VtepMAC ${mac} is not a unicast MAC address`;
      out.push(`IPv${family} VtepMAC ${mac}`);
    }
    return out;
  }

  lease(): Lease {
    return this.o.lease;
  }

  mtu(): number {
    return this.o.mtu;
  }

  /** Known peers (subnet key → lease), for tests and diagnostics. */
  knownPeers(): Map<string, Lease> {
    return new Map([...this.peers].map(([k, p]) => [k, p.lease]));
  }

  async run(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    const watchdog = this.watchDevices(signal);
    try {
      let snapshot = true;
      for await (const batch of this.o.subnetManager.watchLeases(signal)) {
        if (signal.aborted) break;
        const first = snapshot;
        snapshot = false;
        await this.serial(async () => {
          await this.handleBatch(batch);
          // the first batch is every current peer: whatever else we find on our devices is left over
          if (first) {
            await this.removeStaleEntries();
            this.firstSyncDone();
          }
        });
      }
    } finally {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      await watchdog;
    }
  }

  /** Runs f after everything queued before it (batches, retries and device heals never interleave). */
  private serial(f: () => Promise<void>): Promise<void> {
    const next = this.tail.then(f, f);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** Applies one batch of lease events; never throws for a bad lease. */
  async handleBatch(events: readonly LeaseEvent[]): Promise<void> {
    const last = lastEventPerLease(this.guard.update(events), (l) => this.isOwn(l));
    if (last.size === 0) return;
    const t0 = performance.now();
    const routes = await this.routesForDirect();
    const plans: Plan[] = [];
    for (const [key, ev] of last) {
      this.retries.delete(key);
      const plan = ev.type === 'added' ? this.planAdd(key, ev.lease, routes) : this.planRemove(key, ev.lease);
      if (plan) plans.push(plan);
    }
    await this.apply(plans);
    if (last.size > 1) {
      this.o.log(`applied a batch of ${last.size} lease events in ${(performance.now() - t0).toFixed(0)} ms (${this.peers.size} peers)`);
    }
  }

  private isOwn(lease: Lease): boolean {
    const own = this.o.lease;
    return (
      (!!lease.subnet && !!own.subnet && netEqual(lease.subnet, own.subnet)) ||
      (!!lease.ipv6Subnet && !!own.ipv6Subnet && netEqual(lease.ipv6Subnet, own.ipv6Subnet))
    );
  }

  private async apply(plans: Plan[]): Promise<void> {
    if (plans.length === 0) return;
    const all = orderOps(plans.flatMap((p) => p.ops));
    try {
      if (all.length > 0) await this.o.kernel.batch(all);
      for (const p of plans) p.commit();
      return;
    } catch (err) {
      if (plans.length > 1) this.o.log(`batch of ${plans.length} lease changes failed (${errText(err)}); applying them one by one`);
      else if (plans[0]?.kind === 'add') {
        return this.failAdd(plans[0], err);
      }
    }
    for (const p of plans) {
      if (p.kind === 'remove') {
        await this.removeBestEffort(p.ops);
        p.commit();
        continue;
      }
      try {
        await this.o.kernel.batch(orderOps(p.ops));
        p.commit();
      } catch (err) {
        await this.failAdd(p, err);
      }
    }
  }

  private async failAdd(p: Plan, err: unknown): Promise<void> {
    // once per lease and error: a peer the kernel keeps refusing must not flood the log on every retry
    if (this.failing.get(p.key) !== errText(err)) {
      this.o.log(`failed to program lease ${p.key}: ${errText(err)}; rolling it back and retrying later (with back-off, logged again only if the error changes)`);
      this.failing.set(p.key, errText(err));
    }
    if (p.undo) await this.removeBestEffort(p.undo);
    // What we had before is gone too (undo removed the entries): forget it so a later add starts clean.
    this.peers.delete(p.key);
    if (p.lease) this.scheduleRetry(p.key, p.lease);
  }

  /** Removal never stops early: each write on its own, a missing entry is fine (as upstream's DelX calls). */
  private async removeBestEffort(ops: KernelOp[]): Promise<void> {
    try {
      await this.o.kernel.batch(ops);
      return;
    } catch {
      /* some entry was already gone: go one by one */
    }
    for (const op of ops) {
      try {
        await this.o.kernel.batch([op]);
      } catch {
        /* already gone, or the device itself is gone: nothing left to remove */
      }
    }
  }

  private scheduleRetry(key: string, lease: Lease): void {
    const prev = this.retries.get(key);
    const base = this.o.retryDelay ?? 1000;
    const delay = prev ? Math.min(prev.delay * 2, 30_000) : base;
    this.retries.set(key, { lease, delay, at: Date.now() + delay });
    this.armRetryTimer();
  }

  private armRetryTimer(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.retries.size === 0 || this.signal?.aborted) return;
    const next = Math.min(...[...this.retries.values()].map((r) => r.at));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.serial(() => this.runRetries());
    }, Math.max(0, next - Date.now()));
    this.retryTimer.unref?.();
  }

  private async runRetries(): Promise<void> {
    const now = Date.now();
    const due = [...this.retries].filter(([, r]) => r.at <= now);
    const routes = await this.routesForDirect();
    const plans: Plan[] = [];
    for (const [key, r] of due) {
      const plan = this.planAdd(key, r.lease, routes);
      if (!plan) this.retries.delete(key);
      else plans.push(plan);
    }
    // keep the back-off state until the plan succeeds; success clears it in commit()
    for (const p of plans) {
      const c = p.commit;
      p.commit = () => {
        c();
        this.retries.delete(p.key);
      };
    }
    await this.apply(plans);
    this.armRetryTimer();
  }

  /** Neighbor for one family of a lease, or a reason why the lease cannot be used. */
  private neighbor(lease: Lease, family: 4 | 6): Neighbor | string | undefined {
    const subnet = family === 4 ? lease.subnet : lease.ipv6Subnet;
    if (!subnet || (family === 4 && !lease.enableIPv4 && !lease.subnet)) return undefined;
    const publicIP = family === 4 ? lease.attrs.publicIP : lease.attrs.publicIPv6;
    const data = family === 4 ? lease.attrs.backendData : lease.attrs.backendV6Data;
    if (isZero(publicIP) || !publicIP) return `no public IPv${family}`;
    if (typeof data !== 'object' || data === null) return `no ${family === 4 ? 'BackendData' : 'BackendV6Data'}`;
    const rawMac = field(data as Record<string, unknown>, 'VtepMAC');
    const mac = normalizeMac(rawMac);
    if (!mac) return `error decoding subnet lease JSON: invalid VtepMAC ${JSON.stringify(rawMac)}`;
    return { subnet, mac, publicIP };
  }

  private planAdd(key: string, lease: Lease, routes: Map<4 | 6, Route[]>): Plan | undefined {
    if (lease.attrs.backendType !== 'vxlan') {
      this.o.log(`ignoring non-vxlan v4Subnet(${lease.subnet ? formatNet(lease.subnet) : ''}) v6Subnet(${lease.ipv6Subnet ? formatNet(lease.ipv6Subnet) : ''}): type=${lease.attrs.backendType ?? ''}`);
      // a peer that switched backends: take down what we had programmed for it
      return this.peers.has(key) ? this.planRemove(key, lease) : undefined;
    }
    const old = this.peers.get(key);
    const next: Peer = { lease };
    const ops: KernelOp[] = [];
    const undo: KernelOp[] = [];
    for (const family of [4, 6] as const) {
      const dev = family === 4 ? this.o.dev : this.o.v6Dev;
      if (!dev) continue;
      const n = this.neighbor(lease, family);
      const prev = family === 4 ? old?.v4 : old?.v6;
      if (n === undefined) {
        if (prev) ops.push(...this.removeOps(dev, prev));
        continue;
      }
      if (typeof n === 'string') {
        this.o.log(`skipping lease ${key}: ${n}`);
        if (prev) ops.push(...this.removeOps(dev, prev));
        continue;
      }
      const direct = this.o.directRouting && isDirect(n.publicIP, routes.get(family) ?? []);
      const state: FamilyState = { n, direct };
      if (prev) {
        // The peer changed: drop entries that a replace would not overwrite.
        if (prev.direct !== direct) ops.push(...this.removeOps(dev, prev));
        else if (!direct && prev.n.mac !== n.mac) {
          ops.push({ op: 'deleteFdb', dev: dev.attrs.name, mac: prev.n.mac, dst: formatIP(prev.n.publicIP) });
        }
      }
      if (direct) {
        this.o.log(`adding direct route to subnet: ${formatNet(n.subnet)} PublicIP: ${formatIP(n.publicIP)}`);
        ops.push(...dev.addDirectOps(n));
      } else {
        ops.push(...dev.addPeerOps(n));
      }
      undo.push(...this.removeOps(dev, state));
      if (family === 4) next.v4 = state;
      else next.v6 = state;
    }
    if (ops.length === 0 && !next.v4 && !next.v6) return undefined;
    return {
      key,
      kind: 'add',
      ops,
      lease,
      undo,
      commit: () => {
        if (next.v4 || next.v6) this.peers.set(key, next);
        else this.peers.delete(key);
        const had = this.failing.get(key);
        if (had !== undefined) {
          this.failing.delete(key);
          this.o.log(`programmed lease ${key}, which had failed: ${had}`);
        }
      },
    };
  }

  private planRemove(key: string, lease: Lease): Plan | undefined {
    const known = this.peers.get(key);
    const ops: KernelOp[] = [];
    for (const family of [4, 6] as const) {
      const dev = family === 4 ? this.o.dev : this.o.v6Dev;
      if (!dev) continue;
      let state = family === 4 ? known?.v4 : known?.v6;
      if (!state && !known) {
        // Never programmed by us (or lost across a restart): remove by the event's attrs anyway.
        const n = this.neighbor(lease, family);
        if (n && typeof n !== 'string') state = { n, direct: false };
      }
      if (state) ops.push(...this.removeOps(dev, state));
    }
    if (!known) this.o.log(`removed subnet ${key} was not known; removing its entries anyway`);
    if (ops.length === 0) {
      this.peers.delete(key);
      this.failing.delete(key);
      return undefined;
    }
    return {
      key,
      kind: 'remove',
      ops,
      commit: () => {
        this.peers.delete(key);
        this.failing.delete(key);
      },
    };
  }

  private removeOps(dev: VxlanDevice, s: FamilyState): KernelOp[] {
    return s.direct ? dev.removeDirectOps(s.n) : dev.removePeerOps(s.n);
  }

  private async routesForDirect(): Promise<Map<4 | 6, Route[]>> {
    const out = new Map<4 | 6, Route[]>();
    if (!this.o.directRouting) return out;
    for (const family of [4, 6] as const) {
      if (!(family === 4 ? this.o.dev : this.o.v6Dev)) continue;
      try {
        out.set(family, await this.o.kernel.listRoutes({ family }));
      } catch (err) {
        this.o.log(`failed to list routes for DirectRouting: ${errText(err)}`);
      }
    }
    return out;
  }

  // ---- leftovers of leases deleted while we were down --------------------------------------------

  /**
   * Removes, in one kernel batch, the entries on our own devices that no current peer lease accounts
   * for. Upstream never does this: its LeaseWatcher starts empty, so a lease deleted while flanneld was
   * down yields no EventRemoved and its route, neighbour and FDB entry stay forever (traffic to a
   * re-used subnet or PublicIP then goes to the wrong host). Run once, after the first lease batch (the
   * snapshot) is programmed, so that what we keep is exactly what we just wrote.
   *
   * Flannel-owned means, on flannel.<VNI> / flannel-v6.<VNI> only:
   * - a route `<net> via <net's own address> dev <ours> onlink` (the shape of every vxlan route we
   *   write; kernel prefix routes, link-local routes and an operator's `dev`-only routes do not match);
   * - a PERMANENT neighbour (we never write any other kind; learned entries are left to the kernel);
   * - a `self permanent` FDB entry with a remote `dst`, other than the all-zeros default destination.
   * Kept: every programmed peer (and every lease waiting for a retry) as neighbour IP, FDB (MAC, dst)
   * pair and route destination. Direct routes (DirectRouting) are not on our devices and are not touched.
   */
  async removeStaleEntries(): Promise<void> {
    const ops: KernelOp[] = [];
    for (const dev of [this.o.dev, this.o.v6Dev]) {
      // a device we just created holds nothing of an earlier run: no need to read it
      if (!dev || dev.created) continue;
      try {
        ops.push(...(await this.staleOps(dev)));
      } catch (err) {
        this.o.log(`failed to look for stale entries on ${dev.attrs.name}: ${errText(err)}`);
      }
    }
    if (ops.length === 0) return;
    const shown = ops.slice(0, 10).map(describeOp).join(', ');
    const what = ops.length > 10 ? `${shown} and ${ops.length - 10} more` : shown;
    try {
      await this.o.kernel.batch(orderOps(ops));
    } catch (err) {
      this.o.log(`failed to remove stale entries in one batch (${errText(err)}); removing them one by one`);
      await this.removeBestEffort(orderOps(ops));
    }
    this.o.log(`removed ${ops.length} stale entries left by leases deleted while flanneld was not running: ${what}`);
  }

  private async staleOps(dev: VxlanDevice): Promise<KernelOp[]> {
    const family = dev.attrs.family;
    const name = dev.attrs.name;
    const keepRoutes = new Set<string>();
    const keepNeighs = new Set<string>();
    const keepFdb = new Set<string>();
    const keep = (n: Neighbor): void => {
      keepRoutes.add(formatNet(n.subnet));
      keepNeighs.add(formatIP(netIP(n.subnet)));
      keepFdb.add(`${n.mac}|${formatIP(n.publicIP)}`);
    };
    for (const p of this.peers.values()) {
      const st = family === 4 ? p.v4 : p.v6;
      if (st && !st.direct) keep(st.n);
    }
    for (const r of this.retries.values()) {
      const n = this.neighbor(r.lease, family);
      if (n && typeof n !== 'string') keep(n);
    }

    const [routes, neighs, fdb] = await Promise.all([
      this.o.kernel.listRoutes({ family, dev: name }),
      this.o.kernel.listNeighs(name),
      this.o.kernel.listFdb(name),
    ]);
    const ops: KernelOp[] = [];
    for (const r of routes) {
      // `ip route show dev X` leaves `dev` out of each route: asked for ours, an absent one is ours
      if ((r.dev ?? name) !== name || !r.onlink || r.via === undefined || (r.table ?? 254) !== 254) continue;
      const dst = parseRouteDst(r.dst);
      const via = tryParseIP(r.via);
      if (!dst || !via || via.family !== family || dst.family !== family || via.value !== dst.base) continue;
      if (keepRoutes.has(formatNet(dst))) continue;
      ops.push({ op: 'deleteRoute', route: { dst: formatNet(dst), via: formatIP(via), dev: name, onlink: true } });
    }
    for (const n of neighs) {
      const ip = tryParseIP(n.ip);
      if (!n.permanent || !ip || ip.family !== family || keepNeighs.has(formatIP(ip))) continue;
      ops.push({ op: 'deleteNeigh', dev: name, ip: formatIP(ip) });
    }
    for (const f of fdb) {
      const mac = normalizeMac(f.mac);
      const dst = f.dst === undefined ? undefined : tryParseIP(f.dst);
      if (!f.self || !f.permanent || !mac || !dst || mac === ZERO_MAC) continue;
      if (keepFdb.has(`${mac}|${formatIP(dst)}`)) continue;
      ops.push({ op: 'deleteFdb', dev: name, mac, dst: formatIP(dst) });
    }
    return ops;
  }

  // ---- device watchdog -------------------------------------------------------------------------

  private async watchDevices(signal: AbortSignal): Promise<void> {
    const interval = this.o.pollInterval ?? 1000;
    if (interval <= 0) return;
    while (!signal.aborted) {
      await sleep(interval, signal);
      if (signal.aborted) break;
      await this.serial(() => this.checkDevices());
    }
  }

  /** One watchdog round: heal any device that is missing, replaced, altered or down. */
  async checkDevices(): Promise<void> {
    for (const dev of [this.o.dev, this.o.v6Dev]) {
      if (!dev) continue;
      const subnet = dev.attrs.family === 4 ? this.o.lease.subnet : this.o.lease.ipv6Subnet;
      if (!subnet) continue;
      let why: string | undefined;
      try {
        const link = await this.o.kernel.getLink(dev.attrs.name);
        if (!link) why = 'it disappeared';
        else if (link.index !== dev.ifIndex) why = `it was re-created (ifindex ${dev.ifIndex} → ${link.index})`;
        else why = vxlanIncompat(link, dev.attrs) ?? (link.mtu !== dev.attrs.mtu ? `mtu ${link.mtu} != ${dev.attrs.mtu}` : link.up ? undefined : 'it is down');
      } catch (err) {
        this.o.log(`failed to read ${dev.attrs.name}: ${errText(err)}`);
        continue;
      }
      if (!why) continue;
      this.o.log(`${dev.attrs.name} needs repair: ${why}; re-creating it and re-programming ${this.peers.size} peers`);
      try {
        await dev.ensure();
        await dev.configure(subnet, this.o.network);
        await this.replay(dev);
      } catch (err) {
        this.o.log(`failed to repair ${dev.attrs.name}: ${errText(err)}; trying again in ${this.o.pollInterval ?? 1000} ms`);
      }
    }
  }

  /** Re-programs every known peer on one device (after it was re-created). */
  private async replay(dev: VxlanDevice): Promise<void> {
    const routes = await this.routesForDirect();
    const plans: Plan[] = [];
    const family = dev.attrs.family;
    for (const [key, peer] of this.peers) {
      if (!(family === 4 ? peer.v4 : peer.v6)) continue;
      // forget the family's state so planAdd emits plain adds with nothing to remove first
      const stripped: Peer = { lease: peer.lease, ...(family === 4 ? { v6: peer.v6 } : { v4: peer.v4 }) };
      this.peers.set(key, stripped);
      const plan = this.planAdd(key, peer.lease, routes);
      if (plan) plans.push(plan);
    }
    await this.apply(plans);
  }
}

/**
 * Orders a batch so that each tool gets one contiguous run (ip, bridge, ip: three execs at most with
 * iproute2) while every peer still sees its writes in the safe order: neighbour before FDB before route
 * when adding, route before neighbour and FDB when removing. Stable within a phase.
 */
export function orderOps(ops: readonly KernelOp[]): KernelOp[] {
  const phase = (op: KernelOp): number => {
    switch (op.op) {
      case 'deleteRoute':
      case 'deleteNeigh':
      case 'replaceNeigh':
        return 0;
      case 'deleteFdb':
      case 'replaceFdb':
      case 'appendFdb':
        return 1;
      default:
        return 2;
    }
  };
  const buckets: KernelOp[][] = [[], [], []];
  for (const op of ops) buckets[phase(op)]!.push(op);
  return buckets.flat();
}

function isDirect(ip: IP, routes: Route[]): boolean {
  // the route `ip route get` would pick: direct if it has no gateway
  const best = longestPrefixMatch(routes, ip);
  return !!best && !best.via && best.dst !== 'default';
}

function describeOp(op: KernelOp): string {
  switch (op.op) {
    case 'deleteRoute':
      return `route ${op.route.dst} dev ${op.route.dev ?? ''}`;
    case 'deleteNeigh':
      return `neighbour ${op.ip} dev ${op.dev}`;
    case 'deleteFdb':
      return `fdb ${op.mac} dst ${op.dst ?? ''} dev ${op.dev}`;
    default:
      return op.op;
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
