// A route-based backend's lease handler (flannel's RouteNetwork, pkg/backend/route_network.go): one
// route per peer and family, `<peer subnet> via <gateway> dev <ext iface>`; the backend says which
// route a lease needs (`routeFor`). host-gw is the one today.
//
// - Desired state first, as Go's route cache: every peer lease we accept becomes a wanted route (keyed
//   by destination) BEFORE the kernel is asked, so a route that fails to program is not lost: the
//   route check retries it, and also re-adds any wanted route deleted behind our back (`Route
//   recovered`), corrects one changed behind our back and, once the first snapshot is programmed,
//   removes a route of ours no lease has. The route check is the backend's reconcile (reconcile.ts):
//   run on kernel events where the adapter can watch, and periodically (60 s; without events at least
//   at Go's routeCheck cadence, 10 s).
// - Every lease batch becomes ONE op list (deletes first, then replaces) written by the resumable
//   applier: 5000 peers converge in one `ip -batch` exec, and one bad route costs one more exec.
// - Never dies on a lease: leases of other backend types are ignored with a log (a known peer that
//   switched type has its route removed), a lease without a gateway for a family is skipped for that
//   family, and a route the kernel refuses is logged at error level (once per distinct error) and
//   retried by the check.
// - Leftovers: after the snapshot is programmed, routes of ours that no current lease accounts for are
//   removed once (`removeStale`; upstream keeps them forever). See there for how "ours" is told apart
//   from an operator's route of the same shape.
import type { Kernel, KernelEvent, KernelOp, Route, RouteSpec } from '../../shared/kernel/kernel.js';
import { isNotFound } from '../../shared/kernel/errors.js';
import { errorMessage, type Logger } from '../../shared/log.js';
import { formatIP, formatNet, netContains, netEqual, netIP, tryParseIP, type Family, type IPNet } from '../../shared/net/ip.js';
import { longestPrefixMatch, parseRouteDst } from '../../shared/net/route.js';
import type { Lease, LeaseEvent } from '../lease.js';
import type { LeaseHandler } from './lease-loop.js';
import { applyResumable } from './op-applier.js';
import { DEFAULT_RECONCILE_INTERVAL, RepairLog, type Repair, type ReconcileSpec, type ReconcileTrigger } from './reconcile.js';

/** Go's routeCheckRetries * time.Second. */
export const ROUTE_CHECK_INTERVAL = 10_000;
/** Batches larger than this are logged as a count, not lease by lease. */
const LOG_EACH_UP_TO = 10;

export type PeerRoute = Required<Pick<RouteSpec, 'dst' | 'via' | 'dev'>>;

export interface RouteNetworkOptions {
  kernel: Kernel;
  logger: Logger;
  /** our lease: its subnets are never swept */
  own: Lease;
  /** `host-gw`: leases of another type are ignored */
  backendType: string;
  /** the external interface: every peer route goes out through it */
  extIface: string;
  enableIPv4: boolean;
  enableIPv6: boolean;
  /** the flannel `Network`: where the stale-route sweep looks for IPv4 leftovers (absent: no v4 sweep) */
  network?: IPNet;
  /** the flannel `IPv6Network`, likewise for IPv6 (absent: no v6 sweep) */
  ipv6Network?: IPNet;
  /** route check period (ms) where the kernel cannot watch (Go's 10 s), read at each use */
  checkEvery: () => number;
  /** full reconcile period (ms) with kernel events, read at each use; default 60 s */
  reconcileEvery?: () => number;
  /** The route one family of a lease needs; a string says why the lease cannot be used for it. */
  routeFor(lease: Lease, family: Family): PeerRoute | string | undefined;
  /** Why a route the kernel refused cannot work, given whether its gateway is on a directly attached network. */
  refusalHint?(route: PeerRoute, directlyAttached: boolean | undefined): string;
}

/** One wanted route (Go's cached netlink.Route). */
interface Want {
  family: Family;
  route: PeerRoute;
  /** the lease key that wants it */
  owner: string;
  /** the kernel accepted it last time we wrote it */
  ok: boolean;
  /** the last error, to log each distinct failure once */
  error?: string;
}

