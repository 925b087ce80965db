// shared/fs/read-bounded.ts: regular files only, at most `max` bytes, errors shaped for Go wording.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pathError, readErrorOp } from '../../../../shared/go/errors.js';
import { MAX_STATE_FILE, readFileBounded } from '../../../../shared/fs/read-bounded.js';

const dir = mkdtempSync(join(tmpdir(), 'read-bounded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What a caller makes of a failure: Go's os.PathError text. */
function goError(path: string, max: number): string {
  try {
    readFileBounded(path, max);
  } catch (err) {
    return pathError(readErrorOp(err), path, err).message;
  }
  return 'no error';
}

describe('readFileBounded', () => {
  it('reads a regular file up to and including max bytes', () => {
    const p = join(dir, 'ok');
    writeFileSync(p, 'x'.repeat(1000));
    expect(readFileBounded(p, 1000).toString()).toBe('x'.repeat(1000));
    writeFileSync(p, '');
    expect(readFileBounded(p, 10).length).toBe(0);
  });

  it('reads a file whose size stat does not know (/proc)', () => {
    expect(readFileBounded('/proc/self/status', MAX_STATE_FILE).toString()).toMatch(/^Name:/);
  });

  it('refuses one byte more than max', () => {
    const p = join(dir, 'big');
    writeFileSync(p, 'x'.repeat(1025));
    expect(goError(p, 1024)).toBe(`read ${p}: larger than 1 KiB (the most read from such a file)`);
  });

  it('refuses an endless device at once, also behind a symlink', () => {
    expect(goError('/dev/zero', MAX_STATE_FILE)).toBe('read /dev/zero: not a regular file (a character device)');
    const link = join(dir, 'zero');
    symlinkSync('/dev/zero', link);
    expect(goError(link, MAX_STATE_FILE)).toBe(`read ${link}: not a regular file (a character device)`);
  });

  it('refuses a FIFO without waiting for a writer', () => {
    const p = join(dir, 'fifo');
    expect(spawnSync('mkfifo', [p]).status).toBe(0);
    expect(goError(p, MAX_STATE_FILE)).toBe(`read ${p}: not a regular file (a named pipe)`);
  });

  it('a directory is Go\'s "read <dir>: is a directory"; a missing file is the open error', () => {
    const d = join(dir, 'd');
    mkdirSync(d);
    expect(goError(d, MAX_STATE_FILE)).toBe(`read ${d}: is a directory`);
    expect(goError(join(dir, 'nope'), MAX_STATE_FILE)).toBe(`open ${join(dir, 'nope')}: no such file or directory`);
    try {
      readFileBounded(join(dir, 'nope'), 10);
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
    }
  });
});
