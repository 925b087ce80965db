// Blackhole routes (flanneld --ip-blackhole-route): two verbs of their own, beside Kernel's, because
// RouteSpec has no route type; run inside a netns through nsenter like iptables.ts.
import type { Family } from '../net/ip.js';
import { KernelError } from './errors.js';
import { spawnExec, toolArgv, type Exec } from './iproute.js';

/** `blackhole <dst>` routes in the main table. */
export interface BlackholeRoutes {
  /** The destinations of the `family` blackhole routes of the main table, as `ip` prints them. */
  list(family: Family): Promise<string[]>;
  /**
   * `ip route add blackhole <dst>` (netlink RouteAdd: never replaces anything). IPv4 refuses it with
   * EEXIST (`isExists`) while another route for exactly `dst` exists, e.g. a bridge's connected route.
   */
  add(dst: string): Promise<void>;
}

/** Blackhole routes in this process's network namespace, or in the one at `netns`. */
export function createBlackholeRoutes(o?: { netns?: string; exec?: Exec }): BlackholeRoutes {
  const exec = o?.exec ?? spawnExec;
  const run = (args: readonly string[]) => exec(toolArgv(o?.netns, 'ip', args));
  return {
    async list(family) {
      const out = await run([`-${family}`, '-json', 'route', 'show', 'table', 'main', 'type', 'blackhole']);
      const rows: unknown = JSON.parse(out.trim() === '' ? '[]' : out);
      if (!Array.isArray(rows)) return [];
      return rows.flatMap((r: unknown) => {
        const dst = typeof r === 'object' && r !== null ? (r as { dst?: unknown }).dst : undefined;
        return typeof dst === 'string' ? [dst] : [];
      });
    },
    async add(dst) {
      await run(['route', 'add', 'blackhole', dst]);
    },
  };
}

/** In-memory BlackholeRoutes: `routes` holds the blackhole dsts; `taken` the dsts another route holds. */
export class FakeBlackholeRoutes implements BlackholeRoutes {
  routes: string[] = [];
  readonly taken = new Set<string>();
  adds = 0;

  async list(family: Family): Promise<string[]> {
    return this.routes.filter((d) => (d.includes(':') ? 6 : 4) === family);
  }

  async add(dst: string): Promise<void> {
    this.adds++;
    if (this.routes.includes(dst) || this.taken.has(dst)) {
      throw new KernelError(`ip route add blackhole ${dst}: File exists`, { argv: ['ip', 'route', 'add', 'blackhole', dst], exitCode: 2, stderr: 'RTNETLINK answers: File exists' });
    }
    this.routes.push(dst);
  }
}