/** The writes of one batch, with what to record once the kernel answered. */
class Plan {
  readonly deletes: KernelOp[] = [];
  readonly replaces: KernelOp[] = [];
  readonly wants = new Map<KernelOp, Want>();

  replace(w: Want): void {
    const op: KernelOp = { op: 'replaceRoute', route: { ...w.route } };
    this.replaces.push(op);
    this.wants.set(op, w);
  }

  delete(route: RouteSpec): void {
    this.deletes.push({ op: 'deleteRoute', route: { ...route } });
  }

  get ops(): KernelOp[] {
    return [...this.deletes, ...this.replaces];
  }
}

function describeLease(lease: Lease): string {
  return lease.ipv6Subnet ? `v4Subnet(${formatNet(lease.subnet)}) v6Subnet(${formatNet(lease.ipv6Subnet)})` : formatNet(lease.subnet);
}

export class RouteNetwork implements LeaseHandler {
  /** lease key → the lease and the destinations of the routes it wants (one per family) */
  private readonly peers = new Map<string, { lease: Lease; dsts: string[] }>();
  private readonly routes = new Map<string, Want>();
  /** destinations of every current lease (the first snapshot, then events), whatever its type (kept by the sweeps) */
  private readonly snapshotDsts = new Set<string>();
  readonly reconcile: ReconcileSpec;
  private readonly repairs: RepairLog;
  /** the first snapshot is programmed: from now on a route of ours no lease has is removed */
  private synced = false;

  constructor(private readonly o: RouteNetworkOptions) {
    this.repairs = new RepairLog(o.logger);
    const kernel = o.kernel;
    this.reconcile = {
      ...(kernel.watch ? { watch: (f: (ev: KernelEvent) => void) => kernel.watch!(f) } : {}),
      // our routes, and the external interface's addresses and link state (losing them flushes routes)
      relevant: (ev) => ev.kind === 'resync' || ev.dev === undefined || ev.dev === o.extIface,
      run: (trigger) => this.checkRoutes(trigger),
      everyMs: () => this.checkPeriod(),
    };
  }

  private get log(): (m: string) => void {
    return (m) => this.o.logger.info(m);
  }

  /** Known peers (lease key → lease), for tests and diagnostics. */
  knownPeers(): Map<string, Lease> {
    return new Map([...this.peers].map(([k, p]) => [k, p.lease]));
  }

  /** Wanted routes (destination → route and whether the kernel took it), for tests and diagnostics. */
  wantedRoutes(): Map<string, { route: RouteSpec; ok: boolean; error?: string }> {
    return new Map(
      [...this.routes].map(([dst, w]) => [dst, { route: { ...w.route }, ok: w.ok, ...(w.error !== undefined ? { error: w.error } : {}) }]),
    );
  }

  async handleBatch(last: Map<string, LeaseEvent>, ctx: { snapshot?: readonly LeaseEvent[] }): Promise<void> {
    for (const ev of ctx.snapshot ?? []) if (ev.type === 'added') this.rememberSnapshot(ev.lease);
    // later leases of any type, likewise: their destinations are no leftovers for the runtime sweep
    if (!ctx.snapshot) for (const ev of last.values()) this.rememberSnapshot(ev.lease, ev.type === 'removed');
    if (last.size === 0) return;
    const t0 = performance.now();
    const quiet = last.size > LOG_EACH_UP_TO;
    const plan = new Plan();
    let added = 0;
    let removed = 0;
    for (const [key, ev] of last) {
      if (ev.type === 'added') {
        if (this.planAdd(key, ev.lease, plan, quiet)) added++;
      } else if (this.planRemove(key, ev.lease, plan, quiet)) removed++;
    }
    await this.apply(plan);
    if (quiet) {
      this.log(
        `applied a batch of ${last.size} lease events (${added} ${this.o.backendType} added, ${removed} removed) in ${(performance.now() - t0).toFixed(0)} ms (${this.peers.size} peers)`,
      );
    }
  }

