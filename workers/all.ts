/** One dev process hosting the orchestration, cpu and io workers: `node dist/workers/all.js`. */
import { workerMain } from './run';

workerMain(['orchestration', 'cpu', 'io']).catch((err) => {
  console.error(err);
  process.exit(1);
});
