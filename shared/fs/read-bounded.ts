// The one way the plugins and the runner read a config or state file: a regular file, at most `max`
// bytes. An unbounded read (Node's readFileSync) of an endless file such as /dev/zero grows memory until
// the runtime kills the plugin, and opening a FIFO blocks until some writer appears; here both are a
// clear error at once. Go's readers have no such cap (only bufio.Scanner stops at a 64 KiB line with
// "token too long"), so every cap is far above what a well-formed file holds.
//
// Errors look like Node's fs errors (a `code`, `syscall`, `EXXX: text` message) so the callers' existing
// Go-style wording still applies (`open <path>: no such file or directory`, `read <path>: is a
// directory`), plus two of our own: `ENOTREG: not a regular file (<kind>)` and `EFBIG: larger than <cap>`.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** bufio.MaxScanTokenSize: Go's line scanner stops at a longer line with "bufio.Scanner: token too long". */
export const MAX_LINE = 64 * 1024;

/**
 * Small state and config files: subnet.env (~200 bytes), a host-local reservation (an ID + ifname: at
 * most ~128 KiB, the kernel's cap on one environment string), last_reserved_ip, resolv.conf.
 */
export const MAX_STATE_FILE = 1024 * 1024;

/**
 * Files that carry a whole network config: conflist/conf files, flannel's saved delegate config, libcni's
 * result cache (the config base64'd plus a result). 4× the 4 MiB a plugin accepts on stdin, so whatever a
 * plugin accepted can be saved and read back.
 */
export const MAX_NETCONF_FILE = 16 * 1024 * 1024;

const CHUNK = 64 * 1024;

/** An error shaped like Node's fs errors, for the callers' Go-style wording. */
function fsError(code: string, text: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${text}`), { code, syscall, path });
}

function kind(st: Stats): string {
  if (st.isFIFO()) return 'a named pipe';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

export function formatSize(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`;
}

/**
 * Reads all of the regular file at `path`, failing (without reading further) once it holds more than
 * `max` bytes. Open errors are Node's own (ENOENT, EACCES, ...); a directory is EISDIR (syscall read, as
 * Go fails there); a FIFO, device or socket is ENOTREG; an oversized file is EFBIG.
 */
export function readFileBounded(path: string, max: number): Buffer {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused right after, by fstat); for a
  // regular file the flag changes nothing.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw fsError('EISDIR', 'illegal operation on a directory', 'read', path);
    if (!st.isFile()) throw fsError('ENOTREG', `not a regular file (${kind(st)})`, 'read', path);
    const tooBig = () => fsError('EFBIG', `larger than ${formatSize(max)} (the most read from such a file)`, 'read', path);
    if (st.size > max) throw tooBig();
    // st.size is a hint: /proc files say 0, and a file may grow while read. As readFileSync, stop once
    // st.size bytes came; past that (or with no size) read on to EOF, never beyond max + 1 bytes.
    const size = st.size;
    let buf = Buffer.allocUnsafe(Math.min(size > 0 ? size + 1 : CHUNK, max + 1));
    let total = 0;
    for (;;) {
      if (total === buf.length) {
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, max + 1));
        buf.copy(bigger, 0, 0, total);
        buf = bigger;
      }
      const n = readSync(fd, buf, total, buf.length - total, null);
      if (n === 0) break;
      total += n;
      if (total > max) throw tooBig();
      if (total === size) break;
    }
    return buf.subarray(0, total);
  } finally {
    closeSync(fd);
  }
}
