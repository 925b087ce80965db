import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tmp from 'tmp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatIP, parseIP } from '../../../../shared/net/ip.js';
import { DiskStore } from '../../../../plugins/host-local/disk-store.js';
import { nativeFlock, utilFlock } from '../../../../shared/fs/flock.js';

let dir: tmp.DirResult;
let store: DiskStore;
const net = () => join(dir.name, 'mynet');
/** flock(1) -n from another process: 0 when the lock is free, 1 when someone holds it */
const tryLockElsewhere = () => spawnSync('flock', ['-n', join(net(), 'lock'), 'true']).status;

beforeEach(() => {
  dir = tmp.dirSync({ unsafeCleanup: true });
  store = DiskStore.open('mynet', dir.name, utilFlock());
});
afterEach(() => {
  store.close();
  dir.removeCallback();
});

describe('DiskStore: the Go on-disk format', () => {
  it('creates the store dir (0755) and an empty lock file on open', () => {
    expect(statSync(net()).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(net(), 'lock'), 'utf8')).toBe('');
  });

  it('writes `<id>\\r\\n<ifname>` named by the IP and last_reserved_ip.<n> without newline', () => {
    expect(store.reserve('  dummy\n ', 'eth0', parseIP('10.1.2.2'), '0')).toBe(true);
    expect(store.reserve('dummy', 'eth0', parseIP('2001:db8:1::2'), '1')).toBe(true);
    expect(readFileSync(join(net(), '10.1.2.2'))).toEqual(Buffer.from('dummy\r\neth0'));
    expect(readFileSync(join(net(), '2001:db8:1::2'), 'utf8')).toBe('dummy\r\neth0');
    expect(readFileSync(join(net(), 'last_reserved_ip.0'), 'utf8')).toBe('10.1.2.2');
    expect(readFileSync(join(net(), 'last_reserved_ip.1'), 'utf8')).toBe('2001:db8:1::2');
    expect(statSync(join(net(), '10.1.2.2')).mode & 0o777).toBe(0o600);
  });

  it('treats an existing file as taken', () => {
    writeFileSync(join(net(), '10.1.2.2'), 'someone-else');
    expect(store.reserve('dummy', 'eth0', parseIP('10.1.2.2'), '0')).toBe(false);
    expect(readFileSync(join(net(), '10.1.2.2'), 'utf8')).toBe('someone-else');
  });

  it('reads the last reserved IP, ignoring junk', () => {
    expect(store.lastReservedIP('0')).toBeUndefined();
    writeFileSync(join(net(), 'last_reserved_ip.0'), '10.1.2.9');
    expect(formatIP(store.lastReservedIP('0')!)).toBe('10.1.2.9');
    writeFileSync(join(net(), 'last_reserved_ip.0'), '10.1.2.9\n');
    expect(store.lastReservedIP('0')).toBeUndefined();
  });

  it('releases by (id, ifname), else legacy id; keeps lock and last_reserved_ip', () => {
    store.reserve('a', 'eth0', parseIP('10.0.0.2'), '0');
    store.reserve('a', 'eth1', parseIP('10.0.0.3'), '0');
    writeFileSync(join(net(), '10.0.0.4'), 'b');
    mkdirSync(join(net(), 'sub'));
    writeFileSync(join(net(), 'sub', '10.0.0.5'), 'a\r\neth0\n');
    expect(store.getByID('a', 'eth0').map(formatIP)).toEqual(['10.0.0.2', '10.0.0.5']);
    expect(store.findByID('b', 'eth9')).toBe(true);
    store.releaseByID('a', 'eth0');
    expect(readdirSync(net()).sort()).toEqual(['10.0.0.3', '10.0.0.4', 'last_reserved_ip.0', 'lock', 'sub']);
    expect(readdirSync(join(net(), 'sub'))).toEqual([]); // filepath.Walk recurses, as Go
    store.releaseByID('b', 'eth0');
    store.releaseByID('nobody', 'eth0');
    expect(readdirSync(net()).sort()).toEqual(['10.0.0.3', 'last_reserved_ip.0', 'lock', 'sub']);
    expect(store.findByID('b', 'eth0')).toBe(false);
  });

  it('GC removes reservations not in the valid list and nothing else', () => {
    store.reserve('keep', 'eth0', parseIP('10.0.0.2'), '0');
    store.reserve('keep', 'eth1', parseIP('10.0.0.3'), '0');
    store.reserve('gone', 'eth0', parseIP('10.0.0.4'), '0');
    writeFileSync(join(net(), '10.0.0.9'), 'legacy');
    store.gc([
      { containerId: 'keep', ifname: 'eth0' },
      { containerId: 'legacy', ifname: 'eth0' },
    ]);
    expect(readdirSync(net()).sort()).toEqual(['10.0.0.2', '10.0.0.9', 'last_reserved_ip.0', 'lock']);
    store.gc([]);
    expect(readdirSync(net()).sort()).toEqual(['last_reserved_ip.0', 'lock']);
  });
});

