/**
 * How every client and worker of the project finds its Temporal server: Temporal's own environment
 * configuration (`@temporalio/envconfig`), i.e. the standard variables `TEMPORAL_ADDRESS`,
 * `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS`, `TEMPORAL_TLS_*`, `TEMPORAL_GRPC_META_*`,
 * `TEMPORAL_PROFILE`, `TEMPORAL_CONFIG_FILE` and the profiles of `temporal.toml` (by default
 * `~/.config/temporalio/temporal.toml`, the file the `temporal` CLI's `config` commands write), with command-line
 * flags (`--address`, `--namespace`, `--profile`) on top. Nothing here reads a connection variable by hand.
 *
 * Precedence, lowest first: built-in defaults (localhost:7233, namespace `default`, no TLS) < the profile
 * (`--profile`, else `TEMPORAL_PROFILE`, else `default`) < the environment variables < the flags.
 * TLS is on when the profile or `TEMPORAL_TLS=true` says so, or when an API key is set (as in every Temporal SDK).
 */
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { loadClientConfigProfile, toClientOptions, type ClientConfigProfile } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { ConfigError } from '../curation/errors';

export const DEFAULT_ADDRESS = 'localhost:7233';
export const DEFAULT_NAMESPACE = 'default';

/** Overrides from the command line (or a caller that knows better, e.g. the demo's own dev server). */
export interface ConnectionOverrides {
  address?: string;
  namespace?: string;
  /** Profile name in temporal.toml (default: `TEMPORAL_PROFILE`, else `default`). */
  profile?: string;
  apiKey?: string;
  /** Environment to read instead of process.env (tests). */
  env?: Record<string, string | undefined>;
}

/** Everything needed to open a client `Connection` or a worker `NativeConnection`. */
export interface ConnectionConfig {
  address: string;
  namespace: string;
  /** false/undefined: plaintext; true: TLS with the system's roots; an object: CA, client pair, server name. */
  tls?: TLSConfig | boolean;
  apiKey?: string;
  /** gRPC headers (`grpc_meta` in a profile, `TEMPORAL_GRPC_META_<NAME>`). */
  metadata?: Record<string, string>;
  /** The profile that was applied, when one was named or the config file has a `default` profile. */
  profile?: string;
  /** The Temporal UI base URL, when the profile names one (`ui_url`) or CURATE_UI_URL is set. */
  uiUrl?: string;
}

interface RawProfile {
  ui_url?: unknown;
}

/**
 * The `ui_url` key of the profile, if any. `@temporalio/envconfig` keeps only the keys it knows, so the raw file
 * is read through its own loader (same file lookup: TEMPORAL_CONFIG_FILE, else the user's config dir).
 */
function profileUiUrl(profileName: string | undefined, env: Record<string, string | undefined>): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const toml = require('@temporalio/envconfig/lib/envconfig-toml') as {
      tomlLoadClientConfig(o: { overrideEnvVars?: Record<string, string> }): { profile?: Record<string, RawProfile> };
    };
    const raw = toml.tomlLoadClientConfig({ overrideEnvVars: env as Record<string, string> });
    const url = raw.profile?.[profileName ?? 'default']?.ui_url;
    return typeof url === 'string' && url ? url.replace(/\/+$/, '') : undefined;
  } catch {
    return undefined;
  }
}

/** Which setting a TLS file came from, for error messages. */
const TLS_FILES: Array<{ field: 'serverCACert' | 'clientCert' | 'clientKey'; what: string; env: string; toml: string }> = [
  { field: 'serverCACert', what: 'server CA certificate', env: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', toml: 'tls.server_ca_cert_path' },
  { field: 'clientCert', what: 'client certificate', env: 'TEMPORAL_TLS_CLIENT_CERT_PATH', toml: 'tls.client_cert_path' },
  { field: 'clientKey', what: 'client key', env: 'TEMPORAL_TLS_CLIENT_KEY_PATH', toml: 'tls.client_key_path' },
];

function checkTlsFiles(profile: ClientConfigProfile): void {
  const tls = profile.tls;
  if (!tls || tls.disabled) return;
  for (const f of TLS_FILES) {
    const src = tls[f.field];
    if (src && 'path' in src && !existsSync(src.path)) {
      throw new ConfigError(`the TLS ${f.what} ${src.path} does not exist (set by ${f.env} or ${f.toml} in the profile)`);
    }
  }
  if (Boolean(tls.clientCert) !== Boolean(tls.clientKey)) {
    const [has, lacks] = tls.clientCert ? [TLS_FILES[1], TLS_FILES[2]] : [TLS_FILES[2], TLS_FILES[1]];
    throw new ConfigError(`mTLS needs both a client certificate and its key: the ${has.what} is set but not the ${lacks.what} (${lacks.env} or ${lacks.toml})`);
  }
}

/** The connection settings from flags, environment and profile (see the file comment for the precedence). */
export function loadConnectionConfig(o: ConnectionOverrides = {}): ConnectionConfig {
  const env = o.env ?? process.env;
  const profileName = o.profile ?? env.TEMPORAL_PROFILE;
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({ profile: o.profile, overrideEnvVars: env as Record<string, string> });
  } catch (err) {
    const msg = (err as Error).message;
    if (/Profile '.*' not found/.test(msg)) {
      const file = env.TEMPORAL_CONFIG_FILE ? `TEMPORAL_CONFIG_FILE=${env.TEMPORAL_CONFIG_FILE}` : 'the config file (~/.config/temporalio/temporal.toml, or TEMPORAL_CONFIG_FILE)';
      throw new ConfigError(`connection profile '${profileName}' not found in ${file}`);
    }
    throw new ConfigError(`cannot read the Temporal connection settings: ${msg.split('\n')[0]}`);
  }
  if (o.apiKey !== undefined) profile.apiKey = o.apiKey;
  if (profile.apiKey === '') profile.apiKey = undefined;
  checkTlsFiles(profile);
  let opts: ReturnType<typeof toClientOptions>;
  try {
    opts = toClientOptions(profile);
  } catch (err) {
    throw new ConfigError(`cannot read the TLS files of the Temporal connection: ${(err as Error).message.split('\n')[0]}`);
  }
  const c = opts.connectionOptions;
  const tls = c.tls === null ? undefined : (c.tls as TLSConfig | boolean | undefined);
  return {
    address: o.address ?? c.address ?? DEFAULT_ADDRESS,
    namespace: o.namespace ?? opts.namespace ?? DEFAULT_NAMESPACE,
    tls: tls === false ? undefined : tls,
    apiKey: c.apiKey as string | undefined,
    metadata: c.metadata && Object.keys(c.metadata).length ? (c.metadata as Record<string, string>) : undefined,
    profile: profileName,
    uiUrl: env.CURATE_UI_URL?.replace(/\/+$/, '') || profileUiUrl(profileName, env),
  };
}

