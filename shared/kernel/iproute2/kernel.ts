// Kernel over iproute2: the ONLY adapter that builds `ip` / `bridge` argv (exec.ts runs them,
// batch.ts turns ops into batch lines, parse.ts reads `-json`, errno.ts turns stderr into a code).
//
// - A veth peer is created directly in the pod namespace with `peer name X netns <path>`: iproute2
//   6.1 accepts a file path there (IFLA_NET_NS_FD), so the link is never moved (a move makes the
//   kernel wait in synchronize_net, tens of ms).
// - Reads use `-json` (`-d` for link details). Writes use replace/append where a retry must be safe.
// - Sysctls in the process's own namespace are plain file writes under /proc/sys (no exec); in another
//   namespace they go through `nsenter ... sh`, because /proc/sys/net shows the opener's namespace.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Family } from '../../net/ip.js';
import { KernelError, isNotFound } from '../errors.js';
import type { Addr, Fdb, Kernel, KernelOp, Link, LinkAddrs, Neigh, Route, RouteSpec } from '../kernel.js';
import { attachOp, checkLineArg, familyOf, mixedScript, planBatch, sysctlPath } from './batch.js';
import { countingExec, spawnExec, ToolRunner, type Exec, type ExecStats } from './exec.js';
import { addrsOf, parseJsonArray, parseLink, parseRoute, str, type J } from './parse.js';

/** The iproute2 Kernel, with what it has done so far (`stats`, shared by its `inNetns` views). */
export interface IprouteKernelHandle extends Kernel {
  readonly stats: ExecStats;
}

/** The real kernel, in the process's own namespace or (with `netns`) in the namespace at that path. */
export function createKernel(o?: { netns?: string; exec?: Exec }): IprouteKernelHandle {
  const stats: ExecStats = { execs: 0 };
  return new IprouteKernel(new ToolRunner(o?.netns, countingExec(o?.exec ?? spawnExec, stats)), stats);
}

class IprouteKernel implements IprouteKernelHandle {
  private readonly netns: string | undefined;
  private readonly exec: Exec;

  constructor(
    private readonly runner: ToolRunner,
    readonly stats: ExecStats,
  ) {
    this.netns = runner.netns;
    this.exec = runner.exec;
  }

  inNetns(path: string): IprouteKernelHandle {
    return new IprouteKernel(new ToolRunner(path, this.exec), this.stats);
  }

  /** argv that runs `tool` in our namespace */
  private cmd(tool: string, args: readonly string[]): string[] {
    return this.runner.argv(tool, args);
  }

  private ip(args: readonly string[], input?: string): Promise<string> {
    return this.exec(this.cmd('ip', args), input);
  }

  private async ipJson(args: readonly string[]): Promise<J[]> {
    const argv = this.cmd('ip', ['-json', ...args]);
    return parseJsonArray(await this.exec(argv), argv);
  }

  // ---- links

  async getLink(name: string): Promise<Link | undefined> {
    try {
      const [j] = await this.ipJson(['-details', 'link', 'show', 'dev', name]);
      return j === undefined ? undefined : parseLink(j);
    } catch (err) {
      // only the link is missing (ENODEV); a missing namespace (ENOENT from nsenter) is an error, as in the fake
      if (err instanceof KernelError && err.code === 'ENODEV') return undefined;
      throw err;
    }
  }

  async listLinks(): Promise<Link[]> {
    return (await this.ipJson(['-details', 'link', 'show'])).map(parseLink);
  }

  async setLinkUp(name: string): Promise<void> {
    await this.ip(['link', 'set', 'dev', name, 'up']);
  }

  async setLinkDown(name: string, o?: { missingOk?: boolean }): Promise<void> {
    await this.tolerate(this.ip(['link', 'set', 'dev', name, 'down']), o?.missingOk);
  }