  private rememberSnapshot(lease: Lease, forget = false): void {
    const dsts = [lease.enableIPv4 ? formatNet(lease.subnet) : undefined, lease.ipv6Subnet ? formatNet(lease.ipv6Subnet) : undefined];
    for (const d of dsts) if (d !== undefined) (forget ? this.snapshotDsts.delete(d) : this.snapshotDsts.add(d));
  }

  private ignore(lease: Lease): void {
    this.log(`Ignoring non-${this.o.backendType} subnet ${describeLease(lease)}: type=${lease.attrs.backendType ?? ''}`);
  }

  /** Plans the routes of an added lease; true if it is a peer of our type. */
  private planAdd(key: string, lease: Lease, plan: Plan, quiet: boolean): boolean {
    if (lease.attrs.backendType !== this.o.backendType) {
      this.ignore(lease);
      // a peer that switched backends: take down what we had routed for it (Go keeps re-adding it)
      const known = this.peers.get(key);
      if (known) this.planRemove(key, known.lease, plan, quiet);
      return false;
    }
    const prev = this.peers.get(key);
    const dsts: string[] = [];
    for (const family of [4, 6] as const) {
      const r = this.o.routeFor(lease, family);
      if (r === undefined) continue;
      if (typeof r === 'string') {
        this.log(`skipping IPv${family} of lease ${key}: ${r}`);
        continue;
      }
      if (!quiet) this.log(`Subnet added: ${r.dst} via ${r.via}`);
      dsts.push(r.dst);
      this.want(key, family, r, plan);
    }
    for (const d of prev?.dsts ?? []) if (!dsts.includes(d)) this.unwant(key, d, plan);
    this.peers.set(key, { lease, dsts });
    return true;
  }

  /** Plans the removal of a lease's routes; true if there was something of ours to remove. */
  private planRemove(key: string, lease: Lease, plan: Plan, quiet: boolean): boolean {
    const known = this.peers.get(key);
    if (known) {
      this.peers.delete(key);
      for (const d of known.dsts) {
        if (!quiet) this.log(`Subnet removed: ${d}`);
        this.unwant(key, d, plan);
      }
      return true;
    }
    if (lease.attrs.backendType !== this.o.backendType) {
      this.ignore(lease);
      return false;
    }
    // Never seen by this run: remove what that lease would have had, unless another lease wants the
    // destination. The delete names the gateway, so it cannot take down someone else's route.
    let any = false;
    for (const family of [4, 6] as const) {
      const r = this.o.routeFor(lease, family);
      if (r === undefined || typeof r === 'string' || this.routes.has(r.dst)) continue;
      if (!quiet) this.log(`Subnet removed: ${r.dst} (not known; removing its route anyway)`);
      plan.delete(r);
      any = true;
    }
    return any;
  }

  private want(owner: string, family: Family, route: PeerRoute, plan: Plan): void {
    const cur = this.routes.get(route.dst);
    const same = cur !== undefined && cur.route.via === route.via && cur.route.dev === route.dev;
    const w: Want = { family, route, owner, ok: same ? cur.ok : false };
    if (same && cur.error !== undefined) w.error = cur.error;
    this.routes.set(route.dst, w);
    // always written: replace is idempotent and heals a route changed behind our back
    plan.replace(w);
  }

  private unwant(owner: string, dst: string, plan: Plan): void {
    const cur = this.routes.get(dst);
    if (!cur || cur.owner !== owner) return; // another lease took the destination over
    this.routes.delete(dst);
    plan.delete(cur.route);
  }

  /** Writes a plan in one batch (resumed past failures) and records what the kernel took. */
  private async apply(plan: Plan): Promise<void> {
    const ops = plan.ops;
    if (ops.length === 0) return;
    const failed = await applyResumable(this.o.kernel, ops);
    for (const op of plan.deletes) {
      const err = failed.get(op);
      // already gone is fine (as upstream, which only logs RouteDel errors)
      if (err === undefined || isNotFound(err)) continue;
      if (op.op === 'deleteRoute') this.o.logger.error(`Error deleting route to ${op.route.dst}: ${errorMessage(err)}`);
    }
    // superseded in this very batch (two leases claimed the same destination): the later write won
    await this.record(plan, failed, undefined, (w) => this.routes.get(w.route.dst) === w);
  }

