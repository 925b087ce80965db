// host-local's resolvConf read is bounded: an endless or blocking file is one clear error at once,
// where an unbounded read grows without end (/dev/zero) or hangs (a FIFO), and nothing is allocated.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPlugins, ipamEnv, OURS, runPlugin } from './exec-plugin.js';

describe('host-local: resolvConf read bounded', () => {
  let dir: string;
  beforeAll(() => {
    buildPlugins();
    dir = mkdtempSync(join(tmpdir(), 'hl-resolv-'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['/dev/zero', 'not a regular file'],
    ['fifo', 'not a regular file'],
    ['.', 'is a directory'],
  ])('resolvConf %s → one error document, no allocation', async (file, words) => {
    const path = file.startsWith('/') ? file : join(dir, file);
    const dataDir = join(dir, `store-${file.replace(/\W/g, '')}`);
    const conf = { cniVersion: '1.0.0', name: 'rc', ipam: { type: 'host-local', subnet: '10.9.0.0/24', dataDir, resolvConf: path } };
    const r = await runPlugin(OURS.hostLocal, ipamEnv('ADD', 'c1'), conf);
    expect(r.code).toBe(1);
    expect(r.json?.code).toBe(999);
    expect(String(r.json?.msg)).toContain(words);
    expect(String(r.json?.msg)).toContain(path);
    let entries: string[] = [];
    try {
      entries = readdirSync(join(dataDir, 'rc'));
    } catch {
      // no store at all: nothing allocated
    }
    expect(entries.filter((e) => e.startsWith('10.'))).toEqual([]);
  }, 20_000);
});
