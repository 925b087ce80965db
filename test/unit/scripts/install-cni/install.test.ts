// install-cni's logic on private temp dirs: atomic writes, idempotence, validation before any write.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConflist, install, installFile, InstallError, withInterpreter, type InstallOptions } from '../../../../scripts/install-cni/install.js';
import { parseArgs, UsageError } from '../../../../scripts/install-cni/args.js';
import { ROOT } from '../../../helpers/paths.js';

let T: string;
let src: string;
const CONFLIST = JSON.stringify({ name: 'cbr0', cniVersion: '0.3.1', plugins: [{ type: 'flannel', delegate: { isDefaultGateway: true } }, { type: 'portmap' }] });

beforeEach(() => {
  T = mkdtempSync(join(tmpdir(), 'install-cni-unit-'));
  src = join(T, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'flannel'), '#!/usr/bin/node\n// flannel-ts build abc\nconsole.log(1)\n', { mode: 0o755 });
  writeFileSync(join(src, 'bridge'), '#!/usr/bin/node\n// flannel-ts build abc\n', { mode: 0o755 });
  writeFileSync(join(src, 'host-local'), '#!/usr/bin/node\n', { mode: 0o755 });
  writeFileSync(join(src, 'flock.node'), 'ELF');
  writeFileSync(join(T, 'cni-conf.json'), CONFLIST);
});
afterEach(() => rmSync(T, { recursive: true, force: true }));

const opts = (o: Partial<InstallOptions> = {}): InstallOptions => ({
  sourceDir: src,
  plugins: ['flannel'],
  binDir: join(T, 'bin'),
  confDir: join(T, 'net.d'),
  conflist: join(T, 'cni-conf.json'),
  conflistName: '10-flannel.conflist',
  ...o,
});