  /**
   * `repaired`: the plan is a route check's; a route that was in the kernel before (`ok`) and is written
   * again was deleted or changed behind our back (the map says what it was when changed).
   */
  private async record(plan: Plan, failed: Map<KernelOp, unknown>, repaired?: Map<Want, string>, current: (w: Want) => boolean = () => true): Promise<void> {
    const done: Want[] = [];
    const failures: Array<[Want, unknown]> = [];
    for (const op of plan.replaces) {
      const w = plan.wants.get(op)!;
      if (!current(w)) continue;
      const err = failed.get(op);
      if (err === undefined) done.push(w);
      else failures.push([w, err]);
    }
    this.succeeded(done, repaired);
    if (failures.length > 0) await this.reportFailures(failures);
  }

  /**
   * Records routes the kernel took. Logs the ones that had failed before and, after a route check,
   * repairs through the RepairLog (once per route until healthy): a missing one as Go's `Route
   * recovered <dst> : <gw>`, a changed one as `Repaired route <dst> via <gw> dev <dev> (was …)`.
   */
  private succeeded(ws: readonly Want[], repaired: Map<Want, string> | undefined): void {
    const said = ws.filter((w) => w.error !== undefined);
    for (const w of said.slice(0, LOG_EACH_UP_TO)) {
      this.log(`added route to ${w.route.dst} via ${w.route.via} dev ${w.route.dev}, which had failed: ${w.error}`);
    }
    if (said.length > LOG_EACH_UP_TO) this.log(`... and ${said.length - LOG_EACH_UP_TO} more routes added that had failed`);
    for (const w of ws) {
      if (repaired && w.ok && w.error === undefined) {
        const was = repaired.get(w);
        const r = w.route;
        this.repairs.repaired({
          kind: 'route',
          action: 'restored',
          key: routeKey(r),
          line: was === undefined ? `Route recovered ${r.dst} : ${r.via}` : `Repaired route ${r.dst} via ${r.via} dev ${r.dev} (was ${was})`,
        });
      }
      w.ok = true;
      delete w.error;
    }
  }

  /** Marks routes as failed and logs each distinct failure once, at error level. */
  private async reportFailures(failures: Array<[Want, unknown]>): Promise<void> {
    const fresh = failures.filter(([w, err]) => w.error !== errorMessage(err));
    for (const [w, err] of failures) {
      w.ok = false;
      w.error = errorMessage(err);
    }
    if (fresh.length === 0) return;
    const reach = await this.directNetworks();
    const every = `retrying every ${this.o.checkEvery() / 1000} s`;
    const shown = fresh.slice(0, LOG_EACH_UP_TO);
    for (const [w, err] of shown) {
      const hint = this.o.refusalHint?.(w.route, reach.get(w.family)?.(w.route.via)) ?? '';
      this.o.logger.error(`Error adding route to ${w.route.dst} via ${w.route.via} dev ${w.route.dev}: ${errorMessage(err)}${hint}; ${every}`);
    }
    if (fresh.length > shown.length) this.o.logger.error(`... and ${fresh.length - shown.length} more routes failed; ${every}`);
  }

  /**
   * Per family, whether an address is on a network attached to the external interface: the longest
   * match in the main table is a route without a gateway on that interface (what the kernel demands of
   * a non-onlink gateway). Only used to explain failures; absent if the routes cannot be read.
   */
  private async directNetworks(): Promise<Map<Family, (ip: string) => boolean>> {
    const out = new Map<Family, (ip: string) => boolean>();
    for (const family of this.families()) {
      let routes: Route[];
      try {
        routes = await this.o.kernel.listRoutes({ family });
      } catch {
        continue;
      }
      out.set(family, (text) => {
        const ip = tryParseIP(text);
        const best = ip && longestPrefixMatch(routes, ip);
        return !!best && best.dst !== 'default' && best.via === undefined && best.dev === this.o.extIface;
      });
    }
    return out;
  }

  private families(): Family[] {
    return ([4, 6] as const).filter((f) => (f === 4 ? this.o.enableIPv4 : this.o.enableIPv6));
  }

  // ---- Go's routeCheck: re-add wanted routes that are missing -----------------------------------

