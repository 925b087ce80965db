// A CRI RuntimeService client as the kubelet uses it: gRPC over HTTP/2 on a unix socket, written on
// node:http2 (no grpc library): each call is a POST to /runtime.v1.RuntimeService/<Method> with one
// length-prefixed message (1 byte "compressed" = 0, 4 bytes big-endian length, the protobuf bytes),
// and the answer is one such message plus the grpc-status/grpc-message trailers.
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import {
  imageStatusRequest,
  imageStatusResponse,
  podSandboxStatusResponse,
  runPodSandboxRequest,
  runPodSandboxResponse,
  sandboxIdRequest,
  statusResponse,
  versionResponse,
  type PodSandboxConfig,
  type PodSandboxStatus,
  type RuntimeCondition,
} from './messages.js';
import { Writer } from './protobuf.js';

/** A call that ended with a non-zero grpc-status. */
export class GrpcError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    readonly details: string,
  ) {
    super(`${method}: grpc status ${code}: ${details}`);
  }
}

/** Frames one message the gRPC way. */
export function frame(msg: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(msg.length, 1);
  return Buffer.concat([head, msg]);
}

/** Splits a response body into its messages; a compressed one is refused (we never offer an encoding). */
export function unframe(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < body.length) {
    if (pos + 5 > body.length) throw new Error('grpc: truncated message header');
    if (body[pos] !== 0) throw new Error('grpc: compressed message, none was negotiated');
    const len = body.readUInt32BE(pos + 1);
    if (pos + 5 + len > body.length) throw new Error('grpc: truncated message');
    out.push(body.subarray(pos + 5, pos + 5 + len));
    pos += 5 + len;
  }
  return out;
}

export class CriClient {
  private session: ClientHttp2Session;

  constructor(readonly socketPath: string) {
    this.session = connect('http://localhost', { createConnection: () => netConnect(socketPath) });
    this.session.on('error', () => {}); // surfaced per call
  }

  close(): void {
    this.session.close();
  }

  /** One unary call (`method` = "RuntimeService/Version", ...); rejects with GrpcError on a non-zero grpc-status. */
  call(method: string, request: Buffer, timeoutMs = 60_000): Promise<Buffer> {
    const path = `/runtime.v1.${method}`;
    return new Promise((resolve, reject) => {
      const req = this.session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: path,
        [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${timeoutMs}m`,
      });
      const chunks: Buffer[] = [];
      let headers: Record<string, unknown> = {};
      let trailers: Record<string, unknown> = {};
      req.setTimeout(timeoutMs + 5_000, () => req.close(constants.NGHTTP2_CANCEL));
      req.on('response', (h) => (headers = h));
      req.on('trailers', (t) => (trailers = t));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      req.on('end', () => {
        // a trailers-only answer puts grpc-status in the headers
        const status = Number(trailers['grpc-status'] ?? headers['grpc-status'] ?? NaN);
        const message = decodeURIComponent(String(trailers['grpc-message'] ?? headers['grpc-message'] ?? ''));
        if (headers[':status'] !== 200) return reject(new Error(`${path}: HTTP ${String(headers[':status'])}`));
        if (status !== 0) return reject(new GrpcError(method, Number.isNaN(status) ? -1 : status, message || 'no grpc-status'));
        try {
          const msgs = unframe(Buffer.concat(chunks));
          if (msgs.length !== 1) return reject(new Error(`${path}: ${msgs.length} messages in a unary answer`));
          resolve(msgs[0]!);
        } catch (err) {
          reject(err);
        }
      });
      req.end(frame(request));
    });
  }

  async version() {
    return versionResponse(await this.call('RuntimeService/Version', new Writer().string(1, 'v1').finish()));
  }

  /** Status: RuntimeReady / NetworkReady conditions (NetworkReady needs a loadable CNI config). */
  async status(): Promise<RuntimeCondition[]> {
    return statusResponse(await this.call('RuntimeService/Status', Buffer.alloc(0)));
  }

  /** ImageService/ImageStatus: the image id, or '' when the runtime does not know the image. */
  async imageStatus(ref: string): Promise<string> {
    return imageStatusResponse(await this.call('ImageService/ImageStatus', imageStatusRequest(ref)));
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler?: string): Promise<string> {
    return runPodSandboxResponse(await this.call('RuntimeService/RunPodSandbox', runPodSandboxRequest(config, runtimeHandler), 120_000));
  }

  async podSandboxStatus(id: string, verbose = false): Promise<PodSandboxStatus> {
    return podSandboxStatusResponse(await this.call('RuntimeService/PodSandboxStatus', sandboxIdRequest(id, verbose)));
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.call('RuntimeService/StopPodSandbox', sandboxIdRequest(id));
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.call('RuntimeService/RemovePodSandbox', sandboxIdRequest(id));
  }
}

/** The sandbox's network namespace path, from containerd's verbose status (info.runtimeSpec.linux.namespaces). */
export function netnsPathOf(status: PodSandboxStatus): string | undefined {
  const raw = status.info['info'];
  if (!raw) return undefined;
  const info = JSON.parse(raw) as { runtimeSpec?: { linux?: { namespaces?: Array<{ type: string; path?: string }> } } };
  return info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network')?.path;
}
