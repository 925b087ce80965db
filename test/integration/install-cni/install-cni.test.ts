// The built install-cni (dist/exe, or dist/bin with FLANNEL_TEST_BUILD=node) into private temp dirs, as kube-flannel.yml's init container runs it:
// real executables land in a bin dir and run from there, a second run is a no-op, a bad conflist
// leaves the installed one alone, and a reader running concurrently with repeated installs never sees
// a partial file (the property upstream's `cp -f` lacks: cp truncates the target and writes into it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DIST, ensureBuilt, tempDir } from '../flannel/helpers.js';
import { ROOT } from '../../helpers/paths.js';

const INSTALL_CNI = join(DIST, 'install-cni');
const PLUGINS = ['flannel', 'bridge', 'host-local', 'loopback'];
let T: string;

const run = (args: string[]) => {
  const r = spawnSync(INSTALL_CNI, args, { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
};

beforeAll(() => {
  ensureBuilt('install-cni', ...PLUGINS);
  T = tempDir('install-cni-int');
});
afterAll(() => rmSync(T, { recursive: true, force: true }));

describe('dist/bin/install-cni', () => {
  it('installs our executables and the conflist; they run from there; a second run changes nothing', () => {
    const bin = join(T, 'a/opt/cni/bin');
    const conf = join(T, 'a/etc/cni/net.d');
    const args = ['--cni-bin-dir', bin, '--cni-conf-dir', conf, '--conflist', join(ROOT, 'conf/10-flannel.conflist'), '--plugins', PLUGINS.join(',')];
    const first = run(args);
    expect(first.status, first.stderr).toBe(0);
    // each file read once per inode: the plugin names are hard links to one ~100 MiB executable, here and in DIST
    const read = new Map<string, Buffer>();
    const bytes = (f: string) => {
      const { dev, ino } = statSync(f);
      const key = `${dev}:${ino}`;
      if (!read.has(key)) read.set(key, readFileSync(f));
      return read.get(key)!;
    };
    for (const p of PLUGINS) {
      expect(first.stdout).toContain(`install-cni: installed ${join(bin, p)}\n`);
      // Buffer.equals: toEqual walks a ~100 MiB self-contained executable element by element for minutes
      expect(bytes(join(bin, p)).equals(bytes(join(DIST, p))), p).toBe(true);
    }
    expect(first.stdout).toContain(`install-cni: installed ${join(conf, '10-flannel.conflist')}\n`);
    expect(readFileSync(join(conf, '10-flannel.conflist'), 'utf8')).toBe(readFileSync(join(ROOT, 'conf/10-flannel.conflist'), 'utf8'));
    // the installed plugin is a working CNI executable
    const v = spawnSync(join(bin, 'flannel'), [], { env: { CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"0.3.1"}', encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    expect(JSON.parse(v.stdout).supportedVersions).toContain('0.3.1');

    const stamp = () => readdirSync(bin).concat(readdirSync(conf)).map((f) => {
      const s = statSync(join(readdirSync(bin).includes(f) ? bin : conf, f));
      return [f, s.ino, s.mtimeMs];
    });
    const before = stamp();
    const second = run(args);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).not.toContain('installed');
    expect(second.stdout.match(/: unchanged /g)).toHaveLength(PLUGINS.length + 1 + (readdirSync(bin).includes('flock.node') ? 1 : 0));
    expect(stamp()).toEqual(before);
  });

  it('a bad conflist is refused with exit 1 and the installed one stays', () => {
    const conf = join(T, 'b/net.d');
    const good = run(['--cni-conf-dir', conf, '--conflist', join(ROOT, 'conf/10-flannel.conflist')]);
    expect(good.status, good.stderr).toBe(0);
    writeFileSync(join(T, 'b/cni-conf.json'), '{"name": "cbr0", "plugins": [{"type": "flannel"}'); // cut short
    const bad = run(['--cni-conf-dir', conf, '--conflist', join(T, 'b/cni-conf.json')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`^install-cni: ${join(T, 'b/cni-conf.json')} is not valid JSON`));
    expect(readFileSync(join(conf, '10-flannel.conflist'), 'utf8')).toBe(readFileSync(join(ROOT, 'conf/10-flannel.conflist'), 'utf8'));
    expect(readdirSync(conf)).toEqual(['10-flannel.conflist']);
    expect(run(['--nope']).status).toBe(2);
  });

  it('a concurrent reader only ever sees a whole old or a whole new file', async () => {
    // two 1 MiB versions of "flannel", installed alternately while another process reads the target
    const size = 1 << 20;
    const versions = ['A', 'B'].map((c) => {
      const dir = join(T, `c/src-${c}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'flannel'), Buffer.alloc(size, c), { mode: 0o755 });
      return dir;
    });
    const bin = join(T, 'c/bin');
    expect(run(['--cni-bin-dir', bin, '--source-dir', versions[0]!]).status).toBe(0);
    const stop = join(T, 'c/stop');
    const reader = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs');
         const [target, stop, size] = process.argv.slice(1);
         const seen = { A: 0, B: 0, partial: 0 };
         while (!fs.existsSync(stop)) {
           const b = fs.readFileSync(target);
           const c = String.fromCharCode(b[0]);
           if (b.length === Number(size) && (c === 'A' || c === 'B') && b.equals(Buffer.alloc(b.length, c))) seen[c]++;
           else seen.partial++;
         }
         process.stdout.write(JSON.stringify(seen));`,
        join(bin, 'flannel'),
        stop,
        String(size),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    reader.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise((r) => reader.once('exit', r));
    try {
      for (let i = 1; i <= 6; i++) {
        const r = run(['--cni-bin-dir', bin, '--source-dir', versions[i % 2]!]);
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toContain('installed');
      }
    } finally {
      writeFileSync(stop, '');
      await exited;
    }
    const seen = JSON.parse(out) as { A: number; B: number; partial: number };
    expect(seen.partial, JSON.stringify(seen)).toBe(0);
    expect(seen.A + seen.B).toBeGreaterThan(0);
    expect(readdirSync(bin)).toEqual(['flannel']);
  });
});
