// KernelError: the only error that leaves shared/kernel.
//
// This is the only file that reads a command's stderr. Callers ask `isNotFound(err)` (Go's
// ErrLinkNotFound / ENOENT / ESRCH) or `isExists(err)` (EEXIST) instead of matching text.
// iproute2 words the same errno differently per object, so the patterns below are collected from
// iproute2 6.1 and iptables 1.8.9 (nft and legacy) as observed on this machine.

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

  constructor(
    message: string,
    o: { argv: readonly string[]; exitCode: number | null; stderr: string; line?: string; cause?: unknown; stdout?: string },
  ) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.argv = o.argv;
    this.exitCode = o.exitCode;
    this.stderr = o.stderr;
    if (o.line !== undefined) this.line = o.line;
    if (o.stdout !== undefined) this.stdout = o.stdout;
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
    argv,
    exitCode,
    stderr,
    ...(line !== undefined ? { line } : {}),
    ...(o?.stdout ? { stdout: o.stdout } : {}),
    cause: o?.cause,
  });
}

/**
 * For a mixed batch run as one `sh -s` script: `runs[i]` are the lines of run i, which the script
 * announces with `@@kernel-run i` on stderr. Returns the line that failed, if it can be told.
 */
export function failedBatchLine(stderr: string, runs: readonly (readonly string[])[]): string | undefined {
  let run: number | undefined;
  let n: number | undefined;
  for (const l of stderr.split('\n')) {
    const m = /^@@kernel-run (\d+)$/.exec(l.trim());
    if (m) {
      run = Number(m[1]);
      n = undefined;
      continue;
    }
    const f = /^Command failed -:(\d+)$/.exec(l.trim());
    if (f) n = Number(f[1]);
  }
  if (run === undefined) return undefined;
  const lines = runs[run];
  if (lines === undefined) return undefined;
  if (n !== undefined) return lines[n - 1];
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
