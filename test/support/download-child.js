'use strict';
/**
 * Runs the download activity (activities/images.ts, from the sources through ts-cli.js's SWC require hook) in
 * this process, outside Temporal, so a test can SIGKILL it mid-download:
 *   node test/support/download-child.js '<DownloadBucketInput as JSON>'
 * Prints the result as JSON on success.
 */
const path = require('node:path');
require('./ts-cli.js');
const ROOT = path.join(__dirname, '..', '..');
const { MockActivityEnvironment } = require(path.join(ROOT, 'node_modules', '@temporalio', 'testing'));
const { downloadBucket } = require(path.join(ROOT, 'activities', 'images.ts'));

new MockActivityEnvironment().run(downloadBucket, JSON.parse(process.argv[2])).then(
  (result) => console.log(JSON.stringify(result)),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
