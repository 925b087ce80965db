// shared/fs/flock.ts lockFile: an exclusive flock on a lock file that its holder may delete.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, unlinkSync, writeFileSync, fstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lockFile, utilFlock, type FlockFn } from '../../../../shared/fs/flock.js';
import { lockContainer, lockPath } from '../../../../plugins/flannel/container-lock.js';

const dir = mkdtempSync(join(tmpdir(), 'flock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const flock = utilFlock();
/** 0: flock(1) in another process got the lock at once; 1: it is held. */
const tryLockElsewhere = (p: string) => spawnSync('flock', ['-n', p, 'true']).status;

describe('lockFile', () => {
  it('excludes another process until released; release(true) removes the file', () => {
    const p = join(dir, 'a.lock');
    const held = lockFile(p, flock);
    expect(tryLockElsewhere(p)).toBe(1);
    held.release();
    expect(tryLockElsewhere(p)).toBe(0);
    const again = lockFile(p, flock);
    again.release(true);
    expect(existsSync(p)).toBe(false);
    again.release(true); // idempotent
  });

  it('starts over when the file it locked was removed (and replaced) meanwhile', () => {
    const p = join(dir, 'b.lock');
    let calls = 0;
    let lockedIno = 0;
    // the first flock "waits" while the holder removes the file and a newcomer creates a fresh one
    const racing: FlockFn = (fd) => {
      calls++;
      if (calls === 1) {
        unlinkSync(p);
        writeFileSync(p, '');
      }
      lockedIno = fstatSync(fd).ino;
    };
    const held = lockFile(p, racing);
    expect(calls).toBe(2);
    expect(lockedIno).toBe(statSync(p).ino);
    held.release(true);
  });

  it('starts over when the file it locked is gone', () => {
    const p = join(dir, 'c.lock');
    let calls = 0;
    const held = lockFile(p, () => {
      if (++calls === 1) unlinkSync(p);
    });
    expect(calls).toBe(2);
    expect(existsSync(p)).toBe(true);
    held.release(true);
  });
});

describe('flannel container lock', () => {
  it('is <dataDir>/.<id>.lock, apart from every scratch file; over-long IDs are cut to a legal name', () => {
    expect(lockPath('/d', 'abc')).toBe('/d/.abc.lock');
    const long = 'a'.repeat(300);
    const name = lockPath('/d', long).slice(3);
    expect(name.length).toBeLessThanOrEqual(255);
    expect(name).toMatch(/^\.a+\.lock$/);
  });

  it('DEL without a dataDir gets no lock and creates nothing; ADD makes the dataDir', () => {
    const dataDir = join(dir, 'flannel-data');
    expect(lockContainer(dataDir, 'c1', false, flock)).toBeUndefined();
    expect(existsSync(dataDir)).toBe(false);
    const held = lockContainer(dataDir, 'c1', true, flock)!;
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(tryLockElsewhere(join(dataDir, '.c1.lock'))).toBe(1);
    held.release(true);
    expect(existsSync(join(dataDir, '.c1.lock'))).toBe(false);
  });
});
