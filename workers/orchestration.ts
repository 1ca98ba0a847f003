/** Worker process for the orchestration task queue: `node dist/workers/orchestration.js`. */
import { workerMain } from './run';

workerMain(['orchestration']).catch((err) => {
  console.error(err);
  process.exit(1);
});