  async setLinkMtu(name: string, mtu: number): Promise<void> {
    await this.ip(['link', 'set', 'dev', name, 'mtu', String(mtu)]);
  }

  async deleteLink(name: string, o?: { missingOk?: boolean }): Promise<void> {
    await this.tolerate(this.ip(['link', 'del', 'dev', name]), o?.missingOk);
  }

  async inspect(names: readonly string[], ops: readonly KernelOp[] = []): Promise<Map<string, LinkAddrs>> {
    const runs = planBatch(ops);
    const ipRun = runs.length > 0 && runs[runs.length - 1]!.tool === 'ip' ? runs.pop()! : undefined;
    if (runs.length > 0) await this.batch(ops.slice(0, ops.length - (ipRun?.lines.length ?? 0)));
    names.forEach(checkLineArg);
    const lines = [...(ipRun?.lines ?? []), ...names.map((n) => ['addr', 'show', 'dev', n])];
    const out = new Map<string, LinkAddrs>();
    if (lines.length === 0) return out;
    const input = lines.map((l) => l.join(' ')).join('\n') + '\n';
    const flags = ipRun === undefined ? ['-json', '-details', '-force', '-batch', '-'] : ['-json', '-details', '-batch', '-'];
    const argv = this.cmd('ip', flags);
    let stdout: string;
    try {
      stdout = await this.exec(argv, input);
    } catch (err) {
      if (ipRun !== undefined) throw attachOp(err, [ipRun], true, ops.length - ipRun.ops.length);
      // -force: a missing link makes the exit status 1 but the other reads still print
      if (!(err instanceof KernelError) || !isNotFound(err)) throw err;
      stdout = err.stdout ?? '';
    }
    for (const line of stdout.split('\n')) {
      for (const j of parseJsonArray(line, argv)) {
        const link = parseLink(j);
        out.set(link.name, { ...link, addrs: addrsOf(j) });
      }
    }
    return out;
  }

  // ---- addresses

  async listAddrs(o?: { dev?: string; family?: Family }): Promise<Addr[]> {
    const args = [...(o?.family ? [`-${o.family}`] : []), 'addr', 'show', ...(o?.dev !== undefined ? ['dev', o.dev] : [])];
    return (await this.ipJson(args)).flatMap(addrsOf);
  }

  async deleteAddr(dev: string, cidr: string, o?: { missingOk?: boolean }): Promise<void> {
    await this.tolerate(this.ip(['addr', 'del', cidr, 'dev', dev]), o?.missingOk);
  }

  // ---- routes

  async listRoutes(o?: { family?: Family; dev?: string; table?: number; type?: RouteSpec['type'] }): Promise<Route[]> {
    const families: Family[] = o?.family ? [o.family] : [4, 6];
    const lists = await Promise.all(
      families.map(async (f) => {
        const args = [`-${f}`, 'route', 'show'];
        if (o?.table !== undefined) args.push('table', String(o.table));
        if (o?.dev !== undefined) args.push('dev', o.dev);
        if (o?.type !== undefined) args.push('type', o.type);
        try {
          // `ip route show dev X` leaves dev out of each route: it is the filter's
          return (await this.ipJson(args)).map((j) => {
            const r = parseRoute(j, f);
            if (o?.dev !== undefined && r.dev === undefined) r.dev = o.dev;
            if (o?.type !== undefined) r.type = o.type; // likewise the type (iproute2 prints it only unfiltered)
            return r;
          });
        } catch (err) {
          if (o?.table !== undefined && isNotFound(err)) return []; // table never used
          throw err;
        }
      }),
    );
    return lists.flat();
  }

  async routeGet(dst: string): Promise<Route & { prefsrc?: string }> {
    const [j] = await this.ipJson(['route', 'get', dst]);
    const family: Family = familyOf(dst) ?? 4;
    if (j === undefined) throw new KernelError(`ip route get ${dst}: no route`, { argv: ['ip', 'route', 'get', dst], exitCode: 0, stderr: '' });
    const r: Route & { prefsrc?: string } = parseRoute(j, family);
    if (r.src !== undefined) r.prefsrc = r.src;
    return r;
  }

