// The runtime.v1 CRI messages the e2e test sends and reads, as plain objects; field numbers are those of
// k8s.io/cri-api pkg/apis/runtime/v1/api.proto. Only the fields the kubelet's sandbox path needs.
import { Reader, Writer } from './protobuf.js';

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt?: number;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  logDirectory?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** LinuxPodSandboxConfig.cgroup_parent */
  cgroupParent?: string;
}

const metadata = (m: PodSandboxMetadata) => new Writer().string(1, m.name).string(2, m.uid).string(3, m.namespace).uint(4, m.attempt);

/** RunPodSandboxRequest { config = 1; runtime_handler = 2 } */
export function runPodSandboxRequest(c: PodSandboxConfig, runtimeHandler?: string): Buffer {
  const config = new Writer()
    .message(1, metadata(c.metadata))
    .string(2, c.hostname)
    .string(3, c.logDirectory)
    .map(6, c.labels)
    .map(7, c.annotations)
    .message(8, new Writer().string(1, c.cgroupParent));
  return new Writer().message(1, config).string(2, runtimeHandler).finish();
}

/** RunPodSandboxResponse { pod_sandbox_id = 1 } */
export const runPodSandboxResponse = (b: Buffer) => new Reader(b).string(1);

/** Stop/Remove/PodSandboxStatus requests all start with pod_sandbox_id = 1 (status adds verbose = 2). */
export const sandboxIdRequest = (id: string, verbose = false) => new Writer().string(1, id).uint(2, verbose).finish();

export type SandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxMetadata;
  state: SandboxState;
  /** PodSandboxNetworkStatus: ip = 1, additional_ips = 2 (PodIP { ip = 1 }) */
  ips: string[];
  /** verbose only: the runtime's free-form info map (containerd puts one JSON document under "info") */
  info: Record<string, string>;
}

/** PodSandboxStatusResponse { status = 1; info = 2 } → PodSandboxStatus { id 1, metadata 2, state 3, network 5 } */
export function podSandboxStatusResponse(b: Buffer): PodSandboxStatus {
  const r = new Reader(b);
  const s = r.message(1) ?? new Reader(Buffer.alloc(0));
  const md = s.message(2) ?? new Reader(Buffer.alloc(0));
  const net = s.message(5);
  const ips = net ? [net.string(1), ...net.messages(2).map((p) => p.string(1))].filter(Boolean) : [];
  return {
    id: s.string(1),
    metadata: { name: md.string(1), uid: md.string(2), namespace: md.string(3), attempt: md.uint(4) },
    state: s.uint(3) === 0 ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY',
    ips,
    info: r.map(2),
  };
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

/** StatusResponse { status = 1 (RuntimeStatus { conditions = 1 }) } */
export function statusResponse(b: Buffer): RuntimeCondition[] {
  const st = new Reader(b).message(1);
  return (st?.messages(1) ?? []).map((c) => ({ type: c.string(1), status: c.bool(2), reason: c.string(3), message: c.string(4) }));
}

/** VersionResponse { version 1, runtime_name 2, runtime_version 3, runtime_api_version 4 } */
export function versionResponse(b: Buffer) {
  const r = new Reader(b);
  return { version: r.string(1), runtimeName: r.string(2), runtimeVersion: r.string(3), runtimeApiVersion: r.string(4) };
}

/** ImageStatusRequest { ImageSpec image = 1 { string image = 1 } } */
export const imageStatusRequest = (ref: string) => new Writer().message(1, new Writer().string(1, ref)).finish();

/** ImageStatusResponse { Image image = 1 { string id = 1 } }: no image field when the runtime lacks it */
export const imageStatusResponse = (b: Buffer) => new Reader(b).message(1)?.string(1) ?? '';
