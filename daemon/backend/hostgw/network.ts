// The host-gw event loop (flannel's RouteNetwork, pkg/backend/route_network.go, as host-gw uses it):
// one route per peer and family, `<peer subnet> via <peer PublicIP> dev <ext iface>`.
//
// - Desired state first, as Go's route cache: every host-gw peer lease we accept becomes a wanted route
//   (keyed by destination) BEFORE the kernel is asked, so a route that fails to program is not lost:
//   the periodic route check (Go's routeCheck, every 10 s) retries it, and also re-adds any wanted route
//   deleted behind our back (`Route recovered`).
// - Every batch from `watchLeases` becomes ONE `Kernel.batch()` call (deletes first, then replaces):
//   5000 peers converge in one `ip -batch` exec. A failing line does not stop the rest: the batch is
//   resumed after the failed op (`ip -batch` stops at the first failure and names it), so the cost is
//   one exec per failure, never one per peer.
// - Never dies on a lease: leases of other backend types are ignored with a log (a known peer that
//   switched type has its route removed), a lease without a PublicIP for a family is skipped for that
//   family, and a route the kernel refuses is logged (once per distinct error) and retried by the check.
//   The usual refusal is a peer that is not on our L2 segment (the kernel rejects a gateway that is not
//   on a directly attached network): we say so, and never fall back to `onlink`, which would blackhole.
// - Leftovers: after the first batch (the snapshot) is programmed, routes of ours that no current lease
//   accounts for are removed once (`removeStaleRoutes`; upstream keeps them forever). See there for how
//   "ours" is told apart from an operator's route of the same shape.
import type { Kernel, KernelOp, Route, RouteSpec } from '../../../shared/kernel/kernel.js';
import { KernelError, isNotFound } from '../../../shared/kernel/errors.js';
import {
  formatIP,
  formatNet,
  makeNet,
  netContains,
  netEqual,
  netIP,
  tryParseCIDR,
  tryParseIP,
  type Family,
  type IP,
  type IPNet,
} from '../../../shared/net/ip.js';
import type { Network, SubnetManager } from '../backend.js';
import { lastEventPerLease, type Lease, type LeaseEvent } from '../../lease.js';
import { PeerGuard } from '../peer-guard.js';
import { longestPrefixMatch, parseRouteDst } from '../../../shared/net/route.js';
import { sleep } from '../../sleep.js';

export const BACKEND_TYPE = 'host-gw';
/** Go's routeCheckRetries * time.Second. */
export const ROUTE_CHECK_INTERVAL = 10_000;
/** Batches larger than this are logged as a count, not lease by lease. */
const LOG_EACH_UP_TO = 10;

export interface HostgwNetworkOptions {
  subnetManager: SubnetManager;
  kernel: Kernel;
  log: (msg: string) => void;
  lease: Lease;
  /** the external interface: every peer route goes out through it */
  extIface: string;
  mtu: number;
  enableIPv4: boolean;
  enableIPv6: boolean;
  /** the flannel `Network`: where the stale-route sweep looks for IPv4 leftovers (absent: no v4 sweep) */
  network?: IPNet;
  /** the flannel `IPv6Network`, likewise for IPv6 (absent: no v6 sweep) */
  ipv6Network?: IPNet;
  /** route check period (ms), Go's 10 s; 0 disables it */
  checkInterval?: number;
  /** our own addresses besides the lease's PublicIPs: never a peer's */
  ownAddrs?: readonly (IP | undefined)[];
  /** the IPv4 networks on the external interface: a peer's PublicIP is not their broadcast address */
  underlay?: readonly IPNet[];
}

/** One wanted route (Go's cached netlink.Route). */
interface Want {
  family: Family;
  route: Required<Pick<RouteSpec, 'dst' | 'via' | 'dev'>>;
  /** the lease key that wants it */
  owner: string;
  /** the kernel accepted it last time we wrote it */
  ok: boolean;
  /** the last error, to log each distinct failure once */
  error?: string;
}

