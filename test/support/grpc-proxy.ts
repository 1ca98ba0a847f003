/**
 * A TLS-terminating gRPC proxy in front of a Temporal dev server, as a cluster or Temporal Cloud looks to a
 * client: Debian's nginx (installed by `node bin/setup.js --tls`, which `npm test` runs) with
 * `listen … ssl http2` and `grpc_pass`, certificates made here with `openssl`. Three fronts on free ports:
 *   - tls:    server certificate only
 *   - mtls:   and `ssl_verify_client on` (a client certificate signed by the test CA is required)
 *   - apiKey: TLS, and requests without `authorization: Bearer <key>` get gRPC status 16 (UNAUTHENTICATED)
 * nginx runs in the foreground (`daemon off`) with its config, logs and temp files in a temp dir; a watchdog
 * stops it when this process ends in any way.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

export interface TestCerts {
  dir: string;
  /** The CA that signed the server and client certificates. */
  ca: string;
  /** A CA that signed nothing here: trusting only it must fail. */
  otherCa: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export interface GrpcProxy {
  certs: TestCerts;
  /** host:port of each front. */
  tls: string;
  mtls: string;
  apiKey: string;
  /** The key the apiKey front demands. */
  key: string;
  errorLog(): string;
  stop(): Promise<void>;
}

/** nginx: from .tools/paths.json (written by `node bin/setup.js --tls`), else /usr/sbin or PATH. */
export function nginxBinary(): string {
  try {
    const p = JSON.parse(readFileSync(path.join(ROOT, '.tools', 'paths.json'), 'utf8')) as { nginx?: string };
    if (p.nginx && existsSync(p.nginx)) return p.nginx;
  } catch { /* fall through */ }
  for (const dir of ['/usr/sbin', '/usr/local/sbin', ...(process.env.PATH ?? '').split(path.delimiter)]) {
    const candidate = path.join(dir, 'nginx');
    if (dir && existsSync(candidate)) return candidate;
  }
  throw new Error('nginx not found: run `node bin/setup.js --tls` (npm test does; needs root or passwordless sudo for apt-get)');
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate (P-256 keys), plus an unrelated CA. */
export function makeCerts(dir: string): TestCerts {
  mkdirSync(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const [name, cn] of [['ca', 'curate test CA'], ['other-ca', 'some other CA']]) {
    openssl(['req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  }
  const leaf = (name: string, cn: string, ext: string) => {
    writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`,
      '-days', '2', '-extfile', `${name}.ext`], dir);
  };
  leaf('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'curate-worker', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  const p = (f: string) => path.join(dir, f);
  return {
    dir, ca: p('ca.pem'), otherCa: p('other-ca.pem'), serverCert: p('server.pem'), serverKey: p('server.key'),
    clientCert: p('client.pem'), clientKey: p('client.key'),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.setTimeout(500, () => { s.destroy(); resolve(false); });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/** nginx in front of `upstream` (host:port of the dev server's gRPC frontend). */
export async function startGrpcProxy(upstream: string): Promise<GrpcProxy> {
  const nginx = nginxBinary();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'curate-nginx-'));
  const certs = makeCerts(path.join(dir, 'certs'));
  const key = `test-${randomBytes(12).toString('hex')}`;
  const [tlsPort, mtlsPort, keyPort] = [await freePort(), await freePort(), await freePort()];
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(dir, 'tmp', d), { recursive: true });
  const tlsFiles = `ssl_certificate ${certs.serverCert}; ssl_certificate_key ${certs.serverKey};`;
  const pass = `grpc_pass grpc://${upstream};`;
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const conf = `
${asRoot ? 'user root;' : ''}
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body; proxy_temp_path ${dir}/tmp/proxy; fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi; scgi_temp_path ${dir}/tmp/scgi;
  # Temporal's long polls last about a minute, payloads reach megabytes, a worker keeps many calls open.
  client_max_body_size 0;
  grpc_read_timeout 1h; grpc_send_timeout 1h;
  keepalive_timeout 1h; keepalive_requests 1000000;
  http2_max_concurrent_streams 1000;
  server {
    listen 127.0.0.1:${tlsPort} ssl http2;
    ${tlsFiles}
    location / { ${pass} }
  }
  server {
    listen 127.0.0.1:${mtlsPort} ssl http2;
    ${tlsFiles}
    ssl_client_certificate ${certs.ca};
    ssl_verify_client on;
    location / { ${pass} }
  }
  server {
    listen 127.0.0.1:${keyPort} ssl http2;
    ${tlsFiles}
    location / {
      if ($http_authorization != "Bearer ${key}") {
        add_header content-type application/grpc always;
        add_header grpc-status 16 always;
        add_header grpc-message "missing or wrong API key" always;
        return 200;
      }
      ${pass}
    }
  }
}
`;
  const confFile = path.join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const child = spawn(nginx, ['-p', dir, '-c', confFile, '-e', path.join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  // Watchdog: stops nginx when its stdin closes (stop(), or this process dying in any way).
  const watchdog = spawn('sh', ['-c', 'read _ignored; kill -TERM "$1" 2>/dev/null; sleep 2; kill -KILL "$1" 2>/dev/null', 'nginx-watchdog', String(child.pid)], {
    detached: true, stdio: ['pipe', 'ignore', 'ignore'],
  });
  const watchdogDone = new Promise<void>((resolve) => watchdog.once('exit', () => resolve()));
  const errorLog = () => {
    try {
      return readFileSync(path.join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async () => {
    if (!exited) child.kill('SIGTERM');
    watchdog.stdin?.end();
    await Promise.all([exitedPromise, watchdogDone]);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      const why = `${stderr}\n${errorLog()}`.trim();
      await stop();
      throw new Error(`nginx did not start: ${why}`);
    }
    if ((await answers(tlsPort)) && (await answers(mtlsPort)) && (await answers(keyPort))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not listen within 15 s: ${errorLog()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    certs, key, errorLog, stop,
    tls: `127.0.0.1:${tlsPort}`, mtls: `127.0.0.1:${mtlsPort}`, apiKey: `127.0.0.1:${keyPort}`,
  };
}
