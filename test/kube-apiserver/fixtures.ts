// Objects shaped as a real cluster has them (spec kube.md §5.8): a Node as kubelet registers it and the
// node-ipam controller fills it (kubelet's annotations included: Go flannel panics on a node without
// an annotations map), and the flannel DaemonSet's Pod.
import { randomUUID } from 'node:crypto';
import type { Json } from './patch.js';

export const rfc3339 = (d = new Date()): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface NodeSpecInput {
  name: string;
  /** one CIDR, or one per family (dual stack); omitted = not assigned yet */
  podCIDRs?: string[];
  /** InternalIP address */
  internalIP?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

export function makeNode(n: NodeSpecInput): { [k: string]: Json } {
  const now = rfc3339();
  const cond = (type: string, status: string, reason: string, message: string) => ({ type, status, lastHeartbeatTime: now, lastTransitionTime: now, reason, message });
  const spec: { [k: string]: Json } = {};
  if (n.podCIDRs && n.podCIDRs.length > 0) {
    spec.podCIDR = n.podCIDRs[0]!;
    spec.podCIDRs = [...n.podCIDRs];
  }
  const capacity = { cpu: '2', 'ephemeral-storage': '20470Mi', memory: '4030184Ki', pods: '110' };
  return {
    kind: 'Node',
    apiVersion: 'v1',
    metadata: {
      name: n.name,
      labels: {
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': n.name,
        'kubernetes.io/os': 'linux',
        ...n.labels,
      },
      annotations: {
        'node.alpha.kubernetes.io/ttl': '0',
        'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
        ...n.annotations,
      },
    },
    spec,
    status: {
      capacity,
      allocatable: capacity,
      conditions: [
        cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
        cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
        cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
        cond('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
      ],
      addresses: [...(n.internalIP ? [{ type: 'InternalIP', address: n.internalIP }] : []), { type: 'Hostname', address: n.name }],
      daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
      nodeInfo: {
        machineID: randomUUID().replace(/-/g, ''),
        systemUUID: randomUUID(),
        bootID: randomUUID(),
        kernelVersion: '6.1.0',
        osImage: 'Debian GNU/Linux 12 (bookworm)',
        containerRuntimeVersion: 'containerd://1.7.24',
        kubeletVersion: 'v1.34.0',
        kubeProxyVersion: '',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
    },
  };
}

export function makePod(namespace: string, name: string, nodeName: string): { [k: string]: Json } {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name, namespace, labels: { app: 'flannel', tier: 'node' } },
    spec: { nodeName, hostNetwork: true, serviceAccountName: 'flannel', containers: [{ name: 'kube-flannel', image: 'flannel-ts:latest' }] },
    status: { phase: 'Running' },
  };
}
