// Runs bridge plugins (ours in dist/bin, Go's in /usr/lib/cni) inside a "host" netns the test made,
// against "pod" netns it made, with IPAM state in a private temp dir. Never the root namespace.
// Plugins run through test/helpers/run-plugin.ts (runIn, PluginRun).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { cleanupNetns, createNetns, type Netns } from '../../helpers/netns.js';
import { bin, DIST_BIN, GO_CNI_BIN, ROOT } from '../../helpers/paths.js';

export const OUR_BRIDGE = bin('bridge');
export const GO_BIN = GO_CNI_BIN;
export const GO_BRIDGE = join(GO_BIN, 'bridge');
export const haveGo = existsSync(GO_BRIDGE) && existsSync(join(GO_BIN, 'host-local'));
export const haveOurs = existsSync(OUR_BRIDGE);

/** CNI_PATH that resolves `host-local` to ours (dist/bin) or Go's. */
export function ipamPath(ipam: 'ours' | 'go' = 'go'): string {
  return ipam === 'ours' ? DIST_BIN : GO_BIN;
}

export const haveOurHostLocal = existsSync(join(DIST_BIN, 'host-local'));

export interface World {
  host: Netns;
  pods: Netns[];
  dir: string;
  pod(i?: number): Netns;
  /** the host's link names, sorted */
  hostLinks(): string[];
  dispose(): void;
}

export function makeWorld(prefix: string, pods = 1): World {
  const host = createNetns(`${prefix}h`);
  const list: Netns[] = [];
  for (let i = 0; i < pods; i++) list.push(createNetns(`${prefix}p${i}`));
  const dir = mkdtempSync(join(tmpdir(), `ftest-${process.pid}-bridge-`));
  return {
    host,
    pods: list,
    dir,
    pod: (i = 0) => list[i]!,
    hostLinks: () => {
      const r = host.exec(['ip', '-j', 'link', 'show']);
      return (JSON.parse(r.stdout) as Array<{ ifname: string }>).map((l) => l.ifname).sort();
    },
    dispose: () => {
      for (const p of list) p.delete();
      host.delete();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * For a describe block: builds our bridge once, and returns `world(pods)`, whose worlds are disposed
 * after each test (the netns helper's cleanup runs after all, even on failure).
 */
export function worldsPerTest(prefix: string): (pods?: number) => World {
  const worlds: World[] = [];
  let seq = 0;
  beforeAll(() => {
    execFileSync('node', ['scripts/build.mjs', 'bridge'], { cwd: ROOT, stdio: 'pipe' });
  });
  afterEach(() => {
    for (const w of worlds.splice(0)) w.dispose();
  });
  afterAll(cleanupNetns);
  return (pods = 1) => {
    const w = makeWorld(`${prefix}${++seq}`, pods);
    worlds.push(w);
    return w;
  };
}

/** A bridge config with host-local IPAM whose dataDir is private to the test. */
export function conf(w: World, o: Record<string, unknown> = {}, ipam: Record<string, unknown> | null = { subnet: '10.1.2.0/24' }): Record<string, unknown> {
  const c: Record<string, unknown> = { cniVersion: '1.0.0', name: 'testnet', type: 'bridge', bridge: 'br-t', ...o };
  if (ipam !== null && !('ipam' in o)) c.ipam = { type: 'host-local', dataDir: join(w.dir, 'ipam'), ...ipam };
  return c;
}

export function ipamFiles(w: World, network = 'testnet'): string[] {
  const d = join(w.dir, 'ipam', network);
  if (!existsSync(d)) return [];
  return readdirSync(d).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip')).sort();
}

export function json(host: Netns, argv: string[]): unknown {
  return JSON.parse(host.exec(argv).stdout || '[]') as unknown;
}

export interface IpAddrJson {
  ifname: string;
  mtu: number;
  address: string;
  flags: string[];
  master?: string;
  operstate: string;
  linkinfo?: { info_kind?: string; info_slave_data?: { hairpin?: boolean; isolated?: boolean } };
  addr_info: Array<{ family: string; local: string; prefixlen: number; scope: string; broadcast?: string }>;
}

export function addrShow(ns: Netns, dev?: string): IpAddrJson[] {
  return json(ns, ['ip', '-j', '-d', 'addr', 'show', ...(dev ? ['dev', dev] : [])]) as IpAddrJson[];
}

export function globalAddrs(ns: Netns, dev: string): string[] {
  return (addrShow(ns, dev)[0]?.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`);
}

export function routes(ns: Netns, family: 4 | 6): string[] {
  const list = json(ns, ['ip', '-j', `-${family}`, 'route', 'show']) as Array<{ dst: string; gateway?: string; dev: string; protocol?: string }>;
  return list.filter((r) => !(family === 6 && r.dst.startsWith('fe80'))).map((r) => `${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} dev ${r.dev}`);
}

export function sysctl(ns: Netns, key: string): string {
  return ns.exec(['cat', `/proc/sys/${key}`]).stdout.trim();
}

/** The result without MACs and with the host veth name replaced, for comparing with Go's. */
export function normalizeResult(r: Record<string, unknown> | undefined): unknown {
  if (r === undefined) return undefined;
  const s = JSON.stringify(r)
    .replace(/"mac":"[0-9a-f:]{17}"/g, '"mac":"MAC"')
    .replace(/veth[0-9a-f]{8}/g, 'vethXXXXXXXX');
  return JSON.parse(s);
}
