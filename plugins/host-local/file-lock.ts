// A real flock(2) on `<dataDir>/<network>/lock`, the lock the Go host-local takes (go-filemutex:
// open O_CREAT|O_RDONLY 0750, flock LOCK_EX, LOCK_UN). Both implementations lock the same open file
// description, so a Go and a TypeScript host-local on one node exclude each other.
//
// How we flock from Node (the N-API addon or flock(1)) lives in shared/fs/flock.ts, shared with the
// flannel plugin's per-container lock. world.ts passes its processFlock (the addon when the build produced it
// next to the executable, flock(1) otherwise).
// Unlock closes the fd (which drops the lock with no syscall beyond close) and reopens it on the next lock.
// The store's lock file is never removed (as in Go), so no inode check is needed here.
import { closeSync, constants, openSync } from 'node:fs';
import type { FlockFn } from '../../shared/fs/flock.js';

export class FileLock {
  private fd: number | undefined;

  /** Opens (creating) the lock file, like filemutex.New. */
  constructor(
    readonly path: string,
    private readonly flockExclusive: FlockFn,
  ) {
    this.fd = openLockFile(path);
  }

  lock(): void {
    this.fd ??= openLockFile(this.path);
    this.flockExclusive(this.fd);
  }

  /** Closing our only reference to the open file description releases the lock. */
  unlock(): void {
    this.close();
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function openLockFile(path: string): number {
  return openSync(path, constants.O_CREAT | constants.O_RDONLY, 0o750);
}
