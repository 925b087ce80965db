// The vxlan network (flannel's vxlan_network.go): turns accepted peer leases into kernel state, as a
// handler of the shared lease loop (../lease-loop.ts: serial queue, snapshot, retries, periodic work).
//
// - Every batch (the snapshot first, then changes) becomes ONE op list: per added peer neighbour → FDB →
//   route, per removed peer route → neighbour → FDB (ordered per tool by ops.ts orderOps). With iproute2
//   that is one `ip -batch` (plus one `bridge -batch`) exec for the whole batch.
// - Never half-programmed: a failed op fails the lease that owns it, whose remaining writes are skipped
//   and whose written ones are rolled back; it is logged at error level (once per error) and retried
//   with back-off, and the batch resumes after it for the other leases. A lease we cannot use (other
//   backend type, bad BackendData, no PublicIP) is logged and skipped.
// - Leftovers: after the snapshot is programmed, flannel-owned entries on our own devices that no current
//   peer accounts for are removed in one batch (`removeStale`), which upstream keeps forever.
// - Continuous repair (`reconcile`, driven by ../reconcile.ts): on kernel events (Kernel.watch,
//   debounced) and every reconcile interval (60 s), each device is read (link, addresses, routes,
//   neighbours, FDB) and diffed against what the programmed peers need: a missing or changed route,
//   neighbour or FDB entry of a live peer is written again, an entry of ours no lease accounts for is
//   removed, MTU / down / address drift is fixed in place, and a device that is gone, re-created by
//   someone else or of another kind, VNI or MAC is re-created with our MAC and every peer re-programmed.
//   Only the difference is written: the echo of our own batch costs three reads and no write.
// - Without Kernel.watch (the iproute2 adapter) the device part also runs every `pollInterval` (1 s,
//   one `ip -j link show dev` exec, ~2 ms): a deleted or broken device is found as fast as before; the
//   entries wait for the periodic round.
import type { Fdb, Kernel, KernelEvent, KernelOp, Neigh, Route } from '../../../shared/kernel/kernel.js';
import { isNotFound } from '../../../shared/kernel/errors.js';
import { normalizeMac } from '../../../shared/net/mac.js';
import { parseRouteDst } from '../../../shared/net/route.js';
import { netIP, tryParseIP } from '../../../shared/net/ip.js';
import { DEFAULT_RECONCILE_INTERVAL, RepairLog, type Repair, type ReconcileSpec, type ReconcileTrigger } from '../reconcile.js';
import { errorMessage, V, type Logger } from '../../../shared/log.js';
import { formatIP, formatNet, type IP, type IPNet } from '../../../shared/net/ip.js';
import { longestPrefixMatch } from '../../../shared/net/route.js';
import type { SubnetManager } from '../../subnet/manager.js';
import type { Network } from '../backend.js';
import type { Lease, LeaseEvent } from '../../lease.js';
import { LeaseLoop, type LeaseHandler } from '../lease-loop.js';
import { applyResumable, removeBestEffort } from '../op-applier.js';
import { guardFor } from '../peer-guard.js';
import { vxlanIncompat, type Neighbor, type VxlanDevice } from './device.js';
import { describeOp, leaseNeighbor, neighborKeys, orderOps, staleOps, vtepMacClaims } from './ops.js';

export { orderOps };

export interface VxlanNetworkOptions {
  subnetManager: Pick<SubnetManager, 'watchLeases'>;
  kernel: Kernel;
  logger: Logger;
  lease: Lease;
  dev?: VxlanDevice;
  v6Dev?: VxlanDevice;
  directRouting: boolean;
  /** the flannel Network, for re-configuring a re-created device (VxlanDevice.configure); peers outside it are refused */
  network?: IPNet;
  /** the flannel IPv6Network; IPv6 peers outside it are refused */
  ipv6Network?: IPNet;
  mtu: number;
  /** device watchdog period (ms) when the kernel cannot watch; 0 disables it */
  pollInterval?: number;
  /** periodic full reconcile (ms), default 60 s; 0 disables it (events still repair) */
  reconcileInterval?: number;
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

export class VxlanNetwork implements Network, LeaseHandler {
  private readonly peers = new Map<string, Peer>();
  private readonly loop: LeaseLoop;
  /** Settles once the first lease snapshot is programmed and stale entries are removed (also on failure). */
  readonly firstSync: Promise<void>;
  /** lease key → the last error programming it, so a lease the kernel keeps refusing is logged once */
  private readonly failing = new Map<string, string>();
  // the 1 s device poll is only needed where no kernel events come (iproute2)
  readonly periodic = [{ everyMs: () => (this.o.kernel.watch ? 0 : (this.o.pollInterval ?? 1000)), run: () => this.checkDevices() }];
  readonly reconcile: ReconcileSpec;
  private readonly repairs: RepairLog;

