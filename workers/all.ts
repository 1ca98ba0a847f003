/** One dev process hosting the orchestration, cpu and io workers: `node dist/workers/all.js`. */
import { workerEntry } from './run';

workerEntry(['orchestration', 'cpu', 'io']);
