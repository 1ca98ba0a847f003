/**
 * deploy/ without Docker (not available here): the compose file, Prometheus config and Grafana provisioning
 * parse and reference files, images, services, ports and metric names that exist; the Dockerfile copies what
 * is there and its entry point runs the built workers (deploy/simulate-build.js runs the whole Dockerfile).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { METRICS } from '../activities/metrics';
import { SEARCH_ATTRIBUTE_FLAGS, TASK_QUEUES } from '../workflows/search-attributes';
import { dashboardExprs, metricNames } from './support/dashboard';
import { ROOT } from './support/temporal';

// js-yaml is in node_modules through jest (@istanbuljs/load-nyc-config); only the tests use it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { load: (s: string) => any };

const DEPLOY = path.join(ROOT, 'deploy');
const load = (f: string) => yaml.load(readFileSync(path.join(DEPLOY, f), 'utf8'));
const compose = load('compose.yaml');
const services = compose.services as Record<string, any>;
const QUEUES = Object.keys(TASK_QUEUES);

describe('deploy/compose.yaml', () => {
  test('the stack: Temporal on PostgreSQL, its UI, an S3 store, a worker service per queue, Prometheus, Grafana', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining([
      'postgresql', 'temporal', 'temporal-setup', 'temporal-ui', 'seaweedfs', 's3-setup', 'prometheus', 'grafana',
      ...QUEUES.map((q) => `worker-${q}`),
    ]));
    expect(services.temporal.environment.DB).toBe('postgres12');
    expect(services.temporal.environment.POSTGRES_SEEDS).toBe('postgresql');
    expect(services['temporal-ui'].environment.TEMPORAL_ADDRESS).toBe('temporal:7233');
    for (const [name, s] of Object.entries(services)) {
      // Every service has a pinned image (workers: the one built from deploy/Dockerfile).
      expect([name, s.image]).toEqual([name, expect.stringMatching(/^[a-z0-9./-]+:[A-Za-z0-9._-]+$/)]);
      expect([name, String(s.image).endsWith(':latest') && !s.build]).toEqual([name, false]);
    }
  });

  test('workers: one image, the queue as its argument, the connection and store from the environment, metrics on 9464', () => {
    for (const q of QUEUES) {
      const s = services[`worker-${q}`];
      expect(s.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
      expect(existsSync(path.resolve(DEPLOY, s.build.context, s.build.dockerfile))).toBe(true);
      expect(s.command).toEqual([q]);
      expect(existsSync(path.join(ROOT, 'workers', `${q}.ts`))).toBe(true);
      expect(s.environment).toMatchObject({
        TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'default', CURATE_S3_ENDPOINT: 'http://seaweedfs:8333', CURATE_METRICS_PORT: '9464',
      });
      for (const dep of Object.keys(s.depends_on)) expect(services[dep]).toBeDefined();
    }
    expect(services['worker-cpu'].deploy.replicas).toBeGreaterThanOrEqual(2);
  });

  test('the search attributes registered are the project\'s', () => {
    const script = services['temporal-setup'].command.join('\n');
    for (const [name, type] of SEARCH_ATTRIBUTE_FLAGS) expect(script).toContain(`${name}=${type}`);
  });

  test('bind mounts name files in deploy/; the S3 credentials match the store\'s identity', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const v of (s.volumes ?? []) as string[]) {
        const src = v.split(':')[0];
        if (!src.startsWith('.')) expect(compose.volumes).toHaveProperty(src);
        else expect([name, v, existsSync(path.resolve(DEPLOY, src))]).toEqual([name, v, true]);
      }
    }
    const identity = JSON.parse(readFileSync(path.join(DEPLOY, 'seaweedfs', 's3.json'), 'utf8')).identities[0].credentials[0];
    for (const s of [services['worker-io'], services['s3-setup']]) {
      expect(s.environment.AWS_ACCESS_KEY_ID).toBe(identity.accessKey);
      expect(s.environment.AWS_SECRET_ACCESS_KEY).toBe(identity.secretKey);
    }
  });
});

describe('deploy/prometheus.yml and Grafana', () => {
  test('Prometheus scrapes every worker service on its metrics port', () => {
    const prom = load('prometheus.yml');
    const job = prom.scrape_configs.find((j: any) => j.job_name === 'curate-workers');
    expect(job.dns_sd_configs[0].names.sort()).toEqual(QUEUES.map((q) => `worker-${q}`).sort());
    expect(String(job.dns_sd_configs[0].port)).toBe(services['worker-io'].environment.CURATE_METRICS_PORT);
    expect(services.prometheus.volumes).toContain('./prometheus.yml:/etc/prometheus/prometheus.yml:ro');
  });

  test('Grafana is provisioned with the Prometheus data source and the dashboard folder it mounts', () => {
    const ds = load('grafana/provisioning/datasources/prometheus.yml');
    expect(ds.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', uid: 'prometheus' });
    const provider = load('grafana/provisioning/dashboards/curation.yml').providers[0];
    expect(services.grafana.volumes).toContain(`./grafana/dashboards:${provider.options.path}:ro`);
  });

  test('the dashboard queries the project\'s curate_* series by their names, and the SDK\'s temporal_* series', () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(10);
    const known = new Set<string>(Object.values(METRICS));
    for (const h of [METRICS.shardSeconds]) for (const s of ['_bucket', '_count', '_sum']) known.add(h + s);
    const used = new Set(metricNames(exprs));
    for (const name of used) if (name.startsWith('curate_')) expect([name, known.has(name)]).toEqual([name, true]);
    // Every curate_* series is on the dashboard.
    for (const name of Object.values(METRICS)) expect([...used].some((u) => u === name || u.startsWith(`${name}_`))).toBe(true);
    expect([...used].filter((n) => n.startsWith('temporal_')).length).toBeGreaterThanOrEqual(4);
  });
});

describe('deploy/Dockerfile and its entry point', () => {
  const dockerfile = readFileSync(path.join(DEPLOY, 'Dockerfile'), 'utf8');

  test('COPY sources exist in the context and are not ignored; the entry point is the queue script', () => {
    const ignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').filter(Boolean);
    const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)].map((m) => m[1].trim().split(/\s+/).slice(0, -1)).flat();
    expect(copies).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.json', 'workers', 'deploy/worker-entrypoint.sh']));
    for (const src of copies) {
      expect([src, existsSync(path.join(ROOT, src))]).toEqual([src, true]);
      expect([src, ignore.some((p) => src === p || src.startsWith(`${p}/`))]).toEqual([src, false]);
    }
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/curate-worker"\]$/m);
    expect(dockerfile).toMatch(/^COPY deploy\/worker-entrypoint.sh \/usr\/local\/bin\/curate-worker$/m);
    const entry = readFileSync(path.join(DEPLOY, 'worker-entrypoint.sh'), 'utf8');
    expect(entry).toContain(`${QUEUES.join('|')}|all)`);
  });

  const entry = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(path.join(DEPLOY, 'worker-entrypoint.sh'), args, { encoding: 'utf8', timeout: 120_000, env: { PATH: process.env.PATH!, CURATE_APP_DIR: ROOT, ...env } });

  test('the entry point: --help, an unknown queue in one line (exit 2)', () => {
    const help = entry(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('docker run IMAGE orchestration | cpu | io | all');
    const bad = entry(['gpu']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe("curate-worker: unknown queue 'gpu': use orchestration, cpu, io or all\n");
  });

  test('the entry point runs node dist/workers/<queue>.js: against a closed port it fails in one line (exit 1)', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const r = entry(['io'], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    expect(r.stdout).toContain('[worker] io on 127.0.0.1:');
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`127.0.0.1:${port}`);
  }, 120_000);
});
