/** Worker process for the io task queue: `node dist/workers/io.js`. */
import { workerEntry } from './run';

workerEntry(['io']);
