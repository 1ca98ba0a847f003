'use strict';
/**
 * Runs `curate <args>` from the TypeScript sources (no dist/ needed): a require hook compiles .ts files with
 * SWC, as jest does, then scripts/cli.ts runs with bin/curate.js's error handling. For tests that need the
 * CLI in a child process (exit codes, stderr, peak RSS) without depending on a build.
 *   node test/support/ts-cli.js extract FILE --lid off
 * With CURATE_REPORT_RSS=1 the process prints `maxRSS <KiB>` as the last line of stderr on exit.
 */
const fs = require('node:fs');
const path = require('node:path');
const { transformSync } = require('@swc/core');

require.extensions['.ts'] = function compileTs(module, filename) {
  const source = fs.readFileSync(filename, 'utf8');
  const { code } = transformSync(source, {
    filename,
    jsc: { target: 'es2022', parser: { syntax: 'typescript' } },
    module: { type: 'commonjs' },
    sourceMaps: false,
  });
  module._compile(code, filename);
};

if (process.env.CURATE_REPORT_RSS === '1') {
  process.on('exit', () => process.stderr.write(`maxRSS ${process.resourceUsage().maxRSS}\n`));
}

if (require.main === module) {
  require(path.join(__dirname, '..', '..', 'scripts', 'cli.ts')).main(process.argv.slice(2)).catch((err) => {
    console.error(`curate: ${err && err.message ? err.message : err}`);
    process.exit(typeof err?.exitCode === 'number' ? err.exitCode : 1);
  });
}
