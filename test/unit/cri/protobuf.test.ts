// The CRI test client's wire codecs (test/cri), against byte strings worked out from the protobuf and
// gRPC encodings: a mistake here would show up in the containerd e2e test as an opaque grpc error.
import { describe, expect, it } from 'vitest';
import { Reader, Writer, decode } from '../../cri/protobuf.js';
import { frame, netnsPathOf, unframe } from '../../cri/client.js';
import { podSandboxStatusResponse, runPodSandboxRequest, sandboxIdRequest } from '../../cri/messages.js';

const hex = (b: Buffer) => b.toString('hex');

describe('protobuf', () => {
  it('encodes the documented examples (field 1 = 150; field 2 = "testing")', () => {
    expect(hex(new Writer().uint(1, 150).finish())).toBe('089601');
    expect(hex(new Writer().string(2, 'testing').finish())).toBe('120774657374696e67');
  });
  it('omits proto3 defaults but keeps an empty nested message', () => {
    expect(new Writer().uint(1, 0).string(2, '').uint(3, false).finish().length).toBe(0);
    expect(hex(new Writer().message(8, new Writer()).finish())).toBe('4200');
  });
  it('negative int64 is ten bytes of two’s complement', () => {
    expect(hex(new Writer().uint(1, -1).finish())).toBe('08ffffffffffffffffff01');
  });
  it('decodes what it encodes, maps included; skips fixed32/64 fields', () => {
    const b = Buffer.concat([new Writer().string(1, 'id').uint(3, 1).map(7, { a: 'b', c: 'd' }).finish(), Buffer.from('2d01020304', 'hex')]);
    const r = new Reader(b);
    expect([r.string(1), r.uint(3), r.map(7), r.string(9), r.uint(9)]).toEqual(['id', 1, { a: 'b', c: 'd' }, '', 0]);
  });
  it('refuses truncated input', () => {
    expect(() => decode(Buffer.from('0a05616263', 'hex'))).toThrow(/runs past the end/);
    expect(() => decode(Buffer.from('08ff', 'hex'))).toThrow(/truncated varint/);
  });
});

describe('gRPC framing', () => {
  it('prefixes 0 + big-endian length and splits it back', () => {
    expect(hex(frame(Buffer.from('0801', 'hex')))).toBe('00000000020801');
    expect(unframe(Buffer.from('000000000208010000000000', 'hex')).map(hex)).toEqual(['0801', '']);
    expect(() => unframe(Buffer.from('0100000000', 'hex'))).toThrow(/compressed/);
    expect(() => unframe(Buffer.from('00000000050801', 'hex'))).toThrow(/truncated/);
  });
});

describe('CRI messages (runtime.v1 field numbers)', () => {
  it('RunPodSandboxRequest: config(1){metadata(1){name 1, uid 2, namespace 3}, hostname 2, linux(8){cgroup_parent 1}}', () => {
    const req = new Reader(runPodSandboxRequest({ metadata: { name: 'p', uid: 'u', namespace: 'n' }, hostname: 'h', cgroupParent: '/cg' }));
    const config = req.message(1)!;
    const md = config.message(1)!;
    expect([md.string(1), md.string(2), md.string(3), config.string(2), config.message(8)!.string(1)]).toEqual(['p', 'u', 'n', 'h', '/cg']);
    expect(hex(sandboxIdRequest('x', true))).toBe('0a01781001');
  });
  it('PodSandboxStatusResponse: state, ips (ip 1 + additional_ips 2) and containerd’s verbose info', () => {
    const net = new Writer().string(1, '10.244.1.2').message(2, new Writer().string(1, 'fd00::2'));
    const status = new Writer().string(1, 'sb').message(2, new Writer().string(1, 'p')).uint(3, 1).message(5, net);
    const info = JSON.stringify({ runtimeSpec: { linux: { namespaces: [{ type: 'pid' }, { type: 'network', path: '/s/netns/cni-1' }] } } });
    const s = podSandboxStatusResponse(new Writer().message(1, status).map(2, { info }).finish());
    expect([s.id, s.metadata.name, s.state, s.ips]).toEqual(['sb', 'p', 'SANDBOX_NOTREADY', ['10.244.1.2', 'fd00::2']]);
    expect(netnsPathOf(s)).toBe('/s/netns/cni-1');
  });
});
