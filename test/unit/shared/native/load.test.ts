// shared/native/load.ts: where flannel.node is looked for, what counts as the shim, the off switch.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import tmp from 'tmp';
import { afterEach, describe, expect, it } from 'vitest';
import { addonDirs, loadAddonFile, nativeAddon, nativeAddonProblem, provideNativeAddon } from '../../../../shared/native/load.js';

afterEach(() => {
  delete process.env.FLANNEL_NATIVE;
});

describe('addonDirs', () => {
  it('looks beside the executable, then beside its real path, then beside the runtime', () => {
    const d = tmp.dirSync({ unsafeCleanup: true }).name;
    mkdirSync(join(d, 'dist', 'bin'), { recursive: true });
    mkdirSync(join(d, 'opt'));
    writeFileSync(join(d, 'dist', 'bin', 'flannel'), '');
    symlinkSync(join(d, 'dist', 'bin', 'flannel'), join(d, 'opt', 'flannel'));
    expect(addonDirs(join(d, 'opt', 'flannel'), '/usr/bin/node')).toEqual([join(d, 'opt'), join(d, 'dist', 'bin'), '/usr/bin']);
    // a compiled executable: argv[1] is inside bun's virtual fs, the binary is execPath
    expect(addonDirs('/$bunfs/root/flannel', '/opt/cni/bin/flannel')).toEqual(['/$bunfs/root', '/opt/cni/bin']);
  });

  it("from source: the checkout's dist/bin (a runner under node_modules, or a .ts entry)", () => {
    const d = tmp.dirSync({ unsafeCleanup: true }).name;
    mkdirSync(join(d, 'node_modules', 'vitest', 'dist'), { recursive: true });
    mkdirSync(join(d, 'scripts', 'bench'), { recursive: true });
    writeFileSync(join(d, 'package.json'), '{}');
    writeFileSync(join(d, 'node_modules', 'vitest', 'dist', 'forks.js'), '');
    writeFileSync(join(d, 'scripts', 'bench', 'x.ts'), '');
    expect(addonDirs(join(d, 'node_modules', 'vitest', 'dist', 'forks.js'), '/usr/bin/node')).toContain(join(d, 'dist', 'bin'));
    expect(addonDirs(join(d, 'scripts', 'bench', 'x.ts'), '/usr/bin/node')).toContain(join(d, 'dist', 'bin'));
  });
});

describe('loading', () => {
  it('reports a missing file and a file that is not a loadable addon', () => {
    const d = tmp.dirSync({ unsafeCleanup: true }).name;
    expect(loadAddonFile(join(d, 'nope.node'))).toEqual({ problem: `${join(d, 'nope.node')}: not found` });
    writeFileSync(join(d, 'bad.node'), 'not an ELF');
    expect(loadAddonFile(join(d, 'bad.node')).problem).toMatch(/bad\.node: .*(invalid ELF header|too short)/);
  });

  it('provideNativeAddon takes the shim (or an ES module of it) and refuses anything else', () => {
    expect(() => provideNativeAddon({ flock: () => 0 })).toThrow('not flannel.node');
    const fns = ['flock', 'socket', 'bind', 'portId', 'setsockopt', 'getsockopt', 'send', 'recv', 'setns', 'open', 'close'];
    const shim = Object.fromEntries(fns.map((f) => [f, () => 0]));
    provideNativeAddon({ default: shim });
    expect(nativeAddon()).toBe(shim);
    expect(nativeAddonProblem()).toBe('');
  });

  it('FLANNEL_NATIVE=off makes it absent, with the reason', () => {
    process.env.FLANNEL_NATIVE = 'off';
    expect(nativeAddon()).toBeUndefined();
    expect(nativeAddonProblem()).toBe('disabled by FLANNEL_NATIVE=off');
  });
});