describe('DiskStore: hostile files in the store are never read unbounded', () => {
  const mkfifo = (p: string) => expect(spawnSync('mkfifo', [p]).status).toBe(0);

  it('lookups, release and GC skip a FIFO, an endless device and an oversized file (Go would hang on the first two)', () => {
    store.reserve('a', 'eth0', parseIP('10.0.0.2'), '0');
    mkfifo(join(net(), '10.0.0.7'));
    symlinkSync('/dev/zero', join(net(), '10.0.0.8'));
    writeFileSync(join(net(), '10.0.0.9'), `a\r\neth0${' '.repeat(1024 * 1024)}`); // matches once trimmed, but > 1 MiB
    expect(store.getByID('a', 'eth0').map(formatIP)).toEqual(['10.0.0.2']);
    expect(store.findByID('a', 'eth0')).toBe(true);
    store.releaseByID('a', 'eth0');
    store.gc([]);
    expect(readdirSync(net()).sort()).toEqual(['10.0.0.7', '10.0.0.8', '10.0.0.9', 'last_reserved_ip.0', 'lock']);
  });

  it('last_reserved_ip as a FIFO or a device is an error at once, worded as Go (the allocator logs it)', () => {
    const last = join(net(), 'last_reserved_ip.0');
    symlinkSync('/dev/zero', last);
    expect(() => store.lastReservedIP('0')).toThrow(`read ${last}: not a regular file (a character device)`);
    const last1 = join(net(), 'last_reserved_ip.1');
    mkfifo(last1);
    expect(() => store.lastReservedIP('1')).toThrow(`read ${last1}: not a regular file (a named pipe)`);
    // and writing it after a reservation fails instead of waiting for a reader
    expect(() => store.reserve('a', 'eth0', parseIP('10.0.0.2'), '1')).toThrow(`open ${last1}: no such device or address`);
  });
});

describe('DiskStore lock: a real flock(2) on <dir>/lock', () => {
  it('excludes another process while held and frees on unlock', () => {
    expect(tryLockElsewhere()).toBe(0);
    store.lock();
    expect(tryLockElsewhere()).toBe(1);
    store.unlock();
    expect(tryLockElsewhere()).toBe(0);
    store.lock();
    expect(tryLockElsewhere()).toBe(1);
    store.close();
    expect(tryLockElsewhere()).toBe(0);
  });

  it('findByID and gc take the lock themselves and release it', () => {
    store.findByID('x', 'eth0');
    store.gc([]);
    expect(tryLockElsewhere()).toBe(0);
  });
});

const ADDON = join(import.meta.dirname, '../../../../dist/bin/flock.node');

describe.skipIf(!existsSync(ADDON))('the flock(2) addon (dist/bin/flock.node)', () => {
  it('loads and excludes another process like flock(1) does', () => {
    const flock = nativeFlock(ADDON);
    expect(flock).toBeTypeOf('function');
    const s = DiskStore.open('native', dir.name, flock!);
    const lock = join(dir.name, 'native', 'lock');
    try {
      s.lock();
      expect(spawnSync('flock', ['-n', lock, 'true']).status).toBe(1);
      s.unlock();
      expect(spawnSync('flock', ['-n', lock, 'true']).status).toBe(0);
    } finally {
      s.close();
    }
  });

  it('reports a bad fd as an error', () => {
    expect(() => nativeFlock(ADDON)!(987654)).toThrow('failed to lock: flock: errno 9');
  });
});

describe('nativeFlock without the addon', () => {
  it('is undefined for a missing or broken file, so main.ts falls back to flock(1)', () => {
    expect(nativeFlock(join(dir.name, 'nope.node'))).toBeUndefined();
    writeFileSync(join(dir.name, 'bad.node'), 'not an ELF');
    expect(nativeFlock(join(dir.name, 'bad.node'))).toBeUndefined();
  });
});
