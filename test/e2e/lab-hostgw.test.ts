// The lab with the host-gw backend: 2 hosts on one underlay, 1 pod each through our CNI plugins;
// pods reach each other through plain routes via the peer's underlay address, no VXLAN device.
// Namespaces fl-e2g-<pid>-*, state in a temp dir; afterAll tears it all down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labCanRun, leaseKey, newLab } from './lab-harness.js';

const canRun = labCanRun();
const L = newLab({
  name: 'hostgw',
  prefix: 'fl-e2g',
  hosts: 2,
  pods: 1,
  config: '{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.0.0","SubnetMax":"10.99.0.0","Backend":{"Type":"host-gw"}}',
});
const { run: lab, inHost } = L;

describe.skipIf(!canRun)('the lab with host-gw', () => {
  beforeAll(() => {
    lab('lab_up');
  }, 120_000);
  afterAll(() => {
    L.down();
  });

  it('pods ping across hosts through routes via the peer, with no VXLAN device', () => {
    const r = lab('lab_ping_matrix', true);
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout.match(/\bok\b/g)).toHaveLength(4);
    for (const [i, peer] of [[1, 2], [2, 1]] as const) {
      const subnet = lab(`lab_host_subnet ${peer}`).stdout.trim();
      expect(inHost(i, ['ip', 'route', 'show', subnet]).stdout).toContain(`via 192.168.100.${peer} dev eth0`);
      expect(inHost(i, ['ip', '-o', 'link', 'show', 'type', 'vxlan']).stdout.trim()).toBe('');
    }
    const lease = L.etcdGet(leaseKey(lab('lab_host_subnet 1').stdout.trim()));
    expect(JSON.parse(lease)).toEqual({ PublicIP: '192.168.100.1', PublicIPv6: null, BackendType: 'host-gw' });
  });
});
