/** Worker process for the orchestration task queue: `node dist/workers/orchestration.js`. */
import { workerEntry } from './run';

workerEntry(['orchestration']);
