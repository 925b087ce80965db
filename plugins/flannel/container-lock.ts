// One flannel ADD or DEL at a time per container. A runtime that times out an ADD sends the DEL while the
// ADD still runs; without this lock the DEL replayed and removed the scratch file the ADD had just saved,
// the ADD then created the veth and took the address, and the runtime's final DEL found nothing to undo:
// veth, pod eth0 and address leaked for good. Go's flannel plugin has the same race.
//
// The lock is a flock on `<dataDir>/.<containerID>.lock`. The leading dot keeps it apart from every
// scratch file (`<dataDir>/<containerID>`): a container ID must start with a letter or digit, so no ID
// names a lock file, while `<id>.lock` would be the scratch file of a container called "<id>.lock".
// The scratch files keep the Go plugin's names and format; a Go flannel plugin on the same node does
// not lock (and never did), so mixing the two still has the old race, nothing worse.
//
// DEL removes the lock file while holding it (shared/fs/flock.ts makes that safe: a waiter that locked
// the removed inode notices and starts over), so a deleted pod leaves nothing in the dataDir. A pod whose
// DEL never comes leaves one empty lock file next to its scratch file.
import { join } from 'node:path';
import { errorMessage } from '../../shared/log.js';
import { pathError } from '../../shared/go/errors.js';
import { lockFile, processFlock, type FlockFn, type HeldLock } from '../../shared/fs/flock.js';
import { makeDataDir } from './delegate.js';

/** NAME_MAX: a longer ID's lock name is cut (two such IDs then share a lock: still correct, just serial). */
export const NAME_MAX = 255;

export function lockPath(dataDir: string, containerId: string): string {
  const name = `.${containerId}.lock`;
  return join(dataDir, name.length <= NAME_MAX ? name : `.${containerId.slice(0, NAME_MAX - 6)}.lock`);
}

/**
 * Blocks until this process holds the container's lock. With `create` (ADD) the dataDir is made first,
 * 0700 as saveScratch makes it. Without (DEL), a missing dataDir means no ADD ever got as far as saving
 * anything, so there is nothing to serialize with: undefined.
 */
export function lockContainer(dataDir: string, containerId: string, create: boolean, flock: FlockFn = processFlock): HeldLock | undefined {
  if (create) makeDataDir(dataDir);
  const path = lockPath(dataDir, containerId);
  try {
    return lockFile(path, flock);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (!create && code === 'ENOENT') return undefined;
    // an fs error is worded as Go's (`open <path>: permission denied`); a flock failure is already clear
    throw new Error(`failed to lock out other ADD/DEL of this container: ${code ? pathError('open', path, err).message : errorMessage(err)}`, { cause: err });
  }
}
