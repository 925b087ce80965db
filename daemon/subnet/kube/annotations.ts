// The node annotations flannel's kube mode reads and writes (pkg/subnet/kube/annotations.go), and the
// --kube-annotation-prefix rules. With the default prefix `flannel.alpha.coreos.com` every key is
// `flannel.alpha.coreos.com/<suffix>`; a prefix with a path part gets `-`: `org.com/9` → `org.com/9-backend-type`.

export interface Annotations {
  /** the normalized prefix every key starts with (`flannel.alpha.coreos.com/`, `org.com/9-`) */
  prefix: string;
  subnetKubeManaged: string;
  backendData: string;
  backendV6Data: string;
  backendType: string;
  publicIP: string;
  publicIPv6: string;
  nodePublicIP: string;
  nodePublicIPv6: string;
  publicIPOverwrite: string;
  publicIPv6Overwrite: string;
}

// Go's regexp.MatchString: anchored at the end only, as upstream (so the same prefixes pass).
const PREFIX_RE = /(?:[a-z0-9_-]+\.)+[a-z0-9_-]+\/(?:[a-z0-9_-]+-)?$/;

/** Annotation keys for `--kube-annotation-prefix`, with Go's error strings for a bad prefix. */
export function newAnnotations(rawPrefix: string): Annotations {
  let prefix = rawPrefix;
  const slashes = prefix.split('/').length - 1;
  if (slashes > 1) throw new Error('subnet/kube: prefix can contain at most single slash');
  if (slashes === 0) prefix += '/';
  if (!prefix.endsWith('/') && !prefix.endsWith('-')) prefix += '-';
  if (!PREFIX_RE.test(prefix)) throw new Error('subnet/kube: prefix must be in a format: fqdn/[0-9a-z-_]*');
  return {
    prefix,
    subnetKubeManaged: `${prefix}kube-subnet-manager`,
    backendData: `${prefix}backend-data`,
    backendV6Data: `${prefix}backend-v6-data`,
    backendType: `${prefix}backend-type`,
    publicIP: `${prefix}public-ip`,
    publicIPv6: `${prefix}public-ipv6`,
    nodePublicIP: `${prefix}node-public-ip`,
    nodePublicIPv6: `${prefix}node-public-ipv6`,
    publicIPOverwrite: `${prefix}public-ip-overwrite`,
    publicIPv6Overwrite: `${prefix}public-ipv6-overwrite`,
  };
}

/**
 * The VtepMAC stored in a backend-data annotation value (`{"VNI":1,"VtepMAC":"7e:1c:.."}`), parsed as
 * JSON. Go trims `"}` and splits on `:"`, which breaks on any other field order or extra field, and it
 * looks under `<prefix>/backend-data`, the wrong key for a prefix such as `org.com/x` (callers here pass
 * the value of the right key, `Annotations.backendData`).
 */
export function storedVtepMac(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  let data: unknown;
  try {
    data = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  // encoding/json matches field names case-insensitively, as the vxlan backend decodes BackendData
  for (const [k, v] of Object.entries(data)) {
    if (k.toLowerCase() === 'vtepmac' && typeof v === 'string' && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(v)) return v.toLowerCase();
  }
  return undefined;
}
