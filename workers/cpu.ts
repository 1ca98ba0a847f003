/** Worker process for the cpu task queue: `node dist/workers/cpu.js`. */
import { workerEntry } from './run';

workerEntry(['cpu']);
