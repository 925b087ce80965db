// The sanity check pkg/ns runs before entering a network namespace path (ns.GetNS / ns.IsNSorErr): the
// path must statfs to nsfs or procfs. A missing path is NetnsNotExistError, which DEL treats as
// "already gone". Every plugin checks CNI_NETNS through this one function, so the words are Go's everywhere
// (`failed to Statfs "<path>": no such file or directory`).
import { statfsSync } from 'node:fs';
import { goQuote } from '../go/quote.js';

const NSFS_MAGIC = 0x6e736673;
const PROCFS_MAGIC = 0x9fa0;

/** ns.NSPathNotExistErr */
export class NetnsNotExistError extends Error {
  override readonly name = 'NetnsNotExistError';
}

/** ns.NSPathNotNSErr */
export class NetnsNotNsError extends Error {
  override readonly name = 'NetnsNotNsError';
}

/** statfs(2) f_type of a path; throws a StatfsError worded as Go's syscall.Errno (`no such file or directory`). */
export type StatfsType = (path: string) => number;

export class StatfsError extends Error {
  constructor(
    readonly notExist: boolean,
    msg: string,
  ) {
    super(msg);
  }
}

/** statfs(2) through node:fs; errno texts as Go's (a NUL byte in the path is EINVAL there). */
export function statfsType(path: string): number {
  try {
    return statfsSync(path).type;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_INVALID_ARG_VALUE' || e.code === 'ERR_INVALID_ARG_TYPE') throw new StatfsError(false, 'invalid argument');
    const what = /^[A-Z]+: ([^,]+)/.exec(e.message)?.[1] ?? e.message;
    throw new StatfsError(e.code === 'ENOENT', what);
  }
}

/** Throws NetnsNotExistError, NetnsNotNsError or a plain Error (other statfs failures), each worded as Go's. */
export function checkNetnsPath(path: string, statfs: StatfsType = statfsType): void {
  let type: number;
  try {
    type = statfs(path);
  } catch (err) {
    const msg = `failed to Statfs ${goQuote(path)}: ${(err as Error).message}`;
    if (err instanceof StatfsError && err.notExist) throw new NetnsNotExistError(msg, { cause: err });
    throw new Error(msg, { cause: err });
  }
  if (type !== NSFS_MAGIC && type !== PROCFS_MAGIC) {
    throw new NetnsNotNsError(`unknown FS magic on ${goQuote(path)}: ${type.toString(16)}`);
  }
}

/** True when `path` no longer exists (a namespace deleted between a check and its use). */
export function netnsGone(path: string, check: (path: string) => void): boolean {
  try {
    check(path);
    return false;
  } catch (err) {
    return err instanceof NetnsNotExistError;
  }
}
