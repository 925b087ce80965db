// A throw-away CA and a server certificate for the double's HTTPS (openssl, P-256: a few ms each).
// The server certificate carries every address the double is reached by as an IP SAN (client-go and
// kubectl verify the host against SANs only).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';

export interface ServerCerts {
  ca: string;
  cert: string;
  key: string;
}

export function makeServerCerts(dir: string, hosts: readonly string[]): ServerCerts {
  const sans = [...new Set(['127.0.0.1', 'localhost', ...hosts])].map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`));
  const ext = join(dir, 'san.cnf');
  writeFileSync(ext, `[server]\nsubjectAltName = ${sans.join(', ')}\nextendedKeyUsage = serverAuth\nkeyUsage = digitalSignature\n`);
  const newkey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run(['req', '-x509', ...newkey, '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=kube-apiserver-double-ca']);
  run(['req', ...newkey, '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver']);
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', ext, '-extensions', 'server']);
  return { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
}
