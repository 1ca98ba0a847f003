/**
 * Connection settings (workers/connection.ts) come from Temporal's own envconfig: the standard TEMPORAL_*
 * variables and temporal.toml profiles, flags on top; the UI link is never a guess. Real files in a temp dir,
 * a real environment map; no server needed (the TLS tests against a real proxy are in tls.workflow.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../curation/errors';
import { connectOptions, describeConnection, loadConnectionConfig } from '../workers/connection';
import { uiLink } from '../scripts/client';

let dir: string;
let configFile: string;
const decode = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('utf8') : undefined);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'connection-'));
  writeFileSync(path.join(dir, 'ca.pem'), 'CA PEM');
  writeFileSync(path.join(dir, 'client.pem'), 'CLIENT PEM');
  writeFileSync(path.join(dir, 'client.key'), 'CLIENT KEY');
  configFile = path.join(dir, 'temporal.toml');
  writeFileSync(configFile, `
[profile.default]
address = "default-host:7233"
namespace = "default-ns"

[profile.prod]
address = "prod.example.com:7233"
namespace = "curation"
ui_url = "https://temporal-ui.example.com/"
[profile.prod.tls]
server_ca_cert_path = "${path.join(dir, 'ca.pem')}"
client_cert_path = "${path.join(dir, 'client.pem')}"
client_key_path = "${path.join(dir, 'client.key')}"
server_name = "temporal.internal"

[profile.cloud]
address = "ns.acct.tmprl.cloud:7233"
namespace = "ns.acct"
api_key = "from-profile"
`);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An environment with no config file anywhere (HOME points at an empty dir) plus `vars`. */
const bare = (vars: Record<string, string> = {}) => ({ HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'none'), ...vars });
const withFile = (vars: Record<string, string> = {}) => bare({ TEMPORAL_CONFIG_FILE: configFile, ...vars });

test('nothing set: the local dev server, namespace default, plaintext', () => {
  const c = loadConnectionConfig({ env: bare() });
  expect(c).toMatchObject({ address: 'localhost:7233', namespace: 'default' });
  expect(c.tls).toBeUndefined();
  expect(c.apiKey).toBeUndefined();
  expect(connectOptions(c)).toEqual({ address: 'localhost:7233' });
});

test('the standard variables: address, namespace, TLS with a CA, mTLS pair, API key, gRPC headers', () => {
  const c = loadConnectionConfig({
    env: bare({
      TEMPORAL_ADDRESS: 'temporal.example.com:7233', TEMPORAL_NAMESPACE: 'snap', TEMPORAL_TLS: 'true',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'ca.pem'),
      TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'client.pem'), TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'client.key'),
      TEMPORAL_API_KEY: 'k-123', TEMPORAL_GRPC_META_X_TEAM: 'data',
    }),
  });
  expect(c.address).toBe('temporal.example.com:7233');
  expect(c.namespace).toBe('snap');
  expect(c.apiKey).toBe('k-123');
  expect(c.metadata).toEqual({ 'x-team': 'data' });
  const tls = c.tls as { serverRootCACertificate?: Uint8Array; clientCertPair?: { crt: Uint8Array; key: Uint8Array } };
  expect(decode(tls.serverRootCACertificate)).toBe('CA PEM');
  expect(decode(tls.clientCertPair?.crt)).toBe('CLIENT PEM');
  expect(decode(tls.clientCertPair?.key)).toBe('CLIENT KEY');
  expect(describeConnection(c)).toBe('temporal.example.com:7233 (namespace snap, mTLS, API key)');
});

