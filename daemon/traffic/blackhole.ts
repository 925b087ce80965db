// --ip-blackhole-route (flannel's main.go, the blackhole goroutine per family): `blackhole <own
// subnet>` in the main table, v4 and/or v6, checked now and then every --iptables-resync seconds and
// added when missing. Without a bridge holding the subnet's connected route (Canal: pods get /32
// routes), packets for unused pod addresses would otherwise follow the default route out of the node.
//
// The route is added, never replaced (netlink RouteAdd): where another route for exactly the subnet
// exists (the flannel bridge's connected route on cni0) IPv4 refuses it with EEXIST and that route is
// left alone. Such a failure is logged when it first happens and again only when it changes or after
// the route was in place, not every period. The route is not removed on exit.
import type { IPNet } from '../../shared/net/ip.js';
import { formatNet, netEqual } from '../../shared/net/ip.js';
import { parseRouteDst } from '../../shared/net/route.js';
import type { Kernel } from '../../shared/kernel/kernel.js';
import { type Logger, errorMessage } from '../../shared/log.js';
import type { Sleep } from '../sleep.js';
import { loopHeartbeat } from '../metrics/heartbeat.js';
import { recordTrafficResync } from '../metrics/metrics.js';

/** What the blackhole loop needs of the kernel. */
export type BlackholeKernel = Pick<Kernel, 'listRoutes' | 'batch'>;

/** One pass: adds the blackhole route of each subnet that has none. `lastError` carries the dedup state. */
export async function ensureBlackholeRoutes(
  kernel: BlackholeKernel,
  subnets: readonly IPNet[],
  log: Logger,
  lastError: Map<string, string> = new Map(),
): Promise<void> {
  for (const sn of subnets) {
    const dst = formatNet(sn);
    try {
      const present = (await kernel.listRoutes({ family: sn.family, type: 'blackhole' })).some((r) => {
        const n = parseRouteDst(r.dst, sn.family);
        return n !== undefined && netEqual(n, sn);
      });
      if (!present) {
        await kernel.batch([{ op: 'addRoute', route: { dst, type: 'blackhole' } }]);
        log.info(`Added blackhole route for ${dst}`);
      }
      recordTrafficResync('blackhole', present ? 'in_sync' : 'repaired');
      lastError.delete(dst);
    } catch (err) {
      recordTrafficResync('blackhole', 'error');
      const msg = `Failed to ensure the blackhole route for ${dst}: ${errorMessage(err)}`;
      if (lastError.get(dst) !== msg) log.error(msg);
      lastError.set(dst, msg);
    }
  }
}

/** The loop: a pass now, then one every `periodMs` until the signal aborts. Never throws. */
export async function runBlackholeRoutes(
  signal: AbortSignal,
  kernel: BlackholeKernel,
  subnets: readonly IPNet[],
  periodMs: number,
  log: Logger,
  sleep: Sleep,
): Promise<void> {
  if (subnets.length === 0 || signal.aborted) return;
  const lastError = new Map<string, string>();
  const hb = loopHeartbeat('blackhole-resync', periodMs); // /healthz: this loop keeps making passes
  try {
    do {
      await ensureBlackholeRoutes(kernel, subnets, log, lastError);
      hb.beat();
    } while (await sleep(periodMs, signal));
  } finally {
    hb.stop();
  }
}
