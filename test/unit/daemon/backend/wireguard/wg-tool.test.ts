// Kernel WireGuard is configured with `wg set` (no generic netlink here): keys go on stdin
// (/dev/stdin as the key file), never in an argv that `ps` would show; `wg show <dev> dump` is read back.
import { describe, expect, it } from 'vitest';
import { WgToolControl } from '../../../../../daemon/backend/wireguard/control.js';
import { WgKey } from '../../../../../daemon/backend/wireguard/keys.js';

const PRIV = WgKey.parse('dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=');
const PEER = WgKey.parse('hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=');
const PSK = WgKey.generatePrivate();

function recorder(dump = 'priv\tpub\t51820\toff\n') {
  const calls: Array<{ argv: string[]; stdin: string }> = [];
  return {
    calls,
    control: new WgToolControl(async (argv, stdin) => {
      calls.push({ argv, stdin });
      return argv[0] === 'show' ? dump : '';
    }),
  };
}

describe('WgToolControl (kernel WireGuard through wg)', () => {
  it('sets the private key and port with the key on stdin', async () => {
    const { calls, control } = recorder();
    await control.configure('flannel-wg', { privateKey: PRIV, listenPort: 51820 });
    expect(calls).toEqual([{ argv: ['set', 'flannel-wg', 'listen-port', '51820', 'private-key', '/dev/stdin'], stdin: `${PRIV.toString()}\n` }]);
  });

  it('adds peers (endpoint, keepalive, allowed IPs) in one call, a PSK on stdin, removes with `remove`', async () => {
    const { calls, control } = recorder();
    await control.configure('flannel-wg', {
      peers: [
        { publicKey: PEER, endpoint: '192.168.100.2:51820', keepalive: 0, allowedIPs: ['10.244.2.0/24'] },
        { publicKey: PRIV.publicKey(), remove: true },
      ],
    });
    expect(calls).toEqual([
      {
        argv: ['set', 'flannel-wg', 'peer', PEER.toString(), 'endpoint', '192.168.100.2:51820', 'persistent-keepalive', 'off', 'allowed-ips', '10.244.2.0/24', 'peer', PRIV.publicKey().toString(), 'remove'],
        stdin: '',
      },
    ]);
    calls.length = 0;
    await control.configure('flannel-wg', { peers: [{ publicKey: PEER, presharedKey: PSK, endpoint: '[fd00::2]:51821', keepalive: 25, allowedIPs: ['fd10::/64'] }] });
    expect(calls[0]!.argv).toEqual(['set', 'flannel-wg', 'peer', PEER.toString(), 'endpoint', '[fd00::2]:51821', 'persistent-keepalive', '25', 'allowed-ips', 'fd10::/64', 'preshared-key', '/dev/stdin']);
    expect(calls[0]!.stdin).toBe(`${PSK.toString()}\n`);
    for (const c of calls) expect(c.argv.join(' ')).not.toContain(PSK.toString());
  });

  it('reads the peers from `wg show dump`', async () => {
    const { control } = recorder(`p\tq\t51820\toff\n${PEER.toString()}\t(none)\t192.168.100.2:51820\t10.244.2.0/24,fd10::/64\t0\t0\t0\toff\n`);
    expect(await control.peers('flannel-wg')).toEqual([{ publicKey: PEER.toString(), endpoint: '192.168.100.2:51820', allowedIPs: ['10.244.2.0/24', 'fd10::/64'] }]);
  });
});
