/** Worker process for the io task queue: `node dist/workers/io.js`. */
import { workerMain } from './run';

workerMain(['io']).catch((err) => {
  console.error(err);
  process.exit(1);
});
