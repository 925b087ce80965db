// libcni for our runtime client (scripts/cnitool): config discovery, the plugin chain with prevResult
// injection, runtimeConfig from capabilities, and the result cache, as containernetworking/cni libcni does.
import type { JsonObject } from './go-json.js';

/** Go's syscall.Errno texts for the errors file operations meet; libuv words a few differently. */
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

/** An fs error worded as Go's *os.PathError: `<op> <path>: <errno text>`. */
export function goPathError(op: string, path: string, err: unknown): Error & { code?: string } {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  let text = code ? ERRNO_TEXT[code] : undefined;
  if (!text) {
    const m = /^[A-Z0-9_]+: (.*?)(, \w+ '.*')?$/s.exec(err instanceof Error ? err.message : String(err));
    text = m?.[1] ?? (err instanceof Error ? err.message : String(err));
  }
  const out = new Error(`${op} ${path}: ${text}`) as Error & { code?: string };
  if (code) out.code = code;
  return out;
}

export type { JsonObject };
