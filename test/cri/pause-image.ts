// A sandbox ("pause") image built offline: an OCI image archive whose one layer holds busybox and its
// shared libraries, with `busybox sleep` as the process that keeps the pod's namespaces alive. The
// registry.k8s.io/pause image cannot be pulled here; containerd's CRI only needs *some* image under the
// configured sandbox_image name in its k8s.io namespace (`ctr images import` of this archive).
// The annotation io.containerd.image.name is what ctr names the imported image.
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';

function sh(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** Writes `ref` as an OCI archive at `<dir>/pause.tar` and returns its path. */
export function buildPauseImage(dir: string, ref: string): string {
  const rootfs = join(dir, 'rootfs');
  const layout = join(dir, 'oci');
  const blobs = join(layout, 'blobs/sha256');
  for (const d of ['bin', 'dev', 'proc', 'sys', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
  mkdirSync(blobs, { recursive: true });
  const busybox = sh(['sh', '-c', 'command -v busybox']).trim();
  copyFileSync(busybox, join(rootfs, 'bin/busybox'));
  for (const lib of sh(['ldd', busybox]).match(/\/\S+/g) ?? []) {
    mkdirSync(join(rootfs, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(rootfs, lib));
  }
  /** Moves a file into blobs/ under its digest; returns the descriptor fields. */
  const blob = (file: string) => {
    const digest = createHash('sha256').update(readFileSync(file)).digest('hex');
    const size = statSync(file).size;
    renameSync(file, join(blobs, digest));
    return { digest: `sha256:${digest}`, size };
  };
  const json = (name: string, v: unknown) => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify(v));
    return p;
  };
  const layerTar = join(dir, 'layer.tar');
  sh(['tar', '-C', rootfs, '--sort=name', '--numeric-owner', '-cf', layerTar, '.']);
  const layer = blob(layerTar); // uncompressed: digest == diff_id
  const config = blob(
    json('config.json', {
      architecture: 'amd64',
      os: 'linux',
      config: { Entrypoint: ['/bin/busybox', 'sleep', '2147483647'] },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    }),
  );
  const manifest = blob(
    json('manifest.json', {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
    }),
  );
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'io.containerd.image.name': ref } }],
    }),
  );
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const archive = join(dir, 'pause.tar');
  sh(['tar', '-C', layout, '-cf', archive, '.']);
  return archive;
}
