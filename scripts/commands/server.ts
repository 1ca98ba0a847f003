import { ConfigError } from '../../curation/errors';
import type { Command } from '../args';
import { defaultServerOptions, ensureDevServer, portOpen, stopDevServer } from '../devserver';

export const command: Command = {
  name: 'server',
  summary: 'Start, stop or check the local Temporal dev server (persistent, UI on 8233, search attributes registered)',
  usage: 'server <start|stop|status> [--port 7233] [--ui-port 8233] [--headless]',
  flags: {
    port: { type: 'number', help: 'frontend gRPC port', default: 7233 },
    'ui-port': { type: 'number', help: 'web UI port', default: 8233 },
    headless: { type: 'boolean', help: 'no web UI' },
  },
  async run({ positional, flags }) {
    const action = positional[0] ?? 'start';
    const o = { ...defaultServerOptions(), port: flags.port as number, uiPort: flags['ui-port'] as number, headless: Boolean(flags.headless) };
    if (action === 'start') {
      const s = await ensureDevServer(o);
      console.log(s.startedNow ? `Temporal dev server started (pid ${s.pid}) at ${s.address}` : `Temporal dev server already running at ${s.address}`);
      console.log(`UI: ${s.uiUrl}    stop it with: npm run server:stop`);
    } else if (action === 'stop') {
      console.log(stopDevServer() ? 'Temporal dev server stopped' : 'no dev server started by this project is running');
    } else if (action === 'status') {
      console.log((await portOpen(o.port)) ? `a Temporal server answers on port ${o.port}` : `nothing listens on port ${o.port}`);
    } else {
      throw new ConfigError(`unknown server action '${action}': use start, stop or status`);
    }
  },
};
