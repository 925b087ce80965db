// How the iproute2 adapter runs a tool: argv (inside a netns via nsenter), binary lookup, spawn, and
// the KernelError of a failed exec (its code from iproute2/errno.ts).
//
// - Node cannot setns() in-process, so a namespace is a property of the runner: `toolArgv(path, …)` runs
//   `nsenter --net=<path> <tool> …`. (`ip -n` takes a name under /var/run/netns, not a path; CNI hands
//   us paths like /proc/<pid>/ns/net.)
// - Processes are started through shared/proc/run.ts (Bun.spawn in the compiled executables,
//   node:child_process under Node); the child is started before spawnExec returns.
// - Binaries are looked up on PATH and then in /usr/sbin, /sbin, /usr/bin, /bin: runtimes exec plugins
//   with minimal environments.
import { existsSync } from 'node:fs';
import { runProcess } from '../../proc/run.js';
import { KernelError } from '../errors.js';
import { codeFromStderr } from './errno.js';

/** Runs argv with optional stdin; resolves stdout, rejects KernelError. Injectable for tests. */
export type Exec = (argv: readonly string[], input?: string) => Promise<string>;

/** argv that runs `tool args…` in this process's namespace, or (with `netns`) inside the one at that path. */
export function toolArgv(netns: string | undefined, tool: string, args: readonly string[]): string[] {
  const argv = [resolveBin(tool), ...args];
  return netns === undefined ? argv : [resolveBin('nsenter'), `--net=${netns}`, ...argv];
}

const FALLBACK_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const resolved = new Map<string, string>();

/** Absolute path of a tool (`ip`, `bridge`, `nsenter`, `sh`, `iptables`), or the bare name if not found. */
export function resolveBin(name: string): string {
  let p = resolved.get(name);
  if (p !== undefined) return p;
  p = name;
  const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), ...FALLBACK_DIRS];
  for (const d of dirs) {
    if (existsSync(`${d}/${name}`)) {
      p = `${d}/${name}`;
      break;
    }
  }
  resolved.set(name, p);
  return p;
}

export const spawnExec: Exec = async (argv, input) => {
  let r;
  try {
    r = await runProcess(argv, { input: input ?? '' });
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    throw kernelErrorFrom(argv, null, e.message, { input, cause: e });
  }
  const stdout = r.stdout.toString();
  if (r.code !== 0) throw kernelErrorFrom(argv, r.code, r.stderr.toString(), { input, stdout });
  return stdout;
};


/** What an adapter has done so far (one counter per Kernel tree: `inNetns` views share it). */
export interface ExecStats {
  /** processes spawned (or, with an injected Exec, calls of it) */
  execs: number;
}

/** `exec`, counting each call in `stats`. */
export function countingExec(exec: Exec, stats: ExecStats): Exec {
  return (argv, input) => {
    stats.execs++;
    return exec(argv, input);
  };
}

/**
 * An Exec's failure with its code: spawnExec's errors have it already; an injected Exec (tests) may
 * reject with a KernelError that carries only stderr, and the adapter, not the caller, reads it.
 */
export function classifyingExec(exec: Exec): Exec {
  return async (argv, input) => {
    try {
      return await exec(argv, input);
    } catch (err) {
      if (!(err instanceof KernelError) || err.code !== 'UNKNOWN' || err.stderr === '') throw err;
      throw new KernelError(err.message, {
        code: codeFromStderr(err.stderr),
        argv: err.argv,
        exitCode: err.exitCode,
        stderr: err.stderr,
        ...(err.line !== undefined ? { line: err.line } : {}),
        ...(err.stdout !== undefined ? { stdout: err.stdout } : {}),
        cause: err.cause,
      });
    }
  };
}

/** One tool runner per namespace: what every exec-based adapter (ip, iptables, nft) is built on. */
export class ToolRunner {
  readonly exec: Exec;

  constructor(
    readonly netns: string | undefined,
    exec: Exec,
  ) {
    this.exec = exec === spawnExec ? exec : classifyingExec(exec);
  }

  /** argv that runs `tool args…` in this runner's namespace */
  argv(tool: string, args: readonly string[]): string[] {
    return toolArgv(this.netns, tool, args);
  }

  run(tool: string, args: readonly string[], input?: string): Promise<string> {
    return this.exec(this.argv(tool, args), input);
  }
}

/** Builds the KernelError for a failed exec; the message is the tool's last stderr line, as Go's netlink errors read. */
export function kernelErrorFrom(
  argv: readonly string[],
  exitCode: number | null,
  stderr: string,
  o?: { input?: string; cause?: unknown; stdout?: string },
): KernelError {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  // `ip -batch` / `bridge -batch` end with "Command failed -:N": name the line.
  let line: string | undefined;
  const failed = lines.findIndex((l) => /^Command failed -:\d+$/.test(l));
  if (failed >= 0 && o?.input !== undefined) {
    const n = Number(/(\d+)$/.exec(lines[failed]!)![1]);
    line = o.input.split('\n')[n - 1];
  }
  const meaningful = lines.filter(
    (l) => !/^Command failed -:\d+$/.test(l) && l !== 'Dump terminated' && !l.startsWith('@@kernel-run '),
  );
  const reason =
    meaningful.map((l) => l.replace(/^RTNETLINK answers: /, '').replace(/^Error: /, '')).join('; ') ||
    (o?.cause instanceof Error ? o.cause.message : `exit status ${exitCode ?? 'signal'}`);
  const what = line !== undefined ? `"${line}"` : argv.join(' ');
  return new KernelError(`${what}: ${reason}`, {
    code: codeFromStderr(stderr),
    argv,
    exitCode,
    stderr,
    ...(line !== undefined ? { line } : {}),
    ...(o?.stdout ? { stdout: o.stdout } : {}),
    cause: o?.cause,
  });
}
