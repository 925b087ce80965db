// scripts/install.sh: the self-contained CNI executable lands once per bin dir (every plugin name a hard
// link to one inode), flanneld beside it with flannelctl a link to it, nothing half-written or temporary left, an old file of the
// same name replaced, and a second run changes nothing.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXE_BIN, ROOT } from '../../helpers/paths.js';
import { ensureBuilt, tempDir } from '../flannel/helpers.js';

const INSTALL = join(ROOT, 'scripts/install.sh');
let work = '';
afterAll(() => {
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

const install = (...args: string[]) => spawnSync(INSTALL, args, { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });

describe('scripts/install.sh', () => {
  it('installs the plugins as links to one copy, atomically and idempotently', () => {
    ensureBuilt('flannel', 'flanneld');
    work = tempDir('install-sh');
    const cniBin = join(work, 'opt/cni/bin');
    mkdirSync(cniBin, { recursive: true });
    writeFileSync(join(cniBin, 'bridge'), 'an older bridge\n'); // replaced
    writeFileSync(join(cniBin, 'portmap'), 'someone else\n'); // untouched

    const first = install('--prefix', work, '--plugins', 'all');
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout.match(/installed /g)).toHaveLength(6);
    const names = ['flannel', 'bridge', 'host-local', 'loopback'];
    const inodes = new Set(names.map((n) => statSync(join(cniBin, n)).ino));
    expect(inodes.size).toBe(1);
    expect(statSync(join(cniBin, 'flannel')).size).toBe(statSync(join(EXE_BIN, 'flannel-cni')).size);
    expect(statSync(join(cniBin, 'flannel')).mode & 0o777).toBe(0o755);
    expect(readdirSync(cniBin).sort()).toEqual([...names, 'portmap'].sort());
    const bin = join(work, 'usr/local/bin');
    expect(readdirSync(bin).sort()).toEqual(['flannelctl', 'flanneld']);
    expect(statSync(join(bin, 'flannelctl')).ino).toBe(statSync(join(bin, 'flanneld')).ino);
    const help = spawnSync(join(bin, 'flannelctl'), ['--help'], { env: {}, encoding: 'utf8' });
    expect(help.stderr + help.stdout).toContain('Usage: flannelctl');
    const v = spawnSync(join(cniBin, 'bridge'), { env: { CNI_COMMAND: 'VERSION' }, encoding: 'utf8' });
    expect(v.stdout).toContain('"supportedVersions"');

    const second = install('--prefix', work, '--plugins', 'all');
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).not.toContain('installed ');
    expect(second.stdout.match(/unchanged /g)).toHaveLength(6);
  });

  it('refuses a plugin name that is not ours, before touching anything', () => {
    const dir = join(work || tempDir('install-sh'), 'refused');
    const r = install('--cni-bin-dir', dir, '--bin-dir', '', '--plugins', 'flannel,portmap');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('portmap is not one of ours');
    expect(() => statSync(dir)).toThrow();
  });
});
