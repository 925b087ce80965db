// Backends by the name in the network config's Backend.Type (lower-cased), as flannel's
// backend.Register, without side-effect registration (style.md).
import type { BackendFactory } from './backend.js';
import { createAllocBackend } from './alloc.js';
import { createHostgwBackend } from './hostgw/hostgw.js';
import { createIpipBackend } from './ipip/ipip.js';
import { createVxlanBackend } from './vxlan/vxlan.js';
import { createWireguardBackend } from './wireguard/wireguard.js';

export const BACKENDS = {
  alloc: createAllocBackend,
  vxlan: createVxlanBackend,
  'host-gw': createHostgwBackend,
  ipip: createIpipBackend,
  wireguard: (deps) => createWireguardBackend(deps),
  // udp: not implemented; the daemon exits with `unknown backend type: <t>`
} satisfies Record<string, BackendFactory>;

export function getBackendFactory(type: string): BackendFactory | undefined {
  return Object.hasOwn(BACKENDS, type) ? BACKENDS[type as keyof typeof BACKENDS] : undefined;
}