  constructor(private readonly o: VxlanNetworkOptions) {
    const enableIPv4 = !!o.dev;
    const enableIPv6 = !!o.v6Dev;
    const guard = guardFor({ ...o, enableIPv4, enableIPv6 }, (l) => vtepMacClaims(l, { v4: enableIPv4, v6: enableIPv6 }));
    this.loop = new LeaseLoop({
      name: 'vxlan',
      subnetManager: o.subnetManager,
      logger: o.logger,
      guard,
      retryDelay: () => this.o.retryDelay ?? 1000,
    });
    this.firstSync = this.loop.firstSync;
    this.repairs = new RepairLog(o.logger);
    const ours = new Set([o.dev?.attrs.name, o.v6Dev?.attrs.name].filter((n) => n !== undefined));
    this.reconcile = {
      ...(o.kernel.watch ? { watch: (f: (ev: KernelEvent) => void) => o.kernel.watch!(f) } : {}),
      // an event without a device (a route without an output device) could be anything: look
      relevant: (ev) => ev.kind === 'resync' || ev.dev === undefined || ours.has(ev.dev),
      run: (trigger) => this.reconcileNow(trigger),
      everyMs: () => this.o.reconcileInterval ?? DEFAULT_RECONCILE_INTERVAL,
    };
  }

  private log(msg: string): void {
    this.o.logger.info(msg);
  }

  lease(): Lease {
    return this.o.lease;
  }

  mtu(): number {
    return this.o.mtu;
  }

  /** Timing knobs, read at each use (tests shorten them): watchdog, reconcile and first retry delay in ms. */
  get timing(): { pollInterval?: number; reconcileInterval?: number; retryDelay?: number } {
    return this.o;
  }

  /** Known peers (subnet key → lease), for tests and diagnostics. */
  knownPeers(): Map<string, Lease> {
    return new Map([...this.peers].map(([k, p]) => [k, p.lease]));
  }

  /** Leases waiting for a retry (key → current back-off delay), for tests and diagnostics. */
  pendingRetries(): Map<string, number> {
    return new Map([...this.loop.pendingRetries()].map(([k, r]) => [k, r.delay]));
  }

  /** Settles when every batch, retry and device check queued so far has run. */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  run(signal: AbortSignal): Promise<void> {
    return this.loop.run(signal, this);
  }

  /** Applies one batch of accepted peer events (LeaseHandler); never throws for a bad lease. */
  async handleBatch(last: Map<string, LeaseEvent>): Promise<void> {
    if (last.size === 0) return;
    const t0 = performance.now();
    const routes = await this.routesForDirect();
    const plans: Plan[] = [];
    for (const [key, ev] of last) {
      const plan = ev.type === 'added' ? this.planAdd(key, ev.lease, routes) : this.planRemove(key, ev.lease);
      if (plan) plans.push(plan);
    }
    await this.apply(plans);
    if (last.size > 1) {
      this.log(`applied a batch of ${last.size} lease events in ${(performance.now() - t0).toFixed(0)} ms (${this.peers.size} peers)`);
    }
  }

  /**
   * Writes the plans in one batch. A failed op fails the plan that owns it (an add is rolled back and
   * retried later, a removal goes on best effort); the batch resumes after it, so one bad peer costs
   * one more exec and never holds up the others.
   */
  private async apply(plans: Plan[]): Promise<void> {
    if (plans.length === 0) return;
    const owner = new Map<KernelOp, Plan>();
    for (const p of plans) for (const op of p.ops) owner.set(op, p);
    let said = false;
    const failed = await applyResumable(this.o.kernel, orderOps(plans.flatMap((p) => p.ops)), (op, err) => {
      if (!said && plans.length > 1) this.o.logger.warn(`batch of ${plans.length} lease changes failed (${errorMessage(err)}); applying them one by one`);
      said = true;
      // the rest of a failed add is not written (it is rolled back); a removal goes on
      const p = owner.get(op);
      return p?.kind === 'add' ? p.ops : [];
    });
    for (const p of plans) {
      const err = p.kind === 'add' ? p.ops.map((op) => failed.get(op)).find((e) => e !== undefined) : undefined;
      if (err === undefined) p.commit();
      else await this.failAdd(p, err);
    }
  }

