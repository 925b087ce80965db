// Shared by the flannel integration tests: builds, temp dirs, subnet.env fixtures, root-netns guard.
// Plugins run through test/helpers/run-plugin.ts.
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupNetns } from '../../helpers/netns.js';
import { DIST_BIN, GO_CNI_BIN, ROOT } from '../../helpers/paths.js';

export const DIST = DIST_BIN;
export const GO_CNI = GO_CNI_BIN;
export const hasGoPlugins = existsSync(join(GO_CNI, 'bridge')) && existsSync(join(GO_CNI, 'host-local'));

export function ensureBuilt(...names: string[]): void {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/build.mjs'), ...names], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-${process.pid}-`));
}

export const SUBNET_ENV = {
  v4: (sn = '10.244.1.1/24') => `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${sn}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
  dual: () =>
    'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n',
};

export function writeSubnetEnv(dir: string, text: string): string {
  const p = join(dir, 'subnet.env');
  writeFileSync(p, text);
  return p;
}

/** A CNI result with the random parts (MACs, veth name, sandbox path) blanked, for Go-vs-ours equality. */
export function normalizeResult(text: string): unknown {
  const r = JSON.parse(text) as { interfaces?: Array<Record<string, unknown>> };
  for (const i of r.interfaces ?? []) {
    if (i.mac) i.mac = '<mac>';
    if (typeof i.name === 'string' && /^veth[0-9a-f]{8}$/.test(i.name)) i.name = '<veth>';
    if (i.sandbox) i.sandbox = '<sandbox>';
  }
  return r;
}

const rootLinkList = (): string => spawnSync('ip', ['-br', 'link'], { encoding: 'utf8' }).stdout;

/**
 * Hooks for a test file that makes netns: namespaces go after each test; after all, the work dir goes
 * and the root netns must still have exactly the links it had before.
 */
export function guardRootNetns(workDir: () => string): void {
  let before = '';
  beforeAll(() => {
    before = rootLinkList();
  });
  afterEach(() => cleanupNetns());
  afterAll(() => {
    cleanupNetns();
    rmSync(workDir(), { recursive: true, force: true });
    expect(rootLinkList()).toBe(before);
  });
}
