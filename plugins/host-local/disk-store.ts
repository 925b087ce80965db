// The Go host-local on-disk store (backend/disk/backend.go), byte for byte, so that the Go plugin and
// ours can share one dataDir on a node:
//   <dataDir>/<network>/            mode 0755
//     <ip>                          `strings.TrimSpace(id) + "\r\n" + ifname`, no trailing newline; created
//                                   O_RDWR|O_EXCL|O_CREAT (EEXIST = taken), mode 0600 as upstream HEAD
//     last_reserved_ip.<rangeIdx>   the last IP reserved in that range set, no newline
//     lock                          empty; flock(LOCK_EX) around every Get/Release (file-lock.ts)
// Lookups walk every file under the directory (recursively, in lexical order, as filepath.Walk) and
// compare trimmed contents, exactly as Go does; a legacy file holding only the container id matches too.
//
// Where we differ from Go on purpose: every read is bounded (shared/fs/read-bounded.ts): regular files
// of at most 1 MiB. A FIFO, device or oversized file in the store is skipped by lookups (as Go skips
// unreadable files; Go would block on a FIFO or read /dev/zero forever), and last_reserved_ip is written
// O_NONBLOCK, so a FIFO there is an error instead of a hang.
import { closeSync, constants, openSync, readdirSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_STATE_FILE, readFileBounded } from '../../shared/fs/read-bounded.js';
import { pathError, readErrorOp } from '../../shared/go/errors.js';
import { type IP, formatIP, tryParseIP } from '../../shared/net/ip.js';
import { DEFAULT_DATA_DIR } from './netconf.js';
import type { FlockFn } from '../../shared/fs/flock.js';
import { FileLock } from './file-lock.js';
import { mkdirAll } from './go-fs.js';
import { type Attachment, LAST_IP_FILE_PREFIX, type Store, goTrimSpace, isValidReservation, reservationKey } from './store.js';

const FILE_MODE = 0o600;

/** os.WriteFile's flags, plus O_NONBLOCK: opening a FIFO with no reader fails (ENXIO) instead of waiting. */
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NONBLOCK;

/** A store file's contents (bounded); throws as readFileBounded does. */
const readStoreFile = (path: string, encoding: BufferEncoding): string => readFileBounded(path, MAX_STATE_FILE).toString(encoding);

export class DiskStore implements Store {
  private constructor(
    readonly dir: string,
    private readonly fileLock: FileLock,
  ) {}

  /** disk.New: creates `<dataDir>/<network>` and the lock file. */
  static open(network: string, dataDir: string, flock: FlockFn): DiskStore {
    const dir = join(dataDir === '' ? DEFAULT_DATA_DIR : dataDir, network);
    mkdirAll(dir, 0o755);
    return new DiskStore(dir, new FileLock(join(dir, 'lock'), flock));
  }

  lock(): void {
    this.fileLock.lock();
  }

  unlock(): void {
    this.fileLock.unlock();
  }

  close(): void {
    this.fileLock.close();
  }

  reserve(id: string, ifname: string, ip: IP, rangeId: string): boolean {
    const fname = join(this.dir, formatIP(ip));
    let fd: number;
    try {
      fd = openSync(fname, constants.O_RDWR | constants.O_EXCL | constants.O_CREAT, FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    try {
      const data = Buffer.from(reservationKey(id, ifname));
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off);
      closeSync(fd);
    } catch (err) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
      unlinkSync(fname);
      throw err;
    }
    const last = join(this.dir, LAST_IP_FILE_PREFIX + rangeId);
    let lastFd: number;
    try {
      lastFd = openSync(last, WRITE_FLAGS, FILE_MODE);
    } catch (err) {
      throw pathError('open', last, err);
    }
    try {
      writeFileSync(lastFd, formatIP(ip));
    } finally {
      closeSync(lastFd);
    }
    return true;
  }

  /** The allocator logs a read error and starts from the range start, as Go's does. */
  lastReservedIP(rangeId: string): IP | undefined {
    const path = join(this.dir, LAST_IP_FILE_PREFIX + rangeId);
    let data: string;
    try {
      data = readStoreFile(path, 'latin1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw pathError(readErrorOp(err), path, err);
    }
    return tryParseIP(data);
  }

  /** filepath.Walk over the store: every non-directory file, lexical order, unreadable entries skipped. */
  private *files(dir = this.dir): Generator<{ path: string; name: string; content: string }> {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        yield* this.files(path);
        continue;
      }
      let content: string;
      try {
        content = readStoreFile(path, 'utf8');
      } catch {
        continue;
      }
      yield { path, name: e.name, content };
    }
  }

  private releaseByKey(match: string): boolean {
    let found = false;
    for (const f of this.files()) {
      if (goTrimSpace(f.content) !== match) continue;
      try {
        unlinkSync(f.path);
        found = true;
      } catch {
        // Go ignores a failed remove and goes on
      }
    }
    return found;
  }

  releaseByID(id: string, ifname: string): void {
    if (!this.releaseByKey(reservationKey(id, ifname))) this.releaseByKey(goTrimSpace(id));
  }

  getByID(id: string, ifname: string): IP[] {
    const match = reservationKey(id, ifname);
    const old = goTrimSpace(id);
    const out: IP[] = [];
    for (const f of this.files()) {
      const t = goTrimSpace(f.content);
      if (t !== match && t !== old) continue;
      const ip = tryParseIP(f.name);
      if (ip) out.push(ip);
    }
    return out;
  }

  private findByKey(match: string): boolean {
    for (const f of this.files()) if (goTrimSpace(f.content) === match) return true;
    return false;
  }

  findByID(id: string, ifname: string): boolean {
    this.lock();
    try {
      return this.findByKey(reservationKey(id, ifname)) || this.findByKey(goTrimSpace(id));
    } finally {
      this.unlock();
    }
  }

  /** Spec 1.1 GC: removes reservation files (named by an IP, directly in the store) of attachments not in `valid`. */
  gc(valid: readonly Attachment[]): void {
    this.lock();
    try {
      for (const e of readdirSync(this.dir, { withFileTypes: true })) {
        if (!e.isFile() || tryParseIP(e.name) === undefined) continue;
        const path = join(this.dir, e.name);
        let content: string;
        try {
          content = readStoreFile(path, 'utf8');
        } catch {
          continue;
        }
        if (!isValidReservation(content, valid)) unlinkSync(path);
      }
    } finally {
      this.unlock();
    }
  }
}