  private async failAdd(p: Plan, err: unknown): Promise<void> {
    // once per lease and error: a peer the kernel keeps refusing must not flood the log on every retry
    if (this.failing.get(p.key) !== errorMessage(err)) {
      this.o.logger.error(`failed to program lease ${p.key}: ${errorMessage(err)}; rolling it back and retrying later (with back-off, logged again only if the error changes)`);
      this.failing.set(p.key, errorMessage(err));
    }
    if (p.undo) await removeBestEffort(this.o.kernel, p.undo);
    // What we had before is gone too (undo removed the entries): forget it so a later add starts clean.
    this.peers.delete(p.key);
    if (p.lease) this.loop.scheduleRetry(p.key, p.lease);
  }

  /** Leases whose retry is due (LeaseHandler): programmed again; success or nothing to do ends the retry. */
  async retry(due: Map<string, Lease>): Promise<void> {
    const routes = await this.routesForDirect();
    const plans: Plan[] = [];
    for (const [key, lease] of due) {
      const plan = this.planAdd(key, lease, routes);
      if (!plan) {
        this.loop.cancelRetry(key);
        continue;
      }
      const c = plan.commit;
      plan.commit = () => {
        c();
        this.loop.cancelRetry(key);
      };
      plans.push(plan);
    }
    await this.apply(plans);
  }

