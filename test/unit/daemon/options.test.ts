import { describe, expect, it } from 'vitest';
import { checkRenewMargin, parseOptions, splitEndpoints } from '../../../daemon/options.js';

const run = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseOptions(argv, env, 'v9');
  if (r.kind !== 'run') throw new Error(`exited: ${r.stderr}`);
  return r.options;
};

describe('flanneld options', () => {
  it('has Go defaults', () => {
    const o = run([]);
    expect(o.etcdEndpoints).toBe('http://127.0.0.1:4001,http://127.0.0.1:2379');
    expect(o.etcdPrefix).toBe('/coreos.com/network');
    expect(o.subnetFile).toBe('/run/flannel/subnet.env');
    expect(o.subnetLeaseRenewMargin).toBe(60);
    expect(o.healthzIP).toBe('0.0.0.0');
    expect(o.healthzPort).toBe(0);
    expect(o.iptablesForwardRules).toBe(true);
    expect(o.ipMasq).toBe(false);
    expect(o.dataDir).toBe('/var/lib/flannel');
    expect(o.iface).toEqual([]);
  });

  it('takes -x and --x, =value and separate values, repeatable flags, bare booleans', () => {
    const o = run(['-etcd-endpoints=http://a:1,http://b:2', '--iface', 'eth0', '-iface=10.0.0.1', '--ip-masq', '--iptables-forward-rules=false', '--healthz-port', '8081']);
    expect(splitEndpoints(o.etcdEndpoints)).toEqual(['http://a:1', 'http://b:2']);
    expect(o.iface).toEqual(['eth0', '10.0.0.1']);
    expect(o.ipMasq).toBe(true);
    expect(o.iptablesForwardRules).toBe(false);
    expect(o.healthzPort).toBe(8081);
  });

  it('FLANNELD_* fills flags not set on the command line; empty values are ignored', () => {
    const o = run(['--etcd-prefix=/cli'], {
      FLANNELD_ETCD_PREFIX: '/env',
      FLANNELD_IFACE: 'eth1,eth2',
      FLANNELD_PUBLIC_IP: '10.1.1.1',
      FLANNELD_SUBNET_FILE: '',
      FLANNELD_IP_MASQ: 'true',
      FLANNELD_DATA_DIR: '/tmp/d',
      FLANNELD_SUBNET_LEASE_RENEW_MARGIN: '30',
    });
    expect(o.etcdPrefix).toBe('/cli');
    expect(o.iface).toEqual(['eth1,eth2']); // one value, no comma splitting
    expect(o.publicIP).toBe('10.1.1.1');
    expect(o.subnetFile).toBe('/run/flannel/subnet.env');
    expect(o.ipMasq).toBe(true);
    expect(o.dataDir).toBe('/tmp/d');
    expect(o.subnetLeaseRenewMargin).toBe(30);
  });

  it('--version prints to stderr and exits 0; FLANNELD_VERSION has no effect', () => {
    expect(parseOptions(['--version'], {}, 'v9')).toEqual({ kind: 'exit', code: 0, stderr: 'v9\n' });
    expect(parseOptions([], { FLANNELD_VERSION: 'true' }).kind).toBe('run');
  });

  it('-h and unknown flags print usage and exit 0 (Go quirk)', () => {
    const h = parseOptions(['-h'], {});
    expect(h.kind === 'exit' && h.code === 0 && h.stderr.includes('-etcd-endpoints')).toBe(true);
    const bad = parseOptions(['--nope'], {});
    expect(bad.kind === 'exit' && bad.code === 0 && bad.stderr.startsWith('flag provided but not defined: -nope')).toBe(true);
    const noval = parseOptions(['--etcd-prefix'], {});
    expect(noval.kind === 'exit' && noval.stderr.startsWith('flag needs an argument: -etcd-prefix')).toBe(true);
  });

  it('renew margin must be 1..1439', () => {
    expect(checkRenewMargin(0)).toBe('Invalid subnet-lease-renew-margin option, out of acceptable range');
    expect(checkRenewMargin(1440)).toBe('Invalid subnet-lease-renew-margin option, out of acceptable range');
    expect(checkRenewMargin(1)).toBeUndefined();
    expect(checkRenewMargin(1439)).toBeUndefined();
  });
});
