// KernelError: the only error that leaves shared/kernel.
//
// This is the only file that reads a command's stderr. Callers ask `isNotFound(err)` (Go's
// ErrLinkNotFound / ENOENT / ESRCH) or `isExists(err)` (EEXIST) instead of matching text.
// iproute2 words the same errno differently per object, so the patterns below are collected from
// iproute2 6.1 and iptables 1.8.9 (nft and legacy) as observed on this machine.

import type { KernelOp } from './kernel.js';

export class KernelError extends Error {
  override readonly name = 'KernelError';
  /** argv of the exec that failed (for a batch: the whole command, e.g. `nsenter --net=/p ip -batch -`) */
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  /** for a batch: the line that failed (1-based in the stdin sent), when the tool named it */
  readonly line?: string;
  /** what the command printed before failing (reads with `-force`) */
  readonly stdout?: string;
  /** for a batch: the op that failed, when it can be told */
  readonly op?: KernelOp;

  constructor(
    message: string,
    o: {
      argv: readonly string[];
      exitCode: number | null;
      stderr: string;
      line?: string;
      cause?: unknown;
      stdout?: string;
      op?: KernelOp;
    },
  ) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.argv = o.argv;
    this.exitCode = o.exitCode;
    this.stderr = o.stderr;
    if (o.line !== undefined) this.line = o.line;
    if (o.stdout !== undefined) this.stdout = o.stdout;
    if (o.op !== undefined) this.op = o.op;
  }

  /** The same error, naming the batch op (and line) that failed. */
  withOp(op: KernelOp, line?: string): KernelError {
    const l = line ?? this.line;
    const reason = this.message.replace(/^(".*?"|\S.*?): /, '');
    return new KernelError(l !== undefined ? `"${l}": ${reason}` : this.message, {
      argv: this.argv,
      exitCode: this.exitCode,
      stderr: this.stderr,
      ...(l !== undefined ? { line: l } : {}),
      ...(this.stdout !== undefined ? { stdout: this.stdout } : {}),
      cause: this.cause,
      op,
    });
  }
}

/**
 * Where a batch failed: `run` from the `@@kernel-run i` markers of a mixed (sh) batch, `line` (1-based,
 * within the run) from iproute2's "Command failed -:N".
 */
export function batchFailure(stderr: string): { run?: number; line?: number } {
  const out: { run?: number; line?: number } = {};
  for (const l of stderr.split('\n')) {
    const m = /^@@kernel-run (\d+)$/.exec(l.trim());
    if (m) {
      out.run = Number(m[1]);
      delete out.line;
      continue;
    }
    const f = /^Command failed -:(\d+)$/.exec(l.trim());
    if (f) out.line = Number(f[1]);
  }
  return out;
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
    argv,
    exitCode,
    stderr,
    ...(line !== undefined ? { line } : {}),
    ...(o?.stdout ? { stdout: o.stdout } : {}),
    cause: o?.cause,
  });
}

/** For a mixed batch: the line that failed, given each run's lines (see batchFailure). */
export function failedBatchLine(stderr: string, runs: readonly (readonly string[])[]): string | undefined {
  const { run, line } = batchFailure(stderr);
  if (run === undefined) return undefined;
  const lines = runs[run];
  if (lines === undefined) return undefined;
  if (line !== undefined) return lines[line - 1];
  return lines.length === 1 ? lines[0] : undefined;
}

const NOT_FOUND = [
  /does not exist/i, // `Device "x" does not exist.`, iptables `Chain 'X' does not exist`, `FIB table does not exist`
  /Cannot find device/,
  /No such process/, // ESRCH: route del
  /No such file or directory/i, // ENOENT: neigh/fdb del, missing sysctl, missing netns path
  /address not found/i, // addr del: "ipv4: Address not found." / "ipv6: address not found."
  /Cannot assign requested address/, // v6 addr del
  /No chain\/target\/match by that name/, // iptables -X/-F of a missing chain
  /Bad rule \(does a matching rule exist in that chain\?\)/, // iptables -D of a missing rule
  /No such device/,
  /Directory nonexistent/, // sh: sysctl of a missing interface
  /cannot open .*: No such file/, // nsenter: netns path gone
];

const EXISTS = [/File exists/, /Address already assigned/, /Chain already exists/];

function stderrOf(err: unknown): string | undefined {
  if (err instanceof KernelError) return err.stderr;
  return undefined;
}

/** The object the command addressed is not there (link, address, route, neighbour, chain, rule, netns). */
export function isNotFound(err: unknown): boolean {
  const s = stderrOf(err);
  if (s === undefined) return false;
  return NOT_FOUND.some((re) => re.test(s));
}

/** The object the command would create is already there (EEXIST). */
export function isExists(err: unknown): boolean {
  const s = stderrOf(err);
  if (s === undefined) return false;
  return EXISTS.some((re) => re.test(s));
}
