// The sanity check pkg/ns runs before entering CNI_NETNS (ns.IsNSorErr in plugins 1.1.1): the path must
// statfs to nsfs or procfs. A missing path is NetnsNotExistError, which DEL treats as "already gone".
import { goQuote } from '../../shared/cni/args.js';

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

/** statfs(2) f_type of a path; throws the errno as a Go-worded message (`no such file or directory`). */
export type StatfsType = (path: string) => number;

export class StatfsError extends Error {
  constructor(
    readonly notExist: boolean,
    msg: string,
  ) {
    super(msg);
  }
}

export function checkNetnsPath(path: string, statfsType: StatfsType): void {
  let type: number;
  try {
    type = statfsType(path);
  } catch (err) {
    const msg = `failed to Statfs ${goQuote(path)}: ${(err as Error).message}`;
    if (err instanceof StatfsError && err.notExist) throw new NetnsNotExistError(msg, { cause: err });
    throw new Error(msg, { cause: err });
  }
  if (type !== NSFS_MAGIC && type !== PROCFS_MAGIC) {
    throw new NetnsNotNsError(`unknown FS magic on ${goQuote(path)}: ${type.toString(16)}`);
  }
}
