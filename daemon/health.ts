// /healthz and /readyz (flanneld main.go mustRunHealthz), only when --healthz-port > 0:
//   GET /healthz → 200 "flanneld is running"
//   GET /readyz  → 200 "flanneld is ready" once subnet.env is written, else 503 "flanneld is not ready yet"
import http from 'node:http';

export interface HealthServer {
  setReady(ready: boolean): void;
  /** the bound port (useful with port 0 in tests) */
  port(): number;
  close(): Promise<void>;
}

export async function startHealthServer(ip: string, port: number): Promise<HealthServer> {
  let ready = false;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('flanneld is running');
    } else if (path === '/readyz') {
      if (ready) res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('flanneld is ready');
      else res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end('flanneld is not ready yet');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  return {
    setReady: (r) => {
      ready = r;
    },
    port: () => (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        // 3 s grace, as Go's Shutdown with a timeout
        const t = setTimeout(() => server.closeAllConnections(), 3000);
        server.close(() => {
          clearTimeout(t);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
