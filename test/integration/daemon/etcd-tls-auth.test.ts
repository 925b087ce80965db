// etcd with TLS client certificates (made by openssl in the helper) and with user/password auth.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNet, parseIP, parseNet } from '../../../shared/net/ip.js';
import type { LeaseEvent } from '../../../daemon/lease.js';
import { memoryLogger } from '../../../shared/log.js';
import { EtcdClient } from '../../../daemon/subnet/etcd/etcd-client.js';
import { LocalManager } from '../../../daemon/subnet/etcd/local-manager.js';
import { EtcdRegistry } from '../../../daemon/subnet/etcd/registry.js';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';
import { until } from '../../helpers/until.js';


/** acquire + watch one added event through `client` */
async function roundTrip(etcd: TestEtcd, client: EtcdClient, prefix: string): Promise<void> {
  etcd.ctl(['put', `${prefix}/config`, '{"Network":"10.8.0.0/16"}']);
  const ac = new AbortController();
  try {
    const sm = new LocalManager({ registry: new EtcdRegistry(client, prefix, memoryLogger()), log: memoryLogger() });
    const l = await sm.acquireLease({ publicIP: parseIP('10.1.1.1') }, ac.signal);
    expect(l.subnet.prefix).toBe(24);
    const batches: LeaseEvent[][] = [];
    void (async () => {
      for await (const b of sm.watchLeases(ac.signal)) batches.push(b);
    })();
    await until(() => batches.length >= 1, 'snapshot');
    etcd.ctl(['put', `${prefix}/subnets/10.8.200.0-24`, '{"PublicIP":"10.1.1.2","PublicIPv6":null}']);
    await until(() => batches.flat().some((e) => formatNet(e.lease.subnet) === '10.8.200.0/24'), 'watch event');
  } finally {
    ac.abort();
    client.close();
  }
}

describe.skipIf(!hasEtcd)('etcd over TLS with client certificates', () => {
  let etcd: TestEtcd;
  beforeAll(async () => {
    etcd = await startEtcd({ tls: true });
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('acquires and watches with a client certificate', async () => {
    const t = etcd.tls!;
    const c = new EtcdClient({
      endpoints: [etcd.endpoint],
      tls: { key: readFileSync(t.clientKey), cert: readFileSync(t.clientCert), ca: readFileSync(t.ca) },
    });
    await roundTrip(etcd, c, '/tls');
  });

  it('is refused without a client certificate', async () => {
    const c = new EtcdClient({ endpoints: [etcd.endpoint], ca: readFileSync(etcd.tls!.ca), requestTimeoutMs: 2000 });
    try {
      await expect(new EtcdRegistry(c).getNetworkConfig()).rejects.toThrow();
    } finally {
      c.close();
    }
  });

  it('an endpoint without scheme uses https when certificates are given', async () => {
    const t = etcd.tls!;
    const c = new EtcdClient({
      endpoints: [`127.0.0.1:${etcd.clientPort}`],
      tls: { key: readFileSync(t.clientKey), cert: readFileSync(t.clientCert), ca: readFileSync(t.ca) },
    });
    try {
      await new EtcdRegistry(c, '/tls2').createSubnet(parseNet('10.8.1.0/24'), undefined, { publicIP: parseIP('1.1.1.1') }, 60);
      expect(etcd.ctl(['get', '--print-value-only', '/tls2/subnets/10.8.1.0-24'])).toBe('{"PublicIP":"1.1.1.1","PublicIPv6":null}\n');
    } finally {
      c.close();
    }
  });
});

describe.skipIf(!hasEtcd)('etcd with username/password auth', () => {
  let etcd: TestEtcd;
  beforeAll(async () => {
    etcd = await startEtcd({ auth: { user: 'flannel', password: 's3cret' } });
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('acquires and watches as a user with a role on the prefix', async () => {
    await roundTrip(etcd, new EtcdClient({ endpoints: [etcd.endpoint], username: 'flannel', password: 's3cret' }), '/auth');
  });

  it('a wrong password is refused, with etcd message', async () => {
    const c = new EtcdClient({ endpoints: [etcd.endpoint], username: 'flannel', password: 'wrong' });
    try {
      await expect(new EtcdRegistry(c).getNetworkConfig()).rejects.toThrow(/authentication failed/);
    } finally {
      c.close();
    }
  });

  it('no credentials: refused', async () => {
    const c = new EtcdClient({ endpoints: [etcd.endpoint] });
    try {
      await expect(new EtcdRegistry(c, '/auth').getNetworkConfig()).rejects.toThrow(/user name is empty|permission denied/);
    } finally {
      c.close();
    }
  });

  it('TLS and auth together', async () => {
    const both = await startEtcd({ tls: true, auth: { user: 'root', password: 'pw' } });
    try {
      const t = both.tls!;
      const c = new EtcdClient({
        endpoints: [both.endpoint],
        tls: { key: readFileSync(t.clientKey), cert: readFileSync(t.clientCert), ca: readFileSync(t.ca) },
        username: 'root',
        password: 'pw',
      });
      await roundTrip(both, c, '/both');
    } finally {
      await both.stop();
    }
  });
});

describe.skipIf(!hasEtcd)('etcd with TLS, client-cert auth and user auth: a client certificate with a CN', () => {
  it('is refused by etcd JSON gateway, with an operator hint', async () => {
    const both = await startEtcd({ tls: true, auth: { user: 'root', password: 'pw' } });
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const d = mkdtempSync(join(tmpdir(), 'cn-'));
    try {
      // a client certificate with a CommonName, signed by the etcd's CA
      const t = both.tls!;
      const { execFileSync } = await import('node:child_process');
      execFileSync('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(d, 'k'), '-out', join(d, 'csr'), '-subj', '/CN=root'], { stdio: 'pipe' });
      execFileSync('openssl', ['x509', '-req', '-in', join(d, 'csr'), '-CA', t.ca, '-CAkey', join(both.dir, 'ca.key'), '-CAcreateserial', '-out', join(d, 'crt'), '-days', '1'], { stdio: 'pipe' });
      const c = new EtcdClient({
        endpoints: [both.endpoint],
        tls: { key: readFileSync(join(d, 'k')), cert: readFileSync(join(d, 'crt')), ca: readFileSync(t.ca) },
        username: 'root',
        password: 'pw',
      });
      try {
        await expect(new EtcdRegistry(c).getNetworkConfig()).rejects.toThrow(/use a client certificate without a CommonName/);
      } finally {
        c.close();
      }
    } finally {
      rmSync(d, { recursive: true, force: true });
      await both.stop();
    }
  });
});