interface Peer {
  lease: Lease;
  /** destinations of the routes this lease wants (one per family) */
  dsts: string[];
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

export class HostgwNetwork implements Network {
  private readonly peers = new Map<string, Peer>();
  private readonly routes = new Map<string, Want>();
  /** destinations of every lease in the first snapshot, whatever its type (kept by the sweep) */
  private readonly snapshotDsts = new Set<string>();
  private firstSyncDone: () => void = () => {};
  /** Settles once the first lease snapshot is programmed and stale routes are removed. */
  readonly firstSync = new Promise<void>((resolve) => (this.firstSyncDone = resolve));
  private tail: Promise<void> = Promise.resolve();
  /** which peer leases may be routed: never into our own subnet, nor over another live peer's */
  private readonly guard: PeerGuard;

  constructor(private readonly o: HostgwNetworkOptions) {
    this.guard = new PeerGuard({
      own: o.lease,
      enableIPv4: o.enableIPv4,
      enableIPv6: o.enableIPv6,
      ...(o.network ? { network: o.network } : {}),
      ...(o.ipv6Network ? { ipv6Network: o.ipv6Network } : {}),
      ownAddrs: [o.lease.attrs.publicIP, o.lease.attrs.publicIPv6, ...(o.ownAddrs ?? [])],
      ...(o.underlay ? { underlay: o.underlay } : {}),
      log: o.log,
    });
  }

  lease(): Lease {
    return this.o.lease;
  }

  mtu(): number {
    return this.o.mtu;
  }

  /** Known host-gw peers (lease key → lease), for tests and diagnostics. */
  knownPeers(): Map<string, Lease> {
    return new Map([...this.peers].map(([k, p]) => [k, p.lease]));
  }

  /** Wanted routes (destination → route and whether the kernel took it), for tests and diagnostics. */
  wantedRoutes(): Map<string, { route: RouteSpec; ok: boolean; error?: string }> {
    return new Map(
      [...this.routes].map(([dst, w]) => [dst, { route: { ...w.route }, ok: w.ok, ...(w.error !== undefined ? { error: w.error } : {}) }]),
    );
  }

  async run(signal: AbortSignal): Promise<void> {
    this.o.log('Watching for new subnet leases');
    const checker = this.routeCheck(signal);
    try {
      let snapshot = true;
      for await (const batch of this.o.subnetManager.watchLeases(signal)) {
        if (signal.aborted) break;
        const first = snapshot;
        snapshot = false;
        await this.serial(async () => {
          try {
            if (first) for (const ev of batch) if (ev.type === 'added') this.rememberSnapshot(ev.lease);
            await this.handleBatch(batch);
            // the first batch is every current lease: routes of ours that none accounts for are left over
            if (first) await this.removeStaleRoutes();
          } finally {
            if (first) this.firstSyncDone();
          }
        });
      }
    } finally {
      await checker;
    }
  }

  /** Runs f after everything queued before it (batches and route checks never interleave); never rejects. */
  private serial(f: () => Promise<void>): Promise<void> {
    const guarded = async () => {
      try {
        await f();
      } catch (err) {
        // a bug or an unexpected kernel failure: the route check re-converges later
        this.o.log(`host-gw: unexpected error: ${errText(err)}`);
      }
    };
    const next = this.tail.then(guarded, guarded);
    this.tail = next;
    return next;
  }

  /** Applies one batch of lease events; never throws for a bad lease. */
  async handleBatch(events: readonly LeaseEvent[]): Promise<void> {
    const last = lastEventPerLease(this.guard.update(events), (l) => this.isOwn(l));
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
      this.o.log(
        `applied a batch of ${last.size} lease events (${added} host-gw added, ${removed} removed) in ${(performance.now() - t0).toFixed(0)} ms (${this.peers.size} peers)`,
      );
    }
  }

  private isOwn(lease: Lease): boolean {
    const own = this.o.lease;
    return (
      (this.o.enableIPv4 && lease.enableIPv4 && own.enableIPv4 && netEqual(lease.subnet, own.subnet)) ||
      (!!lease.ipv6Subnet && !!own.ipv6Subnet && netEqual(lease.ipv6Subnet, own.ipv6Subnet))
    );
  }

  private rememberSnapshot(lease: Lease): void {
    if (lease.enableIPv4) this.snapshotDsts.add(formatNet(lease.subnet));
    if (lease.ipv6Subnet) this.snapshotDsts.add(formatNet(lease.ipv6Subnet));
  }

