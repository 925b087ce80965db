// Shell lines for a script run under `unshare --mount --propagation private`: /var/lib becomes an
// overlay whose writes land in `dir`/ovl (a tmpfs), so containerd/podman state never reaches the host's.

/** mounts `dir`/ovl as tmpfs and overlays /var/lib on it (`dir`/ovl must exist) */
export function privateVarLib(dir: string): string[] {
  return [
    `mount -t tmpfs tmpfs ${dir}/ovl`,
    `mkdir ${dir}/ovl/up ${dir}/ovl/work`,
    `mount -t overlay overlay -o lowerdir=/var/lib,upperdir=${dir}/ovl/up,workdir=${dir}/ovl/work /var/lib`,
  ];
}
