// Go's error texts for file-system failures: *os.PathError (`open /x: no such file or directory`) and the
// syscall.Errno strings. Plugin IO errors reach the runtime verbatim (code 999), so they read as Go's.

/** Go's syscall.Errno texts for the errors file operations meet, where libuv words them differently or not at all. */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'file exists',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
  EBUSY: 'device or resource busy',
  EINVAL: 'invalid argument',
};

/** The strerror part of a Node fs error, as Go words it (`ENOENT: no such file or directory, open '/x'` → `no such file or directory`). */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  const code = e?.code;
  // A NUL byte in a path: Node refuses it before the syscall, Go gets EINVAL from the kernel.
  if (code === 'ERR_INVALID_ARG_VALUE' || code === 'ERR_INVALID_ARG_TYPE') return 'invalid argument';
  const known = code ? ERRNO_TEXT[code] : undefined;
  if (known) return known;
  const message = err instanceof Error ? err.message : String(err);
  return /^E[A-Z0-9_]+: (.*?)(, \w+ '.*')?$/s.exec(message)?.[1] ?? message;
}

/** An fs error worded as Go's *os.PathError (`<op> <path>: <errno text>`); keeps the errno `code` and the cause. */
export function pathError(op: string, path: string, err: unknown): Error & { code?: string } {
  const out = new Error(`${op} ${path}: ${errnoText(err)}`, { cause: err }) as Error & { code?: string };
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code) out.code = code;
  return out;
}

/** Go's os.PathError op for a failed read of a file: 'read' when opening worked, else 'open'. */
export function readErrorOp(err: unknown): 'open' | 'read' {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'EISDIR' || e.syscall === 'read' ? 'read' : 'open';
}