  private planAdd(key: string, lease: Lease, routes: Map<4 | 6, Route[]>): Plan | undefined {
    if (lease.attrs.backendType !== 'vxlan') {
      this.o.logger.warn(`ignoring non-vxlan v4Subnet(${lease.subnet ? formatNet(lease.subnet) : ''}) v6Subnet(${lease.ipv6Subnet ? formatNet(lease.ipv6Subnet) : ''}): type=${lease.attrs.backendType ?? ''}`);
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
      const n = leaseNeighbor(lease, family);
      const prev = family === 4 ? old?.v4 : old?.v6;
      if (n === undefined) {
        if (prev) ops.push(...this.removeOps(dev, prev));
        continue;
      }
      if (typeof n === 'string') {
        this.o.logger.warn(`skipping lease ${key}: ${n}`);
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
        this.log(`adding direct route to subnet: ${formatNet(n.subnet)} PublicIP: ${formatIP(n.publicIP)}`);
        ops.push(...dev.addDirectOps(n));
      } else {
        V(this.o.logger, 2).info(`adding ${family === 6 ? 'v6 ' : ''}subnet: ${formatNet(n.subnet)} PublicIP${family === 6 ? 'v6' : ''}: ${formatIP(n.publicIP)} VtepMAC: ${n.mac}`);
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
          this.log(`programmed lease ${key}, which had failed: ${had}`);
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
        const n = leaseNeighbor(lease, family);
        if (n && typeof n !== 'string') state = { n, direct: false };
      }
      if (state) {
        if (!state.direct) V(this.o.logger, 2).info(`removing ${family === 6 ? 'v6' : ''}subnet: ${formatNet(state.n.subnet)} PublicIP${family === 6 ? 'v6' : ''}: ${formatIP(state.n.publicIP)} VtepMAC: ${state.n.mac}`);
        ops.push(...this.removeOps(dev, state));
      }
    }
    if (!known) this.log(`removed subnet ${key} was not known; removing its entries anyway`);
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
        this.o.logger.warn(`failed to list routes for DirectRouting: ${errorMessage(err)}`);
      }
    }
    return out;
  }

  // ---- leftovers of leases deleted while we were down --------------------------------------------

  /**
   * Removes, in one kernel batch, the entries on our own devices that no current peer lease accounts
   * for (LeaseHandler; see ops.ts staleOps for what counts as ours). Upstream never does this: its
   * LeaseWatcher starts empty, so a lease deleted while flanneld was down yields no EventRemoved and its
   * route, neighbour and FDB entry stay forever (traffic to a re-used subnet or PublicIP then goes to
   * the wrong host). Run once, after the snapshot is programmed, so that what we keep is exactly what
   * we just wrote: every programmed peer and every lease waiting for a retry. Direct routes
   * (DirectRouting) are not on our devices and are not touched.
   */
  async removeStale(): Promise<void> {
    const ops: KernelOp[] = [];
    for (const dev of [this.o.dev, this.o.v6Dev]) {
      // a device we just created holds nothing of an earlier run: no need to read it
      if (!dev || dev.created) continue;
      const { name, family } = dev.attrs;
      try {
        const [routes, neighs, fdb] = await Promise.all([
          this.o.kernel.listRoutes({ family, dev: name }),
          this.o.kernel.listNeighs(name),
          this.o.kernel.listFdb(name),
        ]);
        ops.push(...staleOps(dev.attrs, this.kept(family), { routes, neighs, fdb }));
      } catch (err) {
        this.o.logger.warn(`failed to look for stale entries on ${name}: ${errorMessage(err)}`);
      }
    }
    if (ops.length === 0) return;
    const shown = ops.slice(0, 10).map(describeOp).join(', ');
    const what = ops.length > 10 ? `${shown} and ${ops.length - 10} more` : shown;
    let said = false;
    await removeBestEffort(this.o.kernel, orderOps(ops), (_op, err) => {
      if (!said) this.o.logger.warn(`failed to remove stale entries in one batch (${errorMessage(err)}); removing them one by one`);
      said = true;
    });
    this.log(`removed ${ops.length} stale entries left by leases deleted while flanneld was not running: ${what}`);
  }

  /** The peers of one family whose entries on our device stay: programmed ones and pending retries. */
  private *kept(family: 4 | 6): Iterable<Neighbor> {
    for (const p of this.peers.values()) {
      const st = family === 4 ? p.v4 : p.v6;
      if (st && !st.direct) yield st.n;
    }
    for (const r of this.loop.pendingRetries().values()) {
      const n = leaseNeighbor(r.lease, family);
      if (n && typeof n !== 'string') yield n;
    }
  }

  // ---- continuous repair (see the top of this file and ../reconcile.ts) ---------------------------

  /** One device round (the 1 s watchdog without kernel events): heal a device, and its entries if it was. */
  async checkDevices(): Promise<void> {
    for (const dev of [this.o.dev, this.o.v6Dev]) {
      if (dev) await this.reconcileDevice(dev, new Set(), false);
    }
  }

  /** One full reconcile round now, serialized with the batches (tests; the loop runs it on its own). */
  reconcileAll(trigger: ReconcileTrigger = 'periodic'): Promise<void> {
    return this.loop.serial(() => this.reconcileNow(trigger));
  }

  private async reconcileNow(trigger: ReconcileTrigger): Promise<void> {
    const broken = new Set<string>();
    for (const dev of [this.o.dev, this.o.v6Dev]) {
      if (dev) await this.reconcileDevice(dev, broken, true);
    }
    if (trigger === 'periodic') this.repairs.settle(broken);
  }

  /**
   * The device, then (when `entries`, or when the device needed repair) its routes, neighbours and FDB.
   * A device that had to be re-created was re-programmed whole: its entries need no diff.
   */
  private async reconcileDevice(dev: VxlanDevice, broken: Set<string>, entries: boolean): Promise<void> {
    const subnet = dev.attrs.family === 4 ? this.o.lease.subnet : this.o.lease.ipv6Subnet;
    if (!subnet) return;
    const name = dev.attrs.name;
    const key = `device|${name}`;
    let why: string | undefined;
    let drift: { ops: KernelOp[]; was: string[] } = { ops: [], was: [] };
    try {
      const link = await this.o.kernel.getLink(name);
      if (!link) why = 'it disappeared';
      else if (link.index !== dev.ifIndex) why = `it was re-created (ifindex ${dev.ifIndex} → ${link.index})`;
      else why = vxlanIncompat(link, dev.attrs);
      if (link && !why) drift = dev.driftOps(link, await this.o.kernel.listAddrs({ dev: name, family: dev.attrs.family }), subnet, this.o.network);
    } catch (err) {
      this.o.logger.warn(`failed to read ${name}: ${errorMessage(err)}`);
      return;
    }
    if (why) {
      broken.add(key);
      this.o.logger.warn(`${name} needs repair: ${why}; re-creating it and re-programming ${this.peers.size} peers`);
      const repair: Repair = { kind: 'device', action: 'restored', key, line: `Repaired device ${name} (was: ${why}): re-created with MAC ${dev.attrs.mac}` };
      try {
        await dev.ensure();
        await dev.configure(subnet, this.o.network);
        await this.replay(dev);
        this.repairs.repaired(repair);
      } catch (err) {
        this.o.logger.error(`failed to repair ${name}: ${errorMessage(err)}; trying again at the next check`);
      }
      return;
    }
    if (drift.ops.length > 0) {
      broken.add(key);
      const repair: Repair = { kind: 'device', action: 'restored', key, line: `Repaired device ${name} (was ${drift.was.join(', ')})` };
      try {
        await this.o.kernel.batch(drift.ops);
        this.repairs.repaired(repair);
      } catch (err) {
        this.repairs.failed(repair, errorMessage(err));
      }
      // a device set down lost its routes with it
      entries = true;
    }
    if (entries) await this.reconcileEntries(dev, broken);
  }

  /**
   * Diffs the routes, neighbours and FDB entries on one device against the programmed peers: stale
   * ones go first (an FDB entry of a live MAC to a wrong dst among them), then what is missing or
   * changed is written again. Peers waiting for a retry are neither restored (their retry does it) nor
   * removed.
   */
  private async reconcileEntries(dev: VxlanDevice, broken: Set<string>): Promise<void> {
    const { name, family } = dev.attrs;
    let have: { routes: Route[]; neighs: Neigh[]; fdb: Fdb[] };
    try {
      const [routes, neighs, fdb] = await Promise.all([
        this.o.kernel.listRoutes({ family, dev: name }),
        this.o.kernel.listNeighs(name),
        this.o.kernel.listFdb(name),
      ]);
      have = { routes, neighs, fdb };
    } catch (err) {
      if (!isNotFound(err)) this.o.logger.warn(`failed to read the entries of ${name}: ${errorMessage(err)}`);
      return;
    }
    const removals = new Map<KernelOp, Repair>();
    for (const op of staleOps(dev.attrs, this.kept(family), have)) removals.set(op, staleRepair(op));
    const restores = new Map<KernelOp, Repair>();
    const indexed = new Indexed(name, family, have);
    for (const p of this.peers.values()) {
      const st = family === 4 ? p.v4 : p.v6;
      if (st && !st.direct) for (const [op, r] of peerDiff(dev, st.n, indexed)) restores.set(op, r);
    }
    for (const r of [...removals.values(), ...restores.values()]) broken.add(r.key);
    if (removals.size > 0) {
      const failed = await removeBestEffort(this.o.kernel, orderOps([...removals.keys()]));
      for (const [op, r] of removals) {
        const err = failed.get(op);
        if (err === undefined || isNotFound(err)) this.repairs.repaired(r);
        else this.repairs.failed(r, errorMessage(err));
      }
    }
    if (restores.size > 0) {
      const failed = await applyResumable(this.o.kernel, orderOps([...restores.keys()]));
      for (const [op, r] of restores) {
        const err = failed.get(op);
        if (err === undefined) this.repairs.repaired(r);
        else this.repairs.failed(r, errorMessage(err));
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

function isDirect(ip: IP, routes: Route[]): boolean {
  // the route `ip route get` would pick: direct if it has no gateway
  const best = longestPrefixMatch(routes, ip);
  return !!best && !best.via && best.dst !== 'default';
}

/**
 * One device's entries indexed by what a peer looks up (destination, neighbour IP, MAC). IPv4 text as
 * the kernel lists it is the one spelling (dotted quads, `a.b.c.d/len`): used as is, so a reconcile at
 * 5000 peers parses nothing. IPv6 text may be spelled several ways: normalized.
 */
class Indexed {
  private readonly routes_ = new Map<string, Route[]>();
  private readonly neighs_ = new Map<string, Neigh>();
  private readonly fdb_ = new Map<string, Fdb[]>();

  constructor(name: string, family: 4 | 6, have: { routes: readonly Route[]; neighs: readonly Neigh[]; fdb: readonly Fdb[] }) {
    const net = (s: string) => {
      if (family === 4) return s;
      const d = parseRouteDst(s, family);
      return d ? formatNet(d) : undefined;
    };
    const ip = (s: string) => {
      if (family === 4) return s;
      const a = tryParseIP(s);
      return a ? formatIP(a) : undefined;
    };
    for (const r of have.routes) {
      // routes listed `dev`-filtered may leave `dev` out: asked for ours, an absent one is ours
      if ((r.dev ?? name) !== name || (r.table ?? 254) !== 254) continue;
      const k = net(r.dst);
      if (k !== undefined) this.routes_.set(k, [...(this.routes_.get(k) ?? []), r]);
    }
    for (const n of have.neighs) {
      const k = n.dev === name ? ip(n.ip) : undefined;
      if (k !== undefined) this.neighs_.set(k, n);
    }
    for (const f of have.fdb) {
      if (f.dev !== name || !f.self) continue;
      const k = f.mac.toLowerCase();
      this.fdb_.set(k, [...(this.fdb_.get(k) ?? []), f]);
    }
  }

  routes(dst: string): Route[] {
    return this.routes_.get(dst) ?? [];
  }

  neigh(ip: string): Neigh | undefined {
    return this.neighs_.get(ip);
  }

  fdb(mac: string): Fdb[] {
    return this.fdb_.get(mac) ?? [];
  }
}

/** The writes (with their log lines) that bring one peer's route, neighbour and FDB entry back. */
function peerDiff(dev: VxlanDevice, n: Neighbor, have: Indexed): Array<[KernelOp, Repair]> {
  const name = dev.attrs.name;
  const out: Array<[KernelOp, Repair]> = [];
  const { dst, gw, pub } = neighborKeys(n);
  const same = (a: string | undefined, b: string) => a !== undefined && sameIP(a, b);
  const ops = () => dev.addPeerOps(n); // [neighbour, fdb, route], built only for a repair

  const routes = have.routes(dst);
  if (!routes.some((r) => r.onlink && r.type === undefined && same(r.via, gw))) {
    const r = routes[0];
    const was = r === undefined ? 'missing' : `${r.type ?? ''} via ${r.via ?? '-'}${r.onlink ? ' onlink' : ''}`.trim();
    out.push([ops()[2]!, { kind: 'route', action: 'restored', key: `route|${name}|${dst}`, line: `Repaired route ${dst} via ${gw} dev ${name} (was ${was})` }]);
  }

  const neigh = have.neigh(gw);
  if (!neigh || !neigh.permanent || (neigh.mac !== n.mac && normalizeMac(neigh.mac) !== n.mac)) {
    const was = !neigh ? 'missing' : normalizeMac(neigh.mac) !== n.mac ? `lladdr ${neigh.mac}` : 'not permanent';
    out.push([ops()[0]!, { kind: 'neigh', action: 'restored', key: `neigh|${name}|${gw}`, line: `Repaired neighbour ${gw} lladdr ${n.mac} dev ${name} (was ${was})` }]);
  }

  const fdb = have.fdb(n.mac);
  if (!fdb.some((f) => same(f.dst, pub))) {
    const was = fdb.length === 0 ? 'missing' : `dst ${fdb.map((f) => f.dst ?? '-').join(',')}`;
    out.push([ops()[1]!, { kind: 'fdb', action: 'restored', key: `fdb|${name}|${n.mac}`, line: `Repaired fdb ${n.mac} dst ${pub} dev ${name} (was ${was})` }]);
  }
  return out;
}

/** How a stale entry's removal is logged (staleOps only yields these three deletes). */
function staleRepair(op: KernelOp): Repair {
  switch (op.op) {
    case 'deleteRoute':
      return { kind: 'route', action: 'removed', key: `route|${op.route.dev ?? ''}|${op.route.dst}`, line: `Removed stale route ${op.route.dst} via ${op.route.via ?? ''} dev ${op.route.dev ?? ''} (no lease has it)` };
    case 'deleteNeigh':
      return { kind: 'neigh', action: 'removed', key: `neigh|${op.dev}|${op.ip}`, line: `Removed stale neighbour ${op.ip} dev ${op.dev} (no lease has it)` };
    case 'deleteFdb':
      return { kind: 'fdb', action: 'removed', key: `fdb|${op.dev}|${op.mac}|${op.dst ?? ''}`, line: `Removed stale fdb ${op.mac} dst ${op.dst ?? ''} dev ${op.dev} (no lease has it)` };
    default:
      return { kind: 'route', action: 'removed', key: describeOp(op), line: `Removed stale ${describeOp(op)}` };
  }
}

function sameIP(a: string, b: string): boolean {
  if (a === b) return true;
  const x = tryParseIP(a);
  const y = tryParseIP(b);
  return !!x && !!y && x.family === y.family && x.value === y.value;
}