describe('install', () => {
  it('installs the executable (0755) before the conflist (0644), creating the target dirs', async () => {
    const r = await install(opts());
    expect(r).toEqual([
      { path: join(T, 'bin/flannel'), outcome: 'installed' },
      { path: join(T, 'net.d/10-flannel.conflist'), outcome: 'installed' },
    ]);
    expect(statSync(join(T, 'bin/flannel')).mode & 0o777).toBe(0o755);
    expect(statSync(join(T, 'net.d/10-flannel.conflist')).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(T, 'net.d/10-flannel.conflist'), 'utf8')).toBe(CONFLIST);
    expect(readFileSync(join(T, 'bin/flannel'))).toEqual(readFileSync(join(src, 'flannel')));
  });

  it('a second run rewrites nothing: same inode, same mtime, outcome unchanged', async () => {
    await install(opts());
    const before = [statSync(join(T, 'bin/flannel')), statSync(join(T, 'net.d/10-flannel.conflist'))];
    const r = await install(opts());
    expect(r.map((f) => f.outcome)).toEqual(['unchanged', 'unchanged']);
    const after = [statSync(join(T, 'bin/flannel')), statSync(join(T, 'net.d/10-flannel.conflist'))];
    expect(after.map((s) => [s.ino, s.mtimeMs])).toEqual(before.map((s) => [s.ino, s.mtimeMs]));
  });

  it('a changed source, a changed mode or a symlink at the target is replaced by a new file', async () => {
    await install(opts());
    writeFileSync(join(src, 'flannel'), '#!/usr/bin/node\n// v2\n', { mode: 0o755 });
    chmodSync(join(T, 'net.d/10-flannel.conflist'), 0o600);
    expect((await install(opts())).map((f) => f.outcome)).toEqual(['installed', 'installed']);
    expect(readFileSync(join(T, 'bin/flannel'), 'utf8')).toContain('v2');
    expect(statSync(join(T, 'net.d/10-flannel.conflist')).mode & 0o777).toBe(0o644);
    rmSync(join(T, 'bin/flannel'));
    symlinkSync(join(src, 'flannel'), join(T, 'bin/flannel'));
    expect((await install(opts({ confDir: undefined })))[0]!.outcome).toBe('installed');
    expect(lstatSync(join(T, 'bin/flannel')).isFile()).toBe(true);
  });

  it('leaves no temporary file behind, and removes ones a killed run left', async () => {
    mkdirSync(join(T, 'bin'));
    writeFileSync(join(T, 'bin/.flannel.999-deadbeef.install-cni.tmp'), 'half a plug');
    writeFileSync(join(T, 'bin/.other.tmp'), 'not ours');
    await install(opts());
    expect(readdirSync(join(T, 'bin')).sort()).toEqual(['.other.tmp', 'flannel']);
    expect(readdirSync(join(T, 'net.d'))).toEqual(['10-flannel.conflist']);
  });

  it('installs the listed plugins, and host-local brings its flock addon', async () => {
    await install(opts({ plugins: ['flannel', 'bridge', 'host-local'], confDir: undefined }));
    expect(readdirSync(join(T, 'bin')).sort()).toEqual(['bridge', 'flannel', 'flock.node', 'host-local']);
  });

  it('names of one multi-call executable (hard links in the source) land as hard links to one copy', async () => {
    const exe = join(T, 'exe');
    mkdirSync(exe);
    writeFileSync(join(exe, 'flannel-cni'), 'ELF multi-call\n', { mode: 0o755 });
    for (const n of ['flannel', 'bridge', 'host-local']) linkSync(join(exe, 'flannel-cni'), join(exe, n));
    const o = opts({ sourceDir: exe, plugins: ['flannel', 'bridge', 'host-local'], confDir: undefined });
    expect((await install(o)).map((f) => f.outcome)).toEqual(['installed', 'installed', 'installed']);
    const inodes = new Set(['flannel', 'bridge', 'host-local'].map((n) => statSync(join(T, 'bin', n)).ino));
    expect(inodes.size).toBe(1);
    expect(readFileSync(join(T, 'bin', 'bridge'), 'utf8')).toBe('ELF multi-call\n');
    expect(readdirSync(join(T, 'bin')).sort()).toEqual(['bridge', 'flannel', 'host-local']);
    expect((await install(o)).map((f) => f.outcome)).toEqual(['unchanged', 'unchanged', 'unchanged']);
  });

  it('refuses bad input before writing anything, with a message naming the file', async () => {
    writeFileSync(join(T, 'bad.json'), '{"name":"cbr0","plugins":[');
    const nothingWritten = () => expect(readdirSync(T).sort()).toEqual(['bad.json', 'cni-conf.json', 'src']);
    await expect(install(opts({ conflist: join(T, 'bad.json') }))).rejects.toThrow(/bad\.json is not valid JSON/);
    nothingWritten();
    await expect(install(opts({ plugins: ['flannel', 'nosuch'] }))).rejects.toThrow(`no executable nosuch in ${src}`);
    nothingWritten();
    await expect(install(opts({ plugins: ['../etc/passwd'] }))).rejects.toThrow(/not a CNI plugin name/);
    await expect(install(opts({ conflist: join(T, 'missing.json') }))).rejects.toThrow(/cannot read the conflist .*missing\.json/);
    await expect(install(opts({ conflistName: '../x.conflist' }))).rejects.toThrow(/plain file name/);
    await expect(install(opts({ nodePath: 'node' }))).rejects.toThrow(/absolute path/);
    await expect(install(opts({ binDir: undefined, confDir: undefined }))).rejects.toThrow(/nothing to do/);
    await expect(install(opts({ conflist: undefined }))).rejects.toThrow(/needs --conflist/);
    nothingWritten();
  });

  it('a directory where the file should go is a clear error', async () => {
    mkdirSync(join(T, 'bin/flannel'), { recursive: true });
    await expect(install(opts())).rejects.toThrow(InstallError);
    await expect(install(opts())).rejects.toThrow(/bin\/flannel is a directory/);
  });

  it('a target dir that cannot be made is an InstallError naming it', async () => {
    writeFileSync(join(T, 'bin'), 'a file, not a dir');
    await expect(install(opts())).rejects.toThrow(new InstallError(`cannot create ${join(T, 'bin')}: EEXIST: file already exists, mkdir '${join(T, 'bin')}'`));
  });

  it('installFile reports a write failure as an InstallError and leaves no temp file', async () => {
    mkdirSync(join(T, 'ro'));
    chmodSync(join(T, 'ro'), 0o500);
    // root ignores directory permissions: make the write fail another way when running as root
    const dir = process.getuid?.() === 0 ? join(T, 'missing') : join(T, 'ro');
    await expect(installFile(dir, 'flannel', Buffer.from('x'), 0o755)).rejects.toThrow(InstallError);
    await expect(installFile(dir, 'flannel', Buffer.from('x'), 0o755)).rejects.toThrow(`cannot install ${join(dir, 'flannel')}: E`);
    chmodSync(join(T, 'ro'), 0o700);
    expect(readdirSync(join(T, 'ro'))).toEqual([]);
  });
});

