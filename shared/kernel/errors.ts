// KernelError: the only error that leaves shared/kernel.
//
// It carries a stable `code`, as undici's errors do (lib/core/errors.js) and as Node's system errors do:
// the errno the kernel answered (`EEXIST`, `ENODEV`, ...), set by the adapter that talked to the kernel.
// Callers decide on the code (`isNotFound(err)`, `isExists(err)`, `err.code === 'EPERM'`), never on the
// message: the message is for people (and keeps the adapter's wording, which logs show). The iproute2
// adapter derives the code from the tool's stderr (iproute2/errno.ts, the only stderr reader); a netlink
// adapter would take it from the errno in the reply; fakes set it directly.
import type { KernelOp } from './kernel.js';

/** errno names (Linux) a kernel call can fail with; `UNKNOWN`: the adapter could not tell. */
export type KernelErrorCode =
  | 'ENOENT'
  | 'EEXIST'
  | 'EPERM'
  | 'EACCES'
  | 'EINVAL'
  | 'EBUSY'
  | 'ENODEV'
  | 'ESRCH'
  | 'EADDRNOTAVAIL'
  | 'EOPNOTSUPP'
  | 'ENETUNREACH'
  | 'EIO'
  | 'ENOBUFS'
  | 'EAGAIN'
  | 'ENOMEM'
  | 'EMSGSIZE'
  | 'ERANGE'
  | 'ENOSPC'
  | 'EBADF'
  | 'ENAMETOOLONG'
  | 'EAFNOSUPPORT'
  | 'EPROTONOSUPPORT'
  | 'EADDRINUSE'
  | 'ENETDOWN'
  | 'ETIMEDOUT'
  | 'UNKNOWN';

/** strerror(3) of each code: how a fake words the failure, as the kernel would. */
export const ERRNO_TEXT: Readonly<Record<KernelErrorCode, string>> = {
  ENOENT: 'No such file or directory',
  EEXIST: 'File exists',
  EPERM: 'Operation not permitted',
  EACCES: 'Permission denied',
  EINVAL: 'Invalid argument',
  EBUSY: 'Device or resource busy',
  ENODEV: 'No such device',
  ESRCH: 'No such process',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EOPNOTSUPP: 'Operation not supported',
  ENETUNREACH: 'Network is unreachable',
  EIO: 'Input/output error',
  ENOBUFS: 'No buffer space available',
  EAGAIN: 'Resource temporarily unavailable',
  ENOMEM: 'Cannot allocate memory',
  EMSGSIZE: 'Message too long',
  ERANGE: 'Numerical result out of range',
  ENOSPC: 'No space left on device',
  EBADF: 'Bad file descriptor',
  ENAMETOOLONG: 'File name too long',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  EPROTONOSUPPORT: 'Protocol not supported',
  EADDRINUSE: 'Address already in use',
  ENETDOWN: 'Network is down',
  ETIMEDOUT: 'Connection timed out',
  UNKNOWN: 'unknown error',
};

/** Linux errno numbers (x86-64 and the generic ABI, which agree on these) of the codes above: what a
 * netlink reply or a syscall of the native shim gives. */
const ERRNO_NUMBER: Readonly<Record<Exclude<KernelErrorCode, 'UNKNOWN'>, number>> = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOSPC: 28,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  EMSGSIZE: 90,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
};

const CODE_OF_NUMBER: ReadonlyMap<number, KernelErrorCode> = new Map(
  Object.entries(ERRNO_NUMBER).map(([code, n]) => [n, code as KernelErrorCode]),
);

/** The code of an errno number (its sign ignored: netlink replies carry -errno); `UNKNOWN` if not listed. */
export function codeFromErrno(errno: number): KernelErrorCode {
  return CODE_OF_NUMBER.get(Math.abs(errno)) ?? 'UNKNOWN';
}

/** strerror(3) of an errno number: the text of its code, or `errno N` for one not listed. */
export function errnoText(errno: number): string {
  const code = codeFromErrno(errno);
  return code === 'UNKNOWN' ? `errno ${Math.abs(errno)}` : ERRNO_TEXT[code];
}

export interface KernelErrorOptions {
  /** the errno; `UNKNOWN` when not given */
  code?: KernelErrorCode;
  /** the op of a batch that failed */
  op?: KernelOp;
  /** its position in the batch (0-based) */
  index?: number;
  cause?: unknown;
  /** adapter detail: argv of the exec that failed (for a batch: the whole command) */
  argv?: readonly string[];
  exitCode?: number | null;
  stderr?: string;
  /** adapter detail: the batch line that failed, when the tool named it */
  line?: string;
  /** what the command printed before failing (reads with `-force`) */
  stdout?: string;
}

export class KernelError extends Error {
  override readonly name = 'KernelError';
  readonly code: KernelErrorCode;
  /** For a batch: the op that failed, and its index in the ops passed. */
  readonly op?: KernelOp;
  readonly index?: number;
  /** Adapter detail (iproute2): argv, exit status, stderr, failed batch line, stdout. [] / null / '' when none. */
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;
  readonly line?: string;
  readonly stdout?: string;

  constructor(message: string, o: KernelErrorOptions = {}) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.argv = o.argv ?? [];
    this.exitCode = o.exitCode ?? null;
    this.stderr = o.stderr ?? '';
    this.code = o.code ?? 'UNKNOWN';
    if (o.op !== undefined) this.op = o.op;
    if (o.index !== undefined) this.index = o.index;
    if (o.line !== undefined) this.line = o.line;
    if (o.stdout !== undefined) this.stdout = o.stdout;
  }

  /** The same error, naming the batch op (its index, and the line when the adapter knows it) that failed. */
  withOp(op: KernelOp, line?: string, index?: number): KernelError {
    const l = line ?? this.line;
    const reason = this.message.replace(/^(".*?"|\S.*?): /, '');
    const i = index ?? this.index;
    return new KernelError(l !== undefined ? `"${l}": ${reason}` : this.message, {
      code: this.code,
      argv: this.argv,
      exitCode: this.exitCode,
      stderr: this.stderr,
      ...(l !== undefined ? { line: l } : {}),
      ...(this.stdout !== undefined ? { stdout: this.stdout } : {}),
      ...(i !== undefined ? { index: i } : {}),
      cause: this.cause,
      op,
    });
  }
}

const NOT_FOUND: ReadonlySet<KernelErrorCode> = new Set(['ENOENT', 'ESRCH', 'ENODEV', 'EADDRNOTAVAIL']);

/**
 * The object the call addressed is not there (link, address, route, neighbour, chain, rule, netns):
 * Go's ErrLinkNotFound / ENOENT / ESRCH / ENODEV / EADDRNOTAVAIL.
 */
export function isNotFound(err: unknown): boolean {
  return err instanceof KernelError && NOT_FOUND.has(err.code);
}

/** The object the call would create is already there (EEXIST). */
export function isExists(err: unknown): boolean {
  return err instanceof KernelError && err.code === 'EEXIST';
}
