// The one logger shape for the daemon and its parts (backends, subnet managers, traffic managers):
// klog-like lines on stderr (`I1125 06:16:17.123456 4242 flanneld] msg`), as Go flanneld logs with
// logtostderr. stdout stays free (Go prints only "timed out" there). The plugins do not log: their
// one output is the CNI result or error on stdout, and a rare note on stderr.
export type LogLevel = 'I' | 'W' | 'E';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

export function formatLogLine(level: LogLevel, msg: string, now = new Date()): string {
  const stamp =
    `${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())} ` +
    `${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())}.${pad(now.getUTCMilliseconds(), 3)}000`;
  return `${level}${stamp} ${process.pid} flanneld] ${msg}\n`;
}

/** A logger writing to `write` (stderr in the daemon's main.ts). */
export function createLogger(write: (line: string) => void): Logger {
  return {
    info: (m) => write(formatLogLine('I', m)),
    warn: (m) => write(formatLogLine('W', m)),
    error: (m) => write(formatLogLine('E', m)),
  };
}

/** A logger that keeps lines in memory, prefixed `I `, `W ` or `E ` (tests). */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
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