/** Options for `Connection.connect` (client) and `NativeConnection.connect` (worker): the same fields. */
export function connectOptions(c: ConnectionConfig): { address: string; tls?: TLSConfig | boolean; apiKey?: string; metadata?: Record<string, string> } {
  return {
    address: c.address,
    ...(c.tls ? { tls: c.tls } : {}),
    ...(c.apiKey ? { apiKey: c.apiKey } : {}),
    ...(c.metadata ? { metadata: c.metadata } : {}),
  };
}

/** "host:port (namespace ns, TLS with a client certificate, API key, profile p)", for logs and errors. */
export function describeConnection(c: ConnectionConfig): string {
  const parts = [`namespace ${c.namespace}`];
  if (c.tls) parts.push(typeof c.tls === 'object' && c.tls.clientCertPair ? 'mTLS' : 'TLS');
  if (c.apiKey) parts.push('API key');
  if (c.profile) parts.push(`profile ${c.profile}`);
  return `${c.address} (${parts.join(', ')})`;
}

/** What kind of failure a connection error is: a server that is not there, a TLS problem, or a refused credential. */
export type ConnectFailure = 'unreachable' | 'tls' | 'auth';

export class ConnectionError extends Error {
  constructor(readonly kind: ConnectFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConnectionError';
  }
}

function splitAddress(address: string): { host: string; port: number } | null {
  const a = address.replace(/^[a-z]+:\/\//i, '');
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(a) ?? /^([^:]+):(\d+)$/.exec(a);
  return m ? { host: m[1], port: Number(m[2]) } : null;
}

/**
 * A TLS handshake with the connection's own settings, to name the reason when the gRPC client only says
 * "Failed to connect before the deadline": a certificate the CA does not vouch for, a plaintext client talking
 * to a TLS server, or a server that is not there.
 */
export function probeConnection(c: ConnectionConfig, timeoutMs = 3000): Promise<{ kind: ConnectFailure | 'ok'; reason?: string }> {
  const hp = splitAddress(c.address);
  if (!hp) return Promise.resolve({ kind: 'unreachable', reason: `'${c.address}' is not host:port` });
  const t = typeof c.tls === 'object' ? c.tls : {};
  const servername = t.serverNameOverride ?? hp.host;
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: { kind: ConnectFailure | 'ok'; reason?: string }) => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve(r);
    };
    const sock = tlsConnect({
      host: hp.host, port: hp.port, ALPNProtocols: ['h2'], rejectUnauthorized: Boolean(c.tls),
      ...(isIP(servername) ? {} : { servername }),
      ...(t.serverRootCACertificate ? { ca: Buffer.from(t.serverRootCACertificate) } : {}),
      ...(t.clientCertPair ? { cert: Buffer.from(t.clientCertPair.crt), key: Buffer.from(t.clientCertPair.key) } : {}),
    });
    sock.setTimeout(timeoutMs, () => done({ kind: 'unreachable', reason: `no answer within ${timeoutMs / 1000} s` }));
    sock.once('secureConnect', () => done(c.tls ? { kind: 'ok' } : { kind: 'tls', reason: 'the server speaks TLS but the connection is configured without it' }));
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET'].includes(err.code ?? '') && !/SSL|TLS/.test(err.message)) {
        done({ kind: 'unreachable', reason: err.message });
      } else done(c.tls ? { kind: 'tls', reason: err.message } : { kind: 'ok' });
    });
  });
}

