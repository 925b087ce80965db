// stderr → KernelErrorCode: the ONLY place that reads what a tool printed to decide what happened.
//
// iproute2 words one errno differently per object ("Cannot find device", `Device "x" does not exist.`,
// "ipv4: Address not found."), and iptables/nft add their own words, so this table is collected from
// iproute2 6.1, iptables 1.8.9 (nft and legacy) and nft 1.0.6. Order matters: the first match wins.
import { KernelError, type KernelErrorCode } from '../errors.js';

const TABLE: ReadonlyArray<readonly [RegExp, KernelErrorCode]> = [
  [/Cannot find device/, 'ENODEV'],
  [/Device ".*" does not exist/, 'ENODEV'],
  [/No such device/, 'ENODEV'],
  [/No such process/, 'ESRCH'], // route del of a missing route
  [/address not found/i, 'EADDRNOTAVAIL'], // addr del: "ipv4: Address not found." / "ipv6: address not found."
  [/Cannot assign requested address/, 'EADDRNOTAVAIL'], // v6 addr del
  [/does not exist/i, 'ENOENT'], // iptables `Chain 'X' does not exist`, "FIB table does not exist"
  [/No such file or directory/i, 'ENOENT'], // neigh/fdb del, missing sysctl, nsenter: netns path gone, nft
  [/No chain\/target\/match by that name/, 'ENOENT'], // iptables -X/-F of a missing chain
  [/Bad rule \(does a matching rule exist in that chain\?\)/, 'ENOENT'], // iptables -D of a missing rule
  [/Directory nonexistent/, 'ENOENT'], // sh: sysctl of a missing interface
  [/File exists/, 'EEXIST'],
  [/Address already assigned/, 'EEXIST'],
  [/Chain already exists/, 'EEXIST'],
  [/Operation not permitted/, 'EPERM'],
  [/Permission denied/, 'EACCES'],
  [/Device or resource busy/, 'EBUSY'],
  [/Operation not supported|Not supported/, 'EOPNOTSUPP'],
  [/Network is unreachable/, 'ENETUNREACH'],
  [/Invalid argument|invalid gateway|Invalid "/i, 'EINVAL'],
  [/Input\/output error/, 'EIO'],
];

/** The code of a failed command from its stderr; `UNKNOWN` when none of the known wordings is there. */
export function codeFromStderr(stderr: string): KernelErrorCode {
  for (const [re, code] of TABLE) if (re.test(stderr)) return code;
  return 'UNKNOWN';
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
    code: codeFromStderr(stderr),
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
