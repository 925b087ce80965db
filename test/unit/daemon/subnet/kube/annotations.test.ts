import { describe, expect, it } from 'vitest';
import { newAnnotations, storedVtepMac } from '../../../../../daemon/subnet/kube/annotations.js';
import { annotationPatch, desiredAnnotations, networkAvailablePatch, nodeToLease, podCIDRs } from '../../../../../daemon/subnet/kube/node.js';
import { parseIP } from '../../../../../shared/net/ip.js';

describe('annotation prefix (Go Test_newAnnotations)', () => {
  it.each([
    ['flannel.alpha.coreos.com', 'flannel.alpha.coreos.com/backend-type'],
    ['org.com/9', 'org.com/9-backend-type'],
    ['org.com/', 'org.com/backend-type'],
    ['org.com/x-', 'org.com/x-backend-type'],
    ['a.b.org.com', 'a.b.org.com/backend-type'],
  ])('%s → %s', (prefix, key) => {
    expect(newAnnotations(prefix).backendType).toBe(key);
  });
  it.each([
    ['org', 'subnet/kube: prefix must be in a format: fqdn/[0-9a-z-_]*'],
    ['org.COM', 'subnet/kube: prefix must be in a format: fqdn/[0-9a-z-_]*'],
    ['a.org/b/c', 'subnet/kube: prefix can contain at most single slash'],
  ])('%s is refused', (prefix, msg) => {
    expect(() => newAnnotations(prefix)).toThrow(msg);
  });
});

describe('stored VtepMAC (better than Go: JSON, right key)', () => {
  it('reads VtepMAC whatever the field order', () => {
    expect(storedVtepMac('{"VNI":1,"VtepMAC":"7E:1c:9b:2e:33:01"}')).toBe('7e:1c:9b:2e:33:01');
    // Go's trim/split gives nothing here (three `:"` parts)
    expect(storedVtepMac('{"VtepMAC":"7e:1c:9b:2e:33:01","VNI":1,"x":"y"}')).toBe('7e:1c:9b:2e:33:01');
  });
  it('gives nothing for junk', () => {
    expect(storedVtepMac('null')).toBeUndefined();
    expect(storedVtepMac('{"VtepMAC":"nope"}')).toBeUndefined();
    expect(storedVtepMac('{not json')).toBeUndefined();
    expect(storedVtepMac(undefined)).toBeUndefined();
  });
  it('a custom prefix has its own backend-data key (Go looks under "<prefix>/backend-data")', () => {
    expect(newAnnotations('org.com/x').backendData).toBe('org.com/x-backend-data');
  });
});

const A = newAnnotations('flannel.alpha.coreos.com');
const P = 'flannel.alpha.coreos.com/';

describe('annotation patch (spec kube.md §4.1)', () => {
  const attrs = { publicIP: parseIP('192.168.77.1'), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '7e:1c:9b:2e:33:01' } };
  it('first start, vxlan, v4: the exact body, keys sorted', () => {
    const cur = { 'node.alpha.kubernetes.io/ttl': '0' };
    expect(annotationPatch(cur, desiredAnnotations(cur, A, attrs))).toBe(
      '{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"{\\"VNI\\":1,\\"VtepMAC\\":\\"7e:1c:9b:2e:33:01\\"}","flannel.alpha.coreos.com/backend-type":"vxlan","flannel.alpha.coreos.com/kube-subnet-manager":"true","flannel.alpha.coreos.com/public-ip":"192.168.77.1"}}}',
    );
  });
  it('unchanged values: no patch; one changed key: only it', () => {
    const cur = desiredAnnotations({}, A, attrs);
    expect(annotationPatch(cur, desiredAnnotations(cur, A, attrs))).toBeUndefined();
    const moved = { ...attrs, publicIP: parseIP('192.168.77.9') };
    expect(annotationPatch(cur, desiredAnnotations(cur, A, moved))).toBe(`{"metadata":{"annotations":{"${P}public-ip":"192.168.77.9"}}}`);
  });
  it('public-ip-overwrite wins; host-gw data is "null"; dual stack adds the v6 keys', () => {
    const cur = { [`${P}public-ip-overwrite`]: '1.2.3.4' };
    const hg = desiredAnnotations(cur, A, { publicIP: parseIP('10.0.0.1'), backendType: 'host-gw' });
    expect(hg[`${P}public-ip`]).toBe('1.2.3.4');
    expect(hg[`${P}backend-data`]).toBe('null');
    const ds = desiredAnnotations({}, A, { ...attrs, publicIPv6: parseIP('fd00::1'), backendV6Data: { VNI: 1, VtepMAC: '7e:1c:9b:2e:33:02' } });
    expect(ds[`${P}public-ipv6`]).toBe('fd00::1');
    expect(ds[`${P}backend-v6-data`]).toBe('{"VNI":1,"VtepMAC":"7e:1c:9b:2e:33:02"}');
  });
  it('condition patch (§4.2): field order and whole-second times', () => {
    expect(networkAvailablePatch(new Date('2026-11-25T10:00:00.789Z'))).toBe(
      '{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","lastHeartbeatTime":"2026-11-25T10:00:00Z","lastTransitionTime":"2026-11-25T10:00:00Z","reason":"FlannelIsUp","message":"Flannel is running on this node"}]}}',
    );
  });
});

describe('nodeToLease', () => {
  const node = (ann: Record<string, string>, cidrs: string[]) => ({ metadata: { name: 'n', annotations: ann }, spec: { podCIDR: cidrs[0], podCIDRs: cidrs } });
  const ann = { [`${P}public-ip`]: '10.0.0.2', [`${P}backend-type`]: 'vxlan', [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}', [`${P}kube-subnet-manager`]: 'true' };
  it('reads a v4 lease', () => {
    const l = nodeToLease(node(ann, ['10.244.1.0/24']), A, { enableIPv4: true, enableIPv6: false });
    expect(l.subnet).toEqual(podCIDRs(node(ann, ['10.244.1.0/24'])).v4);
    expect(l.attrs.backendData).toEqual({ VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:ff' });
  });
  it('errors: three podCIDRs, a missing family, a bad public IP, no annotations map', () => {
    expect(() => nodeToLease(node(ann, ['10.244.1.0/24', 'fd00::/64', '10.244.2.0/24']), A, { enableIPv4: true, enableIPv6: false })).toThrow(/dualstack/);
    expect(() => nodeToLease(node(ann, ['fd00::/64']), A, { enableIPv4: true, enableIPv6: false })).toThrow('missing IPv4 address on n.Spec.PodCIDRs');
    expect(() => nodeToLease(node({ ...ann, [`${P}public-ip`]: 'x' }, ['10.244.1.0/24']), A, { enableIPv4: true, enableIPv6: false })).toThrow(/not an IPv4 address/);
    expect(() => nodeToLease({ metadata: { name: 'n', annotations: null }, spec: { podCIDR: '10.244.1.0/24' } }, A, { enableIPv4: true, enableIPv6: false })).toThrow(/public-ip/);
  });
});
