/**
 * The router process: loads its configuration, listens, and applies a reloaded file on SIGHUP.
 */
import { configWarningLevel, loadConfigFile, RouterConfig } from './config';
import { loggerFromConfig } from '../config/logger';
import { exitIfCannotListen, exitOnConfigError, stopOnSignals } from '../lib/lifecycle';
import { RouterServer, RouterSettings, VERSION } from './io/server';
import { settingsFromConfig } from './settings';

/** Runs a router from its configuration file until SIGTERM/SIGINT; SIGHUP reloads the file. */
export async function runRouter(file: string): Promise<void> {
  const cfg: RouterConfig = exitOnConfigError(() => loadConfigFile(file));
  const logger = loggerFromConfig(cfg.logs);
  for (const w of cfg.warnings) logger.log('ROUTER', configWarningLevel(w), w.message);
  const settings: RouterSettings = exitOnConfigError(() => settingsFromConfig(cfg));
  const server = new RouterServer(settings, logger);
  await exitIfCannotListen(() => server.start());
  logger.log('ROUTER', 'notice', `Router ${cfg.router.id} (${cfg.router.mode}) ready, amqp-mesh ${VERSION}`);
  stopOnSignals(logger, 'ROUTER', () => server.stop());
  // SIGHUP: re-read the file and apply what can change live (connectors, auto-links, link routes,
  // address rules). A bad file is refused with FILE:LINE and the running configuration is kept.
  process.on('SIGHUP', () => {
    let next: RouterSettings;
    try {
      const nextCfg = loadConfigFile(file);
      next = settingsFromConfig(nextCfg);
      for (const w of nextCfg.warnings) logger.log('ROUTER', configWarningLevel(w), `SIGHUP: ${w.message}`);
    } catch (e) {
      logger.log('ROUTER', 'error', `SIGHUP: configuration not reloaded: ${(e as Error).message}`);
      return;
    }
    const notes = server.reconfigure(next);
    logger.log('ROUTER', 'notice', `SIGHUP: configuration reloaded from ${file}${notes.length ? `: ${notes.join('; ')}` : ' (no change)'}`);
  });
}