  /**
   * One route check round: every wanted route missing from the main table (deleted by hand, flushed
   * with its interface going down, or never accepted) is written again, in one batch per family.
   * Unlike upstream (RouteAdd, which fails with EEXIST), a route changed behind our back (other
   * gateway or device) is replaced too.
   */
  async checkRoutes(trigger: ReconcileTrigger = 'periodic'): Promise<void> {
    const broken = new Set<string>();
    for (const family of this.families()) {
      const wants = [...this.routes.values()].filter((w) => w.family === family);
      const sweep = this.sweepable(family);
      if (wants.length === 0 && !sweep) continue;
      let have: Route[];
      try {
        have = await this.o.kernel.listRoutes({ family });
      } catch (err) {
        this.o.logger.warn(`Error fetching route list. Will automatically retry: ${errorMessage(err)}`);
        continue;
      }
      // destination → the main-table routes to it (a changed route is told from a missing one)
      const byDst = new Map<string, Route[]>();
      for (const r of have) {
        if ((r.table ?? 254) !== 254) continue;
        const dst = parseRouteDst(r.dst, family);
        if (dst) byDst.set(formatNet(dst), [...(byDst.get(formatNet(dst)) ?? []), r]);
      }
      const plan = new Plan();
      const changed = new Map<Want, string>();
      for (const w of wants) {
        const rs = byDst.get(w.route.dst) ?? [];
        if (rs.some((r) => r.via !== undefined && r.dev === w.route.dev && sameIP(r.via, w.route.via))) continue;
        plan.replace(w);
        broken.add(routeKey(w.route));
        // a route the kernel never took is retried, not repaired: its failure is logged on its own
        if (w.ok && rs.length > 0) changed.set(w, rs.map((r) => `via ${r.via ?? '-'} dev ${r.dev ?? '-'}`).join(', '));
      }
      const stale = sweep ? have.map((r) => this.staleRoute(r, family, sweep.network, sweep.own)).filter((r) => r !== undefined) : [];
      for (const r of stale) {
        plan.delete(r);
        broken.add(routeKey(r));
      }
      if (plan.ops.length === 0) continue;
      const failed = await applyResumable(this.o.kernel, plan.ops);
      for (const op of plan.deletes) {
        if (op.op !== 'deleteRoute') continue;
        const r = op.route;
        const repair: Repair = { kind: 'route', action: 'removed', key: routeKey(r), line: `Removed stale route ${r.dst} via ${r.via ?? ''} dev ${r.dev ?? ''} (no lease has it)` };
        const err = failed.get(op);
        if (err === undefined || isNotFound(err)) this.repairs.repaired(repair);
        else this.repairs.failed(repair, errorMessage(err));
      }
      await this.record(plan, failed, changed);
    }
    if (trigger === 'periodic') this.repairs.settle(broken);
  }

  /**
   * The route check is the reconcile: every reconcile interval (60 s) where kernel events repair at
   * once; without them (iproute2) at least at Go's routeCheck cadence (10 s). A check period ≤ 0 turns
   * the periodic round off there (tests).
   */
  private checkPeriod(): number {
    const every = this.o.reconcileEvery?.() ?? DEFAULT_RECONCILE_INTERVAL;
    if (this.o.kernel.watch) return every;
    const check = this.o.checkEvery();
    if (check <= 0) return 0;
    return every > 0 ? Math.min(check, every) : check;
  }

  /** After the first snapshot: where a family's leftovers are looked for (see removeStale). */
  private sweepable(family: Family): { network: IPNet; own: IPNet } | undefined {
    if (!this.synced) return undefined;
    const network = family === 4 ? this.o.network : this.o.ipv6Network;
    const own = family === 4 ? this.o.own.subnet : this.o.own.ipv6Subnet;
    if (!network || !own || network.family !== family || own.family !== family) return undefined;
    return { network, own };
  }

  // ---- leftovers of leases deleted while we were down ------------------------------------------