test('an API key alone turns TLS on (as in every Temporal SDK); TEMPORAL_TLS=false turns it off', () => {
  expect(loadConnectionConfig({ env: bare({ TEMPORAL_API_KEY: 'k' }) }).tls).toBe(true);
  expect(loadConnectionConfig({ env: bare({ TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' }) }).tls).toBeUndefined();
  expect(loadConnectionConfig({ env: bare({ TEMPORAL_TLS: 'true' }) }).tls).toBeTruthy();
});

test('profiles: the default profile of the file, --profile / TEMPORAL_PROFILE, the environment over the profile, flags over both', () => {
  expect(loadConnectionConfig({ env: withFile() })).toMatchObject({ address: 'default-host:7233', namespace: 'default-ns' });

  const prod = loadConnectionConfig({ profile: 'prod', env: withFile() });
  expect(prod).toMatchObject({ address: 'prod.example.com:7233', namespace: 'curation', profile: 'prod', uiUrl: 'https://temporal-ui.example.com' });
  expect((prod.tls as { serverNameOverride?: string }).serverNameOverride).toBe('temporal.internal');
  expect(describeConnection(prod)).toBe('prod.example.com:7233 (namespace curation, mTLS, profile prod)');

  const cloud = loadConnectionConfig({ env: withFile({ TEMPORAL_PROFILE: 'cloud' }) });
  expect(cloud).toMatchObject({ address: 'ns.acct.tmprl.cloud:7233', namespace: 'ns.acct', apiKey: 'from-profile', tls: true });

  const envOver = loadConnectionConfig({ profile: 'cloud', env: withFile({ TEMPORAL_API_KEY: 'from-env', TEMPORAL_NAMESPACE: 'env-ns' }) });
  expect(envOver).toMatchObject({ apiKey: 'from-env', namespace: 'env-ns', address: 'ns.acct.tmprl.cloud:7233' });

  const flags = loadConnectionConfig({ profile: 'cloud', address: 'flag-host:1234', namespace: 'flag-ns', env: withFile({ TEMPORAL_ADDRESS: 'env-host:7233' }) });
  expect(flags).toMatchObject({ address: 'flag-host:1234', namespace: 'flag-ns', apiKey: 'from-profile' });
});

test('mistakes fail with one clear line: an unknown profile, a missing TLS file, a certificate without its key', () => {
  const err = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e as Error;
    }
    throw new Error('expected an error');
  };
  const unknown = err(() => loadConnectionConfig({ profile: 'staging', env: withFile() }));
  expect(unknown).toBeInstanceOf(ConfigError);
  expect(unknown.message).toBe(`connection profile 'staging' not found in TEMPORAL_CONFIG_FILE=${configFile}`);

  const noCa = err(() => loadConnectionConfig({ env: bare({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: path.join(dir, 'nope.pem') }) }));
  expect(noCa.message).toBe(`the TLS server CA certificate ${path.join(dir, 'nope.pem')} does not exist (set by TEMPORAL_TLS_SERVER_CA_CERT_PATH or tls.server_ca_cert_path in the profile)`);

  const noKey = err(() => loadConnectionConfig({ env: bare({ TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'client.pem') }) }));
  expect(noKey).toBeInstanceOf(ConfigError);
  expect(noKey.message).toMatch(/^mTLS needs both a client certificate and its key: the client certificate is set but not the client key \(TEMPORAL_TLS_CLIENT_KEY_PATH/);
  for (const e of [unknown, noCa, noKey]) expect(e.message).not.toContain('\n');
});

test('the UI link: --ui-url, CURATE_UI_URL or the profile; none for a server whose UI is unknown, with how to set one', () => {
  const remote = loadConnectionConfig({ env: bare({ TEMPORAL_ADDRESS: 'temporal.example.com:7233' }) });
  expect(uiLink(remote, undefined, 'curation-r1')).toBe(
    'Temporal UI: (no UI URL known for temporal.example.com:7233: pass --ui-url URL, set CURATE_UI_URL, or add ui_url to the profile)');
  expect(uiLink(remote, 'https://ui.example.com/', 'curation-r1')).toBe('Temporal UI: https://ui.example.com/namespaces/default/workflows/curation-r1');
  const fromEnv = loadConnectionConfig({ env: bare({ TEMPORAL_ADDRESS: 'temporal.example.com:7233', TEMPORAL_NAMESPACE: 'snap', CURATE_UI_URL: 'https://ui.example.com' }) });
  expect(uiLink(fromEnv, undefined, 'a b')).toBe('Temporal UI: https://ui.example.com/namespaces/snap/workflows/a%20b');
  const prod = loadConnectionConfig({ profile: 'prod', env: withFile() });
  expect(uiLink(prod, undefined, 'w')).toBe('Temporal UI: https://temporal-ui.example.com/namespaces/curation/workflows/w');
  // A loopback address that is not the dev server this project started (none is recorded at this port): no guess.
  const local = loadConnectionConfig({ env: bare({ TEMPORAL_ADDRESS: '127.0.0.1:1' }) });
  expect(uiLink(local, undefined, 'w')).toMatch(/^Temporal UI: \(no UI URL known for 127\.0\.0\.1:1/);
});