/** The innermost readable reason of a grpc-js or Rust core (tonic/rustls) error, on one line. */
function reasonOf(err: unknown): string {
  const e = err as { message?: string; cause?: { details?: string; message?: string } };
  if (e?.cause?.details) return e.cause.details;
  const msg = String(e?.message ?? err).replace(/\s+/g, ' ').trim();
  const cert = /InvalidCertificate\((\w+)\)/.exec(msg);
  if (cert) return `the server's certificate was rejected (${cert[1]}${cert[1] === 'UnknownIssuer' ? ': not signed by the trusted CA' : ''})`;
  const quoted = [...msg.matchAll(/message: "([^"]*)"/g)].map((m) => m[1]);
  if (quoted.length) return quoted[quoted.length - 1];
  const lastError = /Last error: (.*)$/.exec(msg);
  return (lastError ? lastError[1] : msg).replace(/\.$/, '').slice(0, 300);
}

const TLS_HINT = 'Check TEMPORAL_TLS_SERVER_CA_CERT_PATH (the CA that signed the server certificate) and TEMPORAL_TLS_SERVER_NAME';
const CLIENT_CERT_HINT = 'The server wants a client certificate (mTLS): set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH';

/**
 * Turns an error from `Connection.connect` (grpc-js) or `NativeConnection.connect` (Rust core) into one line
 * that says what failed — the server is not there, TLS, or the credentials — and which setting to check.
 */
export async function explainConnectError(err: unknown, c: ConnectionConfig): Promise<ConnectionError> {
  const e = err as { message?: string; cause?: { code?: number; message?: string } };
  const text = `${String(e?.message ?? err)} ${e?.cause?.message ?? ''}`;
  const where = `the Temporal server at ${describeConnection(c)}`;
  const mtls = typeof c.tls === 'object' && Boolean(c.tls.clientCertPair);
  if (e?.cause?.code === 16 || e?.cause?.code === 7 || /UNAUTHENTICATED|PERMISSION_DENIED|valid authentication credentials|status code 40[13]|\b40[13] (Unauthorized|Forbidden)/i.test(text)) {
    const hint = c.apiKey ? 'Check TEMPORAL_API_KEY (or api_key in the profile)' : 'It wants an API key: set TEMPORAL_API_KEY (or api_key in the profile)';
    return new ConnectionError('auth', `${where} refused the credentials: ${reasonOf(err)}. ${hint}`, { cause: err });
  }
  if (/status code 400|400 Bad Request/.test(text) && c.tls) {
    // nginx answers a TLS client without an acceptable certificate with a plain HTTP 400 when it verifies clients.
    const hint = mtls ? 'Check that TEMPORAL_TLS_CLIENT_CERT_PATH is signed by a CA the server trusts' : CLIENT_CERT_HINT;
    return new ConnectionError('tls', `TLS to ${where} failed: the server answered HTTP 400 Bad Request instead of gRPC (what a TLS front that verifies clients answers without an acceptable client certificate). ${hint}`, { cause: err });
  }
  if (/InvalidCertificate|certificate|handshake|x509|SSL routines|tls: /i.test(text)) {
    return new ConnectionError('tls', `TLS to ${where} failed: ${reasonOf(err)}. ${c.tls ? TLS_HINT : 'The server may want TLS: set TEMPORAL_TLS=true'}`, { cause: err });
  }
  // The gRPC clients often say only "deadline" or "protocol error": look at the TLS handshake itself.
  const probe = await probeConnection(c).catch(() => ({ kind: 'ok' as const, reason: undefined }));
  if (probe.kind === 'tls') {
    const hint = !c.tls ? 'Set TEMPORAL_TLS=true (and TEMPORAL_TLS_SERVER_CA_CERT_PATH for a private CA)' : /certificate required|alert number 116|handshake failure/i.test(probe.reason ?? '') && !mtls ? CLIENT_CERT_HINT : TLS_HINT;
    return new ConnectionError('tls', `TLS to ${where} failed: ${probe.reason}. ${hint}`, { cause: err });
  }
  const reason = probe.kind === 'unreachable' && probe.reason ? probe.reason : reasonOf(err);
  const local = /^(localhost|127\.0\.0\.1|\[::1\]):7233$/.test(c.address);
  return new ConnectionError('unreachable', `cannot reach ${where}: ${reason}.${local ? ' Start one with: npm run server' : ''}`, { cause: err });
}

/**
 * grpc-js passes the host as the TLS server name even when it is an IP address, and Node then prints a
 * DEP0123 deprecation warning for every process that connects to e.g. 127.0.0.1 over TLS; the certificate
 * check itself is unaffected (Node verifies the IP against the certificate's IP names). Drop that one warning.
 */
let ipServernameWarningMuted = false;
export function muteIpServernameWarning(): void {
  if (ipServernameWarningMuted) return;
  ipServernameWarningMuted = true;
  const emit = process.emitWarning.bind(process) as (...a: unknown[]) => void;
  process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
    const code = typeof rest[0] === 'object' && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