  /**
   * Removes, in one batch, the routes of ours that no current lease accounts for. Upstream never does
   * this (its watcher starts empty, so a lease deleted while flanneld was down never yields a removal
   * and its route stays, sending a re-used subnet to the wrong host). Run once, after the first lease
   * batch is programmed.
   *
   * Go writes its routes with netlink's defaults: protocol `boot`, main table, metric 0 (IPv6: the
   * kernel's 1024), no flags; `ip route replace` gives the same. An operator's `ip route add` gives the
   * same too, so the shape alone is not enough. A route is taken as ours only if ALL hold:
   * - main table, on the external interface, `via` a gateway of its family, no `onlink`, protocol
   *   `boot`, scope global, default metric;
   * - its destination is a subnet of the flannel network (`Network` / `IPv6Network`) with exactly our
   *   lease's prefix length (every lease of a network has the same SubnetLen), and is not our subnet;
   * - no lease of the snapshot, of any backend type, has that subnet, and no wanted route has it.
   * Without the network of a family that family is not swept. Other routes (a whole-network route, a
   * different prefix length, another device or table, any proto) are never touched.
   */
  async removeStale(): Promise<void> {
    this.synced = true;
    const ops: KernelOp[] = [];
    for (const family of this.families()) {
      const network = family === 4 ? this.o.network : this.o.ipv6Network;
      const own = family === 4 ? this.o.own.subnet : this.o.own.ipv6Subnet;
      if (!network || !own || network.family !== family || own.family !== family) continue;
      let routes: Route[];
      try {
        routes = await this.o.kernel.listRoutes({ family, dev: this.o.extIface });
      } catch (err) {
        this.o.logger.warn(`failed to look for stale IPv${family} routes: ${errorMessage(err)}`);
        continue;
      }
      for (const r of routes) {
        const stale = this.staleRoute(r, family, network, own);
        if (stale) ops.push({ op: 'deleteRoute', route: stale });
      }
    }
    if (ops.length === 0) return;
    const failed = await applyResumable(this.o.kernel, ops);
    const gone = ops.filter((op) => !failed.has(op) || isNotFound(failed.get(op)));
    const shown = gone.slice(0, 10).map(describeRoute).join(', ');
    const what = gone.length > 10 ? `${shown} and ${gone.length - 10} more` : shown;
    if (gone.length > 0) this.log(`removed ${gone.length} stale routes left by leases deleted while flanneld was not running: ${what}`);
    for (const op of ops) {
      const err = failed.get(op);
      if (err !== undefined && !isNotFound(err)) this.o.logger.error(`failed to remove stale ${describeRoute(op)}: ${errorMessage(err)}`);
    }
  }

  private staleRoute(r: Route, family: Family, network: IPNet, own: IPNet): RouteSpec | undefined {
    const dev = this.o.extIface;
    if ((r.table ?? 254) !== 254 || (r.dev ?? dev) !== dev || r.via === undefined || r.onlink) return undefined;
    if (r.proto !== undefined && r.proto !== 'boot') return undefined;
    if (r.scope !== undefined && r.scope !== 'global') return undefined;
    if (r.metric !== undefined && r.metric !== (family === 4 ? 0 : 1024)) return undefined;
    if (r.src !== undefined || r.mtu !== undefined || r.advmss !== undefined) return undefined;
    const dst = parseRouteDst(r.dst, family);
    const via = tryParseIP(r.via);
    if (!dst || !via || via.family !== family) return undefined;
    if (dst.prefix !== own.prefix || dst.prefix < network.prefix || !netContains(network, netIP(dst)) || netEqual(dst, own)) return undefined;
    const key = formatNet(dst);
    if (this.routes.has(key) || this.snapshotDsts.has(key)) return undefined;
    return { dst: key, via: formatIP(via), dev };
  }
}

function describeRoute(op: KernelOp): string {
  return op.op === 'deleteRoute' || op.op === 'replaceRoute' ? `route ${op.route.dst} via ${op.route.via ?? ''} dev ${op.route.dev ?? ''}` : op.op;
}

function routeKey(r: RouteSpec): string {
  return `route|${r.dev ?? ''}|${r.dst}`;
}

function sameIP(a: string, b: string): boolean {
  const x = tryParseIP(a);
  const y = tryParseIP(b);
  return !!x && !!y && x.family === y.family && x.value === y.value;
}