  /** The route one family of a lease needs; a string says why the lease cannot be used for it. */
  private routeFor(lease: Lease, family: Family): Want['route'] | string | undefined {
    if (!(family === 4 ? this.o.enableIPv4 : this.o.enableIPv6)) return undefined;
    const subnet = family === 4 ? (lease.enableIPv4 ? lease.subnet : undefined) : lease.ipv6Subnet;
    if (!subnet) return undefined;
    const gw = family === 4 ? lease.attrs.publicIP : lease.attrs.publicIPv6;
    if (subnet.family !== family) return `its IPv${family} subnet ${formatNet(subnet)} is not IPv${family}`;
    if (!gw || gw.value === 0n || gw.family !== family) return `no public IPv${family}`;
    return { dst: formatNet(subnet), via: formatIP(gw), dev: this.o.extIface };
  }

  /** Plans the routes of an added lease; true if it is a host-gw peer. */
  private planAdd(key: string, lease: Lease, plan: Plan, quiet: boolean): boolean {
    if (lease.attrs.backendType !== BACKEND_TYPE) {
      this.o.log(`Ignoring non-host-gw subnet ${describeLease(lease)}: type=${lease.attrs.backendType ?? ''}`);
      // a peer that switched backends: take down what we had routed for it (Go keeps re-adding it)
      const known = this.peers.get(key);
      if (known) this.planRemove(key, known.lease, plan, quiet);
      return false;
    }
    const prev = this.peers.get(key);
    const dsts: string[] = [];
    for (const family of [4, 6] as const) {
      const r = this.routeFor(lease, family);
      if (r === undefined) continue;
      if (typeof r === 'string') {
        this.o.log(`skipping IPv${family} of lease ${key}: ${r}`);
        continue;
      }
      if (!quiet) this.o.log(`Subnet added: ${r.dst} via ${r.via}`);
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
        if (!quiet) this.o.log(`Subnet removed: ${d}`);
        this.unwant(key, d, plan);
      }
      return true;
    }
    if (lease.attrs.backendType !== BACKEND_TYPE) {
      this.o.log(`Ignoring non-host-gw subnet ${describeLease(lease)}: type=${lease.attrs.backendType ?? ''}`);
      return false;
    }
    // Never seen by this run: remove what that lease would have had, unless another lease wants the
    // destination. The delete names the gateway, so it cannot take down someone else's route.
    let any = false;
    for (const family of [4, 6] as const) {
      const r = this.routeFor(lease, family);
      if (r === undefined || typeof r === 'string' || this.routes.has(r.dst)) continue;
      if (!quiet) this.o.log(`Subnet removed: ${r.dst} (not known; removing its route anyway)`);
      plan.delete(r);
      any = true;
    }
    return any;
  }

  private want(owner: string, family: Family, route: Want['route'], plan: Plan): void {
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
    const failed = await this.runOps(ops);
    for (const op of plan.deletes) {
      const err = failed.get(op);
      // already gone is fine (as upstream, which only logs RouteDel errors)
      if (err === undefined || isNotFound(err)) continue;
      if (op.op === 'deleteRoute') this.o.log(`Error deleting route to ${op.route.dst}: ${errText(err)}`);
    }
    const done: Want[] = [];
    const failures: Array<[Want, unknown]> = [];
    for (const op of plan.replaces) {
      const w = plan.wants.get(op)!;
      // superseded in this very batch (two leases claimed the same destination): the later write won
      if (this.routes.get(w.route.dst) !== w) continue;
      const err = failed.get(op);
      if (err === undefined) done.push(w);
      else failures.push([w, err]);
    }
    this.succeeded(done, false);
    if (failures.length > 0) await this.reportFailures(failures);
  }

  /**
   * Runs ops in one batch. A batch stops at its first failure and names the failed op: record it and
   * resume after it, so every op is tried and one bad route costs one more exec. Returns the failures.
   */
  private async runOps(ops: readonly KernelOp[]): Promise<Map<KernelOp, unknown>> {
    const failed = new Map<KernelOp, unknown>();
    let rest = ops;
    while (rest.length > 0) {
      try {
        await this.o.kernel.batch(rest);
        return failed;
      } catch (err) {
        const i = err instanceof KernelError && err.op !== undefined ? rest.indexOf(err.op) : -1;
        if (i < 0) {
          // cannot tell which op failed (or the batch never ran): one by one
          for (const op of rest) {
            try {
              await this.o.kernel.batch([op]);
            } catch (e) {
              failed.set(op, e);
            }
          }
          return failed;
        }
        failed.set(rest[i]!, err);
        rest = rest.slice(i + 1);
      }
    }
    return failed;
  }

  /**
   * Records routes the kernel took. Logs the ones that had failed before and, after a route check,
   * the ones that were missing (`Route recovered`, as Go); many at once are logged as a count.
   */
  private succeeded(ws: readonly Want[], recovered: boolean): void {
    const said = ws.filter((w) => w.error !== undefined || (recovered && w.ok));
    for (const w of said.slice(0, LOG_EACH_UP_TO)) {
      if (w.error !== undefined) this.o.log(`added route to ${w.route.dst} via ${w.route.via} dev ${w.route.dev}, which had failed: ${w.error}`);
      else this.o.log(`Route recovered ${w.route.dst} : ${w.route.via}`);
    }
    if (said.length > LOG_EACH_UP_TO) this.o.log(`... and ${said.length - LOG_EACH_UP_TO} more routes added or recovered`);
    for (const w of ws) {
      w.ok = true;
      delete w.error;
    }
  }

  /** Marks routes as failed and logs each distinct failure once. */
  private async reportFailures(failures: Array<[Want, unknown]>): Promise<void> {
    const fresh = failures.filter(([w, err]) => w.error !== errText(err));
    for (const [w, err] of failures) {
      w.ok = false;
      w.error = errText(err);
    }
    if (fresh.length === 0) return;
    const reach = await this.directNetworks();
    const shown = fresh.slice(0, LOG_EACH_UP_TO);
    for (const [w, err] of shown) {
      const hint = reach.get(w.family)?.(w.route.via) === false
        ? `; ${w.route.via} is not on a network directly attached to ${w.route.dev}: host-gw needs every host on one L2 segment (use vxlan, with DirectRouting, across routers)`
        : '';
      this.o.log(`Error adding route to ${w.route.dst} via ${w.route.via} dev ${w.route.dev}: ${errText(err)}${hint}; retrying every ${this.checkEvery() / 1000} s`);
    }
    if (fresh.length > shown.length) this.o.log(`... and ${fresh.length - shown.length} more routes failed; retrying them every ${this.checkEvery() / 1000} s`);
  }

  /**
   * Per family, whether an address is on a network attached to the external interface: the longest
   * match in the main table is a route without a gateway on that interface (what the kernel demands of
   * a non-onlink gateway). Only used to explain failures; absent if the routes cannot be read.
   */
  private async directNetworks(): Promise<Map<Family, (ip: string) => boolean>> {
    const out = new Map<Family, (ip: string) => boolean>();
    for (const family of [4, 6] as const) {
      if (!(family === 4 ? this.o.enableIPv4 : this.o.enableIPv6)) continue;
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

  // ---- Go's routeCheck: re-add wanted routes that are missing -----------------------------------

  private checkEvery(): number {
    return this.o.checkInterval ?? ROUTE_CHECK_INTERVAL;
  }

  private async routeCheck(signal: AbortSignal): Promise<void> {
    const every = this.checkEvery();
    if (every <= 0) return;
    while (!signal.aborted) {
      if (!(await sleep(every, signal))) break;
      await this.serial(() => this.checkRoutes());
    }
  }

  /**
   * One route check round: every wanted route missing from the main table (deleted by hand, flushed
   * with its interface going down, or never accepted) is written again, in one batch per family.
   * Unlike upstream (RouteAdd, which fails with EEXIST), a route changed behind our back (other
   * gateway or device) is replaced too.
   */
  async checkRoutes(): Promise<void> {
    for (const family of [4, 6] as const) {
      const wants = [...this.routes.values()].filter((w) => w.family === family);
      if (wants.length === 0) continue;
      let have: Route[];
      try {
        have = await this.o.kernel.listRoutes({ family });
      } catch (err) {
        this.o.log(`Error fetching route list. Will automatically retry: ${errText(err)}`);
        continue;
      }
      const present = new Set<string>();
      for (const r of have) {
        if ((r.table ?? 254) !== 254 || r.via === undefined || r.dev === undefined) continue;
        const dst = parseRouteDst(r.dst);
        const via = tryParseIP(r.via);
        if (dst && via) present.add(`${formatNet(dst)}|${formatIP(via)}|${r.dev}`);
      }
      const missing = wants.filter((w) => !present.has(`${w.route.dst}|${w.route.via}|${w.route.dev}`));
      if (missing.length === 0) continue;
      const plan = new Plan();
      for (const w of missing) plan.replace(w);
      const failed = await this.runOps(plan.replaces);
      const done: Want[] = [];
      const failures: Array<[Want, unknown]> = [];
      for (const op of plan.replaces) {
        const w = plan.wants.get(op)!;
        const err = failed.get(op);
        if (err === undefined) done.push(w);
        else failures.push([w, err]);
      }
      this.succeeded(done, true);
      if (failures.length > 0) await this.reportFailures(failures);
    }
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
   * Without the network of a family (IPv6: BackendNetworkConfig has no IPv6Network) that family is
   * not swept. Other routes (a whole-network route, a different prefix length, another device or
   * table, any proto) are never touched.
   */
  async removeStaleRoutes(): Promise<void> {
    const ops: KernelOp[] = [];
    for (const family of [4, 6] as const) {
      if (!(family === 4 ? this.o.enableIPv4 : this.o.enableIPv6)) continue;
      const network = family === 4 ? this.o.network : this.o.ipv6Network;
      const own = family === 4 ? this.o.lease.subnet : this.o.lease.ipv6Subnet;
      if (!network || !own || network.family !== family || own.family !== family) continue;
      let routes: Route[];
      try {
        routes = await this.o.kernel.listRoutes({ family, dev: this.o.extIface });
      } catch (err) {
        this.o.log(`failed to look for stale IPv${family} routes: ${errText(err)}`);
        continue;
      }
      for (const r of routes) {
        const stale = this.staleRoute(r, family, network, own);
        if (stale) ops.push({ op: 'deleteRoute', route: stale });
      }
    }
    if (ops.length === 0) return;
    const failed = await this.runOps(ops);
    const gone = ops.filter((op) => !failed.has(op) || isNotFound(failed.get(op)));
    const shown = gone.slice(0, 10).map(describeRoute).join(', ');
    const what = gone.length > 10 ? `${shown} and ${gone.length - 10} more` : shown;
    if (gone.length > 0) this.o.log(`removed ${gone.length} stale routes left by leases deleted while flanneld was not running: ${what}`);
    for (const op of ops) {
      const err = failed.get(op);
      if (err !== undefined && !isNotFound(err)) this.o.log(`failed to remove stale ${describeRoute(op)}: ${errText(err)}`);
    }
  }

  private staleRoute(r: Route, family: Family, network: IPNet, own: IPNet): RouteSpec | undefined {
    const dev = this.o.extIface;
    if ((r.table ?? 254) !== 254 || (r.dev ?? dev) !== dev || r.via === undefined || r.onlink) return undefined;
    if (r.proto !== undefined && r.proto !== 'boot') return undefined;
    if (r.scope !== undefined && r.scope !== 'global') return undefined;
    if (r.metric !== undefined && r.metric !== (family === 4 ? 0 : 1024)) return undefined;
    if (r.src !== undefined || r.mtu !== undefined || r.advmss !== undefined) return undefined;
    const dst = parseRouteDst(r.dst);
    const via = tryParseIP(r.via);
    if (!dst || !via || dst.family !== family || via.family !== family) return undefined;
    if (dst.prefix !== own.prefix || dst.prefix < network.prefix || !netContains(network, netIP(dst)) || netEqual(dst, own)) return undefined;
    const key = formatNet(dst);
    if (this.routes.has(key) || this.snapshotDsts.has(key)) return undefined;
    return { dst: key, via: formatIP(via), dev };
  }
}

function describeRoute(op: KernelOp): string {
  return op.op === 'deleteRoute' || op.op === 'replaceRoute' ? `route ${op.route.dst} via ${op.route.via ?? ''} dev ${op.route.dev ?? ''}` : op.op;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
