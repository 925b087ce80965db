import { describe, expect, it } from 'vitest';
import { startHealthServer } from '../../../daemon/health.js';

describe('health server', () => {
  it('/healthz is always 200, /readyz 503 until ready', async () => {
    const h = await startHealthServer('127.0.0.1', 0);
    try {
      const base = `http://127.0.0.1:${h.port()}`;
      let r = await fetch(`${base}/healthz`);
      expect([r.status, await r.text()]).toEqual([200, 'flanneld is running']);
      r = await fetch(`${base}/readyz`);
      expect([r.status, await r.text()]).toEqual([503, 'flanneld is not ready yet']);
      h.setReady(true);
      r = await fetch(`${base}/readyz`);
      expect([r.status, await r.text()]).toEqual([200, 'flanneld is ready']);
    } finally {
      await h.close();
    }
  });
});
