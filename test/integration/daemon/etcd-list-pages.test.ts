// Listing leases in pages (EtcdRegistry.listPaged): every key once, in one snapshot (a key put between
// two pages is not in the listing, and the listing's revision is the first page's), on a real etcd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNet, parseIP, parseNet } from '../../../shared/net/ip.js';
import { memoryLogger } from '../../../shared/log.js';
import { EtcdClient } from '../../../daemon/subnet/etcd/etcd-client.js';
import { EtcdRegistry } from '../../../daemon/subnet/etcd/registry.js';
import { hasEtcd, startEtcd, type TestEtcd } from '../../helpers/etcd.js';

const value = (i: number) => `{"PublicIP":"192.168.7.${i}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:${i.toString(16).padStart(2, '0')}"}}`;

/** A client that puts `key` right after the first page of a listing was read (once). */
class PutBetweenPages extends EtcdClient {
  pages = 0;
  constructor(endpoint: string, private readonly key: string) {
    super({ endpoints: [endpoint] });
  }
  override async range(...a: Parameters<EtcdClient['range']>) {
    const r = await super.range(...a);
    if (a[1]?.limit && ++this.pages === 1) await this.put(this.key, value(99));
    return r;
  }
}

describe.skipIf(!hasEtcd)('EtcdRegistry lists leases in pages', () => {
  let etcd: TestEtcd;
  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('reads every lease once across pages, as one snapshot at the first page revision', async () => {
    const c = new PutBetweenPages(etcd.endpoint, '/pages/subnets/10.9.50.0-24');
    try {
      for (let i = 1; i <= 7; i++) await c.put(`/pages/subnets/10.9.${i}.0-24`, value(i));
      await c.put('/pages/subnets-old/10.9.1.0-24', value(1)); // a sibling prefix is not a lease
      const before = (await c.range('/pages/subnets/', { prefix: true, countOnly: true })).revision;
      const r = new EtcdRegistry(c, '/pages', memoryLogger(), Date.now, 3);
      const { leases, revision } = await r.getSubnets();
      expect(c.pages).toBe(3); // 3 + 3 + 1
      expect(leases.map((l) => formatNet(l.subnet)).sort()).toEqual([1, 2, 3, 4, 5, 6, 7].map((i) => `10.9.${i}.0/24`));
      expect(revision).toBe(before);
      expect(leases[0]!.attrs.publicIP).toEqual(parseIP('192.168.7.1'));
      // the key put between the pages is there for the next listing
      const again = await new EtcdRegistry(c, '/pages', memoryLogger(), Date.now, 3).getSubnets();
      expect(again.leases.map((l) => l.subnet)).toContainEqual(parseNet('10.9.50.0/24'));
    } finally {
      c.close();
    }
  });
});