describe('checkConflist', () => {
  it.each([
    ['[]', /must be a JSON object/],
    ['{"plugins":[{"type":"flannel"}]}', /no "name"/],
    ['{"name":"cbr0","plugins":[]}', /no "plugins" list/],
    ['{"name":"cbr0","type":"flannel"}', /no "plugins" list/],
    ['{"name":"cbr0","plugins":[{"type":"flannel"},{}]}', /plugins\[1\] has no "type"/],
  ])('%s is refused', (text, msg) => {
    expect(() => checkConflist(text, 'x.json')).toThrow(msg);
  });
  it('the shipped one passes', () => {
    expect(() => checkConflist(readFileSync(join(ROOT, 'conf/10-flannel.conflist'), 'utf8'), 'conf')).not.toThrow();
  });
});

describe('withInterpreter', () => {
  const code = Buffer.from('#!/usr/local/bin/node\n// flannel-ts build abc\nbody\n');
  it('swaps only the #! line (the build line stays, so delegation in-process still matches)', () => {
    expect(withInterpreter(code, '/opt/node/bin/node', 'f').toString()).toBe('#!/opt/node/bin/node\n// flannel-ts build abc\nbody\n');
  });
  it('keeps the launcher flags of an env -S line', () => {
    const l = Buffer.from('#!/usr/bin/env -S /usr/bin/node --single-threaded\nimport(x)\n');
    expect(withInterpreter(l, '/opt/node', 'f').toString()).toBe('#!/usr/bin/env -S /opt/node --single-threaded\nimport(x)\n');
  });
  it('unchanged without --node; a file without #! is refused', () => {
    expect(withInterpreter(code, undefined, 'f')).toBe(code);
    expect(() => withInterpreter(Buffer.from('ELF'), '/n', 'f')).toThrow(/no #! line/);
  });
});

describe('parseArgs', () => {
  it('reads --flag=value and --flag value; defaults like upstream (flannel only, 10-flannel.conflist)', () => {
    expect(parseArgs(['--cni-bin-dir=/b', '--cni-conf-dir', '/c', '--conflist', '/x.json'], '/img')).toEqual({
      sourceDir: '/img',
      plugins: ['flannel'],
      binDir: '/b',
      confDir: '/c',
      conflist: '/x.json',
      conflistName: '10-flannel.conflist',
      nodePath: undefined,
    });
    expect((parseArgs(['--plugins', 'flannel, bridge', '--cni-bin-dir', '/b'], '/img') as InstallOptions).plugins).toEqual(['flannel', 'bridge']);
    expect(parseArgs(['--help'], '/img')).toBe('help');
  });
  it.each([[['--bogus']], [['--cni-bin-dir']], [['--cni-bin-dir=']], [['stray']]])('%j is a usage error', (argv) => {
    expect(() => parseArgs(argv, '/img')).toThrow(UsageError);
  });
});