  // ---- vxlan, neighbours, fdb


  async listNeighs(dev: string): Promise<Neigh[]> {
    const out: Neigh[] = [];
    for (const j of await this.ipJson(['neigh', 'show', 'dev', dev])) {
      const ip = str(j.dst);
      const mac = str(j.lladdr);
      if (ip === undefined || mac === undefined) continue;
      const state = Array.isArray(j.state) ? (j.state as unknown[]) : [];
      out.push({ dev, ip, mac, permanent: state.includes('PERMANENT') });
    }
    return out;
  }

  async listFdb(dev: string): Promise<Fdb[]> {
    const argv = this.cmd('bridge', ['-json', 'fdb', 'show', 'dev', dev]);
    const out: Fdb[] = [];
    for (const j of parseJsonArray(await this.exec(argv), argv)) {
      const mac = str(j.mac);
      if (mac === undefined) continue;
      const flags = Array.isArray(j.flags) ? (j.flags as unknown[]) : [];
      const f: Fdb = { dev, mac, self: flags.includes('self'), permanent: j.state === 'permanent' };
      const dst = str(j.dst);
      if (dst !== undefined) f.dst = dst;
      out.push(f);
    }
    return out;
  }

  // ---- batch

  async batch(ops: readonly KernelOp[]): Promise<void> {
    if (ops.length === 0) return;
    const runs = planBatch(ops);
    const only = runs.length === 1 ? runs[0]! : undefined;
    if (only !== undefined && only.tool !== 'sysctl') {
      const input = only.lines.map((l) => l.join(' ')).join('\n') + '\n';
      try {
        await this.exec(this.cmd(only.tool, ['-batch', '-']), input);
      } catch (err) {
        throw attachOp(err, runs, true);
      }
      return;
    }
    if (this.netns === undefined && runs.every((r) => r.tool === 'sysctl')) {
      for (const op of ops) {
        if (op.op !== 'sysctl') continue;
        try {
          await this.writeSysctl(op.key, op.value);
        } catch (err) {
          if (!op.optional) throw err instanceof KernelError ? err.withOp(op, `sysctl ${op.key} ${op.value}`, ops.indexOf(op)) : err;
        }
      }
      return;
    }
    // Mixed: one shell script, each run a here-doc batch, markers on stderr to name the failed run.
    const argv = this.cmd('sh', ['-s']);
    try {
      await this.exec(argv, mixedScript(runs));
    } catch (err) {
      throw attachOp(err, runs, false);
    }
  }

  // ---- sysctl

  async readSysctl(key: string): Promise<string> {
    const path = sysctlPath(key);
    if (this.netns === undefined) {
      try {
        return readFileSync(path, 'utf8').trim();
      } catch (cause) {
        throw sysctlError(['cat', path], cause);
      }
    }
    return (await this.exec(this.cmd('cat', [path]))).trim();
  }

  async writeSysctl(key: string, value: string): Promise<void> {
    const path = sysctlPath(key);
    if (this.netns === undefined) {
      try {
        writeFileSync(path, value);
      } catch (cause) {
        throw sysctlError(['write', path, value], cause);
      }
      return;
    }
    await this.exec(this.cmd('sh', ['-c', 'printf "%s" "$2" > "$1"', 'sh', path, value]));
  }

  // ---- helpers

  private async tolerate(p: Promise<unknown>, missingOk: boolean | undefined): Promise<void> {
    try {
      await p;
    } catch (err) {
      if (missingOk && isNotFound(err)) return;
      throw err;
    }
  }

}

function sysctlError(argv: string[], cause: unknown): KernelError {
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new KernelError(`${argv.join(' ')}: ${msg}`, { argv, exitCode: null, stderr: msg, cause });
}
