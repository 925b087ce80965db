// The one logger shape for the daemon and its parts (backends, subnet managers, traffic managers):
// klog lines on stderr, as Go flanneld logs with logtostderr:
//   I1204 12:28:36.443812    9110 main.ts:123] msg
//   L mmdd hh:mm:ss.uuuuuu  pid(7) file:line] msg
// (klog's own header: local time with real microseconds, the pid right-aligned in 7 columns, the
// caller's file:line). The file:line is the caller's source file as the running code has it: the
// .ts file under tsx/vitest, `flanneld.mjs:<line>` in the built bundle (a true place in the shipped
// code, and stable for one build). Log shippers' klog parsers (fluent-bit, Loki, Vector) need that
// `file:line]` token.
// Verbosity as klog's -v: `V(log, 2).info(...)` writes only when the daemon runs with -v=2 or more.
// stdout stays free (Go prints only "timed out" there). The plugins do not log: their one output is
// the CNI result or error on stdout, and a rare note on stderr.
export type LogLevel = 'I' | 'W' | 'E';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** klog's -v: V(n) lines are written when n <= verbosity (absent: 0, only V(0)). */
  readonly verbosity?: number;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** Wall-clock time in whole microseconds (Date has only milliseconds; the performance clock has more). */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/** One klog line. `micros`: epoch microseconds; `where`: `file:line` of the caller. */
export function formatLogLine(level: LogLevel, msg: string, micros = nowMicros(), where = 'flanneld:0'): string {
  const now = new Date(Math.floor(micros / 1000));
  const stamp =
    `${pad(now.getMonth() + 1)}${pad(now.getDate())} ` +
    `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(micros % 1_000_000, 6)}`;
  return `${level}${stamp} ${String(process.pid).padStart(7)} ${where}] ${msg}\n`;
}

/** `file:line` of the frame that called `fn` (klog's caller), or `flanneld:0` when the stack says nothing. */
export function callerOf(fn: (...args: never[]) => unknown): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 1;
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, fn);
  Error.stackTraceLimit = limit;
  const m = /([^/\\ (]+?):(\d+):\d+\)?\s*$/m.exec(holder.stack ?? '');
  return m ? `${m[1]}:${m[2]}` : 'flanneld:0';
}

/** A logger writing klog lines to `write` (stderr in the daemon's main.ts), at klog verbosity `verbosity`. */
export function createLogger(write: (line: string) => void, verbosity = 0): Logger {
  const info = (m: string) => write(formatLogLine('I', m, nowMicros(), callerOf(info)));
  const warn = (m: string) => write(formatLogLine('W', m, nowMicros(), callerOf(warn)));
  const error = (m: string) => write(formatLogLine('E', m, nowMicros(), callerOf(error)));
  return { info, warn, error, verbosity };
}

/**
 * klog's `V(level)`: `log` itself when its verbosity is at least `level`, else a logger that drops
 * everything. Use for progress a healthy node repeats often (V(2): per-lease detail, as Go's vxlan).
 */
export function V(log: Logger, level: number): Logger {
  return level <= (log.verbosity ?? 0) ? log : NOOP_LOGGER;
}

/** A logger that keeps lines in memory, prefixed `I `, `W ` or `E ` (tests); every V level is kept. */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    verbosity: Number.POSITIVE_INFINITY,
    info: (m) => lines.push(`I ${m}`),
    warn: (m) => lines.push(`W ${m}`),
    error: (m) => lines.push(`E ${m}`),
  };
}

export const NOOP_LOGGER: Logger = { info() {}, warn() {}, error() {} };

/** The message of any thrown value, for wrapping (`failed to x: ${errorMessage(e)}`) and log lines. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
