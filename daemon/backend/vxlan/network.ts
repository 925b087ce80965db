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
// - Device watchdog: we poll `getLink` (one `ip -j link show dev` exec, ~2 ms) every second rather than
//   keep an `ip monitor link` child. Polling cannot miss an event (a monitor can lose lines when its pipe
//   or process dies, and needs its own restart logic), sees every kind of damage in one read (deleted,
//   re-created by someone else with a new ifindex or MAC, set down, wrong MTU), and its worst-case
//   detection delay of one interval is small next to upstream's 1–30 s re-create back-off. On damage the
//   device is re-created with the same MAC and every known peer is re-programmed in one batch.
import type { Kernel, KernelOp, Route } from '../../../shared/kernel/kernel.js';
import { errorMessage, type Logger } from '../../../shared/log.js';
import { formatIP, formatNet, type IP, type IPNet } from '../../../shared/net/ip.js';
import { longestPrefixMatch } from '../../../shared/net/route.js';
import type { SubnetManager } from '../../subnet/manager.js';
import type { Network } from '../backend.js';
import type { Lease, LeaseEvent } from '../../lease.js';
import { LeaseLoop, type LeaseHandler } from '../lease-loop.js';
import { applyResumable, removeBestEffort } from '../op-applier.js';
import { PeerGuard } from '../peer-guard.js';
import { vxlanIncompat, type Neighbor, type VxlanDevice } from './device.js';
import { describeOp, leaseNeighbor, orderOps, staleOps, vtepMacClaims } from './ops.js';

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

export class VxlanNetwork implements Network, LeaseHandler {
  private readonly peers = new Map<string, Peer>();
  private readonly loop: LeaseLoop;
  /** Settles once the first lease snapshot is programmed and stale entries are removed (also on failure). */
  readonly firstSync: Promise<void>;
  /** lease key → the last error programming it, so a lease the kernel keeps refusing is logged once */
  private readonly failing = new Map<string, string>();
  readonly periodic = [{ everyMs: () => this.o.pollInterval ?? 1000, run: () => this.checkDevices() }];

  constructor(private readonly o: VxlanNetworkOptions) {
    const enableIPv4 = !!o.dev;
    const enableIPv6 = !!o.v6Dev;
    const guard = new PeerGuard({
      own: o.lease,
      enableIPv4,
      enableIPv6,
      ...(o.network ? { network: o.network } : {}),
      ...(o.ipv6Network ? { ipv6Network: o.ipv6Network } : {}),
      ownAddrs: [o.lease.attrs.publicIP, o.lease.attrs.publicIPv6, ...(o.ownAddrs ?? [])],
      ...(o.underlay ? { underlay: o.underlay } : {}),
      claims: (l) => vtepMacClaims(l, { v4: enableIPv4, v6: enableIPv6 }),
      log: (m) => o.logger.warn(m),
    });
    this.loop = new LeaseLoop({
      name: 'vxlan',
      subnetManager: o.subnetManager,
      logger: o.logger,
      guard,
      retryDelay: () => this.o.retryDelay ?? 1000,
    });
    this.firstSync = this.loop.firstSync;
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

  /** Timing knobs, read at each use (tests shorten them): watchdog period and first retry delay in ms. */
  get timing(): { pollInterval?: number; retryDelay?: number } {
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
      if (state) ops.push(...this.removeOps(dev, state));
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

  // ---- device watchdog: we poll getLink every pollInterval (see the top of this file) -------------

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
        this.o.logger.warn(`failed to read ${dev.attrs.name}: ${errorMessage(err)}`);
        continue;
      }
      if (!why) continue;
      this.o.logger.warn(`${dev.attrs.name} needs repair: ${why}; re-creating it and re-programming ${this.peers.size} peers`);
      try {
        await dev.ensure();
        await dev.configure(subnet, this.o.network);
        await this.replay(dev);
      } catch (err) {
        this.o.logger.error(`failed to repair ${dev.attrs.name}: ${errorMessage(err)}; trying again in ${this.o.pollInterval ?? 1000} ms`);
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
