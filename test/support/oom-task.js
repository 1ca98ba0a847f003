'use strict';
/** A piscina task for test/task-crash.test.ts: 'grow' keeps allocating until the worker's heap limit; else echoes. */
module.exports = async function task(input) {
  if (input && input.kind === 'grow') {
    const keep = [];
    for (;;) keep.push(new Array(1 << 16).fill(keep.length));
  }
  return { echo: input, pid: process.pid };
};
