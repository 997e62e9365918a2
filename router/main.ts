/**
 * The router process: loads its configuration, listens, and applies a reloaded file on SIGHUP.
 */
import { configWarningLevel } from './config';
import { loadConfigState, type ConfigState } from './config-store';
import { loggerFromConfig } from '../config/logger';
import { exitIfCannotListen, exitOnConfigError, stopOnSignals } from '../lib/lifecycle';
import { RouterServer, VERSION } from './io/server';

/**
 * Runs a router from its configuration file until SIGTERM/SIGINT; SIGHUP reloads the file
 * (replacing what management created or deleted since).
 */
export async function runRouter(file: string): Promise<void> {
  const state: ConfigState = exitOnConfigError(() => loadConfigState(file));
  const cfg = state.config;
  const logger = loggerFromConfig(cfg.logs);
  for (const w of cfg.warnings) logger.log('ROUTER', configWarningLevel(w), w.message);
  for (const w of state.settings.users?.warnings ?? []) logger.log('ROUTER', 'warning', w);
  const server = new RouterServer(state, logger);
  await exitIfCannotListen(() => server.start());
  logger.log('ROUTER', 'notice', `Router ${cfg.router.id} (${cfg.router.mode}) ready, amqp-mesh ${VERSION}`);
  stopOnSignals(logger, 'ROUTER', () => server.stop());
  // SIGHUP: re-read the file and apply what can change live (connectors, auto-links, link routes,
  // address rules). A bad file is refused with FILE:LINE and the running configuration is kept.
  process.on('SIGHUP', () => {
    let next: ConfigState;
    try {
      next = loadConfigState(file);
      for (const w of next.config.warnings) logger.log('ROUTER', configWarningLevel(w), `SIGHUP: ${w.message}`);
    } catch (e) {
      logger.log('ROUTER', 'error', `SIGHUP: configuration not reloaded: ${(e as Error).message}`);
      return;
    }
    let notes: string[];
    try {
      notes = server.applyConfigState(next);
    } catch (e) {
      logger.log('ROUTER', 'error', `SIGHUP: configuration not reloaded: ${(e as Error).message}`);
      return;
    }
    logger.log('ROUTER', 'notice', `SIGHUP: configuration reloaded from ${file}${notes.length ? `: ${notes.join('; ')}` : ' (no change)'}`);
  });
}
