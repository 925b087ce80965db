// A vitest globalSetup that fails the run when anything wrote under the machine's own flannel and CNI
// paths. Tests must keep to private temp dirs and namespaces they make (README "Tests"); a flanneld
// started without --data-dir, a cnitool without CNI_CACHE_DIR or a plugin with its default dataDir
// writes to the node's real state instead, which on a real node is another cluster's state.
//
// Before the run it records a recursive listing (path, type, size, mtime, inode) of each guarded path;
// after the run it lists them again and throws, listing every path that appeared, disappeared or
// changed. A directory whose mtime changed means something was created or removed in it, even if it
// was cleaned up again. It removes nothing: what a test left behind is for a person to look at.
//
// A test machine has nothing else writing there. On a real node (a container runtime under /var/lib/cni,
// kubelet under /etc/cni) set FLANNEL_TS_SANDBOX_GUARD=off. FLANNEL_TS_SANDBOX_GUARD_PATHS
// (colon-separated) replaces the guarded paths; the guard's own test uses it.
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const GUARDED_PATHS = ['/var/lib/flannel', '/var/lib/cni', '/run/flannel', '/etc/cni'];

/** path → "type size mtime inode" of it and everything below it; a missing root is simply absent. */
export type Listing = Map<string, string>;

export function listTree(roots: readonly string[]): Listing {
  const out: Listing = new Map();
  const walk = (path: string): void => {
    let st;
    try {
      st = lstatSync(path, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // gone between readdir and lstat
      throw err;
    }
    const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'other';
    out.set(path, `${type} size=${st.size} mtime=${st.mtimeNs} inode=${st.ino}`);
    if (st.isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name));
  };
  for (const root of roots) walk(root);
  return out;
}

/** One line per path that appeared, disappeared or changed between two listings, sorted by path. */
export function diffListings(before: Listing, after: Listing): string[] {
  const paths = [...new Set([...before.keys(), ...after.keys()])].sort();
  const changes: string[] = [];
  for (const p of paths) {
    const a = before.get(p);
    const b = after.get(p);
    if (a === undefined) changes.push(`created  ${p} (${b})`);
    else if (b === undefined) changes.push(`removed  ${p} (was ${a})`);
    else if (a !== b) changes.push(`changed  ${p} (${a} → ${b})`);
  }
  return changes;
}

export function guardedPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  const custom = env.FLANNEL_TS_SANDBOX_GUARD_PATHS;
  return custom ? custom.split(':').filter((p) => p !== '') : GUARDED_PATHS;
}

/** vitest globalSetup: returns the teardown that compares. */
export default function setup(): (() => void) | undefined {
  if (process.env.FLANNEL_TS_SANDBOX_GUARD === 'off') return undefined;
  const roots = guardedPaths();
  const before = listTree(roots);
  return () => {
    const changes = diffListings(before, listTree(roots));
    if (changes.length === 0) return;
    // vitest 4 reports a throwing teardown as "error during close" but keeps exit status 0: set it here
    process.exitCode = 1;
    throw new Error(
      `sandbox guard: this test run wrote outside its sandbox, under ${roots.join(', ')} ` +
        '(tests must use private temp dirs: --data-dir, CNI_CACHE_DIR, the plugins\' dataDir, subnetFile). ' +
        `Nothing was removed; look, clean up by hand, and fix the test:\n  ${changes.join('\n  ')}`,
    );
  };
}
