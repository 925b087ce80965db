// What cleanup counts as flanneld's: devices by name and kind, the routes it makes outside them, and
// how a running flanneld is recognised.
import { describe, expect, it } from 'vitest';
import { flannelRoutes, isFlannelDevice } from '../../../ctl/cleanup.js';
import { isFlanneldArgv } from '../../../ctl/running.js';
import { parseSubnetEnv } from '../../../ctl/node.js';
import type { Link, Route } from '../../../shared/kernel/kernel.js';

const link = (name: string, kind?: string): Link => ({ name, index: 1, mtu: 1500, mac: '', up: true, ...(kind ? { kind } : {}) });

describe('cleanup: what is ours', () => {
  it('devices: flannel.<VNI>/flannel-v6.<VNI> vxlan, flannel-wg(-v6), flannel.ipip; not a look-alike of another kind', () => {
    const mine = [link('flannel.1', 'vxlan'), link('flannel-v6.4096', 'vxlan'), link('flannel-wg', 'wireguard'), link('flannel-wg-v6', 'wireguard'), link('flannel.ipip', 'ipip')];
    const others = [link('flannel.1', 'bridge'), link('flannel-test', 'bridge'), link('cni0', 'bridge'), link('eth0', 'veth'), link('flannel.ipip', 'vxlan')];
    expect(mine.filter(isFlannelDevice)).toEqual(mine);
    expect(others.filter(isFlannelDevice)).toEqual([]);
  });

  it('routes: gateway routes into the flannel network (host-gw) and our blackhole, never our own subnet, kernel routes or others', () => {
    const env = parseSubnetEnv('/t', 'FLANNEL_NETWORK=10.0.0.0/8\nFLANNEL_SUBNET=10.10.0.1/20\n');
    const r = (dst: string, more: Partial<Route> = {}): Route => ({ family: 4, dst, ...more });
    const mine = [r('10.10.16.0/20', { via: '192.168.1.2', dev: 'eth0' }), r('10.10.0.0/20', { type: 'blackhole' })];
    const others = [
      r('10.10.0.0/20', { dev: 'cni0' }),
      r('10.10.0.0/20', { via: '192.168.1.9' }),
      r('192.168.5.0/24', { via: '192.168.1.1' }),
      r('default', { via: '192.168.1.1' }),
      r('10.10.32.0/20', { type: 'blackhole' }),
      r('10.10.48.0/20', { via: '192.168.1.3', table: 100 }),
      r('0.0.0.0/0', { via: '192.168.1.1' }),
    ];
    expect(flannelRoutes([...mine, ...others], env)).toEqual(mine);
    expect(flannelRoutes(mine, { path: '/t', error: 'no such file' })).toEqual([]);
  });

  it('a running flanneld: the Go binary, or node/bun running our bundle; not flannelctl or an editor', () => {
    expect(isFlanneldArgv(['/opt/bin/flanneld', '--ip-masq'])).toBe(true);
    expect(isFlanneldArgv(['/usr/bin/node', '--max-semi-space-size=1', '--single-threaded', '/w/dist/bin/flanneld', '--iface=eth0'])).toBe(true);
    expect(isFlanneldArgv(['node', '/w/dist/bin/flanneld.mjs'])).toBe(true);
    expect(isFlanneldArgv(['/usr/bin/node', '/w/dist/bin/flannelctl', 'cleanup'])).toBe(false);
    // the compiled multi-call file: the same inode is the daemon as flanneld and the tool as flannelctl
    expect(isFlanneldArgv(['/usr/local/bin/flanneld', '--iface=eth0'])).toBe(true);
    expect(isFlanneldArgv(['/usr/local/bin/flannelctl', 'cleanup'])).toBe(false);
    expect(isFlanneldArgv(['vim', 'flanneld'])).toBe(false);
    expect(isFlanneldArgv(['/usr/bin/node', '/w/x.js', 'flanneld'])).toBe(false);
    expect(isFlanneldArgv([])).toBe(false);
  });
});
