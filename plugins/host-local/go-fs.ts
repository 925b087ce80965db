// File-system calls whose errors read like Go's os.PathError (`mkdir /x: permission denied`), because
// host-local's IO errors reach the runtime verbatim as code-999 messages.
import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** The strerror part of a Node fs error (`ENOENT: no such file or directory, open '/x'` → `no such file or directory`). */
export function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ERR_INVALID_ARG_VALUE' || e.code === 'ERR_INVALID_ARG_TYPE') return 'invalid argument'; // a NUL byte: EINVAL in Go
  if (e.code === 'EISDIR') return 'is a directory'; // libuv words EISDIR differently from strerror
  return /^E[A-Z0-9]+: ([^,]+)/.exec(e.message)?.[1] ?? e.message;
}

/** os.PathError text: `<op> <path>: <strerror>`. */
export function pathError(op: string, path: string, err: unknown): Error {
  return new Error(`${op} ${path}: ${errnoText(err)}`, { cause: err });
}

function isDir(path: string, stat: typeof statSync): boolean | undefined {
  try {
    return stat(path).isDirectory();
  } catch {
    return undefined;
  }
}

/** os.MkdirAll: creates missing parents first, reports the first directory it failed to make. */
export function mkdirAll(path: string, mode: number): void {
  const exists = isDir(path, statSync);
  if (exists === true) return;
  if (exists === false) throw new Error(`mkdir ${path}: not a directory`);
  const parent = dirname(path);
  if (parent !== path) mkdirAll(parent, mode);
  try {
    mkdirSync(path, mode);
  } catch (err) {
    if (isDir(path, lstatSync) === true) return;
    throw pathError('mkdir', path, err);
  }
}
