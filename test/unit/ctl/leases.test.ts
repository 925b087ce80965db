// flannelctl leases: which lease is this node's, the table and the JSON view.
import { describe, expect, it } from 'vitest';
import { formatLeaseTable, leaseView, shortDuration } from '../../../ctl/leases.js';
import { findMe, parseSubnetEnv } from '../../../ctl/node.js';
import { MAC1, MAC2, NOW, SUBNET_ENV, vxlanLease } from './fixtures.js';

const rows = () => [
  { lease: vxlanLease('10.10.0.0/20', '192.168.100.1', MAC1, 86_400 - 90) },
  { lease: { ...vxlanLease('10.10.16.0/20', '192.168.100.2', MAC2), expiration: NOW - 1000, reservation: true } },
];

describe('flannelctl leases', () => {
  it('finds this node by node name, then subnet.env, then --public-ip', () => {
    const r = [...rows(), { lease: vxlanLease('10.10.32.0/20', '192.168.100.3', '02:00:00:00:00:03'), node: 'n3' }];
    const env = parseSubnetEnv('/t/subnet.env', SUBNET_ENV);
    expect(findMe(r, { nodeName: 'n3', subnetEnv: env })).toEqual({ row: r[2], how: 'node name n3' });
    expect(findMe(r, { nodeName: 'nx', subnetEnv: env })).toEqual({ row: r[0], how: '/t/subnet.env' });
    expect(findMe(r, { subnetEnv: { path: '/t/x', error: 'no such file' }, publicIP: '192.168.100.2' })).toEqual({ row: r[1], how: '--public-ip 192.168.100.2' });
    expect(findMe(r, { publicIP: '192.168.100.9' }).row).toBeUndefined();
  });

  it('the JSON view: key, expiry and age from the 24 h TTL; a reservation has neither', () => {
    const [a, b] = rows();
    expect(leaseView(a!, true, NOW)).toEqual({
      me: true,
      subnet: '10.10.0.0/20',
      publicIP: '192.168.100.1',
      backend: 'vxlan',
      key: MAC1,
      reservation: false,
      expires: new Date(NOW + (86_400 - 90) * 1000).toISOString(),
      ageSeconds: 90,
    });
    expect(leaseView(b!, false, NOW)).toEqual({ me: false, subnet: '10.10.16.0/20', publicIP: '192.168.100.2', backend: 'vxlan', key: MAC2, reservation: true });
  });

  it('the table: aligned columns, * on this node, reserved, kubectl-style durations', () => {
    const [a, b] = rows();
    expect(formatLeaseTable([leaseView(a!, true, NOW), leaseView(b!, false, NOW)], NOW)).toBe(
      [
        '   SUBNET         PUBLIC-IP      BACKEND  VTEPMAC/KEY        EXPIRES    AGE    NODE',
        '*  10.10.0.0/20   192.168.100.1  vxlan    02:00:00:00:00:01  in 23h58m  1m30s  -',
        '   10.10.16.0/20  192.168.100.2  vxlan    02:00:00:00:00:02  reserved   -      -',
        '',
      ].join('\n'),
    );
    const gone = leaseView({ lease: vxlanLease('10.10.32.0/20', '192.168.100.3', '02:00:00:00:00:03', -5) }, false, NOW);
    expect(formatLeaseTable([gone], NOW).split('\n')[1]).toBe('   10.10.32.0/20  192.168.100.3  vxlan    02:00:00:00:00:03  expired  1d0h  -');
    expect([shortDuration(5), shortDuration(90), shortDuration(7260), shortDuration(90_000)]).toEqual(['5s', '1m30s', '2h1m', '1d1h']);
  });
});
