/** Worker process for the cpu task queue: `node dist/workers/cpu.js`. */
import { workerMain } from './run';

workerMain(['cpu']).catch((err) => {
  console.error(err);
  process.exit(1);
});
