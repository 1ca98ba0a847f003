/**
 * Common Crawl access the documented way: relative keys of a path list go to https://data.commoncrawl.org/
 * unless the environment has AWS credentials and the us-east-1 S3 route (then s3://commoncrawl/); an explicit
 * --cc-prefix always wins. `curate start --help` says so.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { CC_HTTPS_PREFIX, CC_S3_PREFIX, defaultCcPrefix, resolveShards } from '../scripts/shards';

const KEY = 'crawl-data/CC-MAIN-2024-10/segments/1707947473347.0/wat/CC-MAIN-20240220211055-20240221001055-00000.warc.wat.gz';

describe('default --cc-prefix follows the environment', () => {
  test('no AWS setup: HTTPS', () => {
    expect(defaultCcPrefix({})).toBe(CC_HTTPS_PREFIX);
    expect(CC_HTTPS_PREFIX).toBe('https://data.commoncrawl.org/');
  });

  test('credentials and us-east-1: S3', () => {
    expect(defaultCcPrefix({ AWS_ACCESS_KEY_ID: 'AKIA', AWS_REGION: 'us-east-1' })).toBe(CC_S3_PREFIX);
    expect(defaultCcPrefix({ AWS_PROFILE: 'crawl', AWS_DEFAULT_REGION: 'us-east-1' })).toBe(CC_S3_PREFIX);
    expect(defaultCcPrefix({ AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/token', AWS_ROLE_ARN: 'arn:aws:iam::1:role/x', AWS_REGION: 'us-east-1' })).toBe(CC_S3_PREFIX);
    expect(defaultCcPrefix({ AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials/x', AWS_REGION: 'us-east-1' })).toBe(CC_S3_PREFIX);
  });

  test('credentials elsewhere, no credentials, another endpoint or anonymous: HTTPS', () => {
    expect(defaultCcPrefix({ AWS_ACCESS_KEY_ID: 'AKIA', AWS_REGION: 'eu-west-1' })).toBe(CC_HTTPS_PREFIX);
    expect(defaultCcPrefix({ AWS_ACCESS_KEY_ID: 'AKIA' })).toBe(CC_HTTPS_PREFIX);
    expect(defaultCcPrefix({ AWS_REGION: 'us-east-1' })).toBe(CC_HTTPS_PREFIX);
    expect(defaultCcPrefix({ AWS_ACCESS_KEY_ID: 'AKIA', AWS_REGION: 'us-east-1', CURATE_S3_ENDPOINT: 'http://127.0.0.1:8333' })).toBe(CC_HTTPS_PREFIX);
    expect(defaultCcPrefix({ AWS_ACCESS_KEY_ID: 'AKIA', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: 'http://minio:9000' })).toBe(CC_HTTPS_PREFIX);
    expect(defaultCcPrefix({ AWS_ACCESS_KEY_ID: 'AKIA', AWS_REGION: 'us-east-1', CURATE_S3_ANONYMOUS: '1' })).toBe(CC_HTTPS_PREFIX);
  });

  test('a Common Crawl path list resolves with the prefix given or the default', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cc-prefix-'));
    const list = path.join(dir, 'wat.paths.gz');
    writeFileSync(list, gzipSync(`${KEY}\n`));
    expect(resolveShards([list], CC_HTTPS_PREFIX)).toEqual([`https://data.commoncrawl.org/${KEY}`]);
    expect(resolveShards([list], 's3://commoncrawl/')).toEqual([`s3://commoncrawl/${KEY}`]);
    expect(resolveShards([list])).toEqual([`${defaultCcPrefix()}${KEY}`]);
  });

  test('curate start --help says how the default is chosen', () => {
    const cli = path.join(__dirname, 'support', 'ts-cli.js');
    const r = spawnSync(process.execPath, [cli, 'start', '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    const help = r.stdout.replace(/\s+/g, ' ');
    expect(help).toContain('--cc-prefix');
    expect(help).toContain('default https://data.commoncrawl.org/');
    expect(help).toContain('s3://commoncrawl/ when AWS credentials are in the environment');
  });
});
