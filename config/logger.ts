/**
 * The one log setup of the router and the broker: a {@link Logger} configured from `log`
 * entities (qdrouterd's module, enable, outputFile, includeTimestamp).
 */
import { Logger, openLogOutput } from '../lib/log';
import { EXIT_CONFIG } from '../lib/lifecycle';

/** What this needs of a validated `log` entity (the router's and the broker's have this shape). */
export interface LogSettings {
  module: string;
  enabledLevels: readonly string[] | 'default';
  includeTimestamp?: boolean;
  outputFile?: string;
  source: { file: string; line?: number };
}

/** A logger set up from `log` entities; an unwritable outputFile ends the process (exit 1, FILE:LINE). */
export function loggerFromConfig(entities: readonly LogSettings[]): Logger {
  const logger = new Logger();
  const failed = configureLogger(logger, entities)[0];
  if (failed !== undefined) {
    process.stderr.write(`amqp-mesh: ${failed.log.source.file}:${failed.log.source.line}: log outputFile ${failed.log.outputFile}: ${failed.error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  return logger;
}

/**
 * Applies `log` entities to a logger from scratch (at start, on reload, on a management UPDATE).
 * Returns the entities whose outputFile could not be opened (those keep the default output).
 */
export function configureLogger(logger: Logger, entities: readonly LogSettings[]): { log: LogSettings; error: Error }[] {
  logger.reset();
  const failed: { log: LogSettings; error: Error }[] = [];
  // DEFAULT first: other modules inherit its output settings.
  const logs = [...entities].sort((a, b) => (a.module === 'DEFAULT' ? -1 : b.module === 'DEFAULT' ? 1 : 0));
  for (const l of logs) {
    let write: ((line: string) => void) | undefined;
    try {
      write = l.outputFile === undefined ? undefined : openLogOutput(l.outputFile);
    } catch (e) {
      failed.push({ log: l, error: e as Error });
    }
    logger.configure(l.module, l.enabledLevels === 'default' ? null : l.enabledLevels.length ? l.enabledLevels.join(',') : 'none', { write, includeTimestamp: l.includeTimestamp });
  }
  return failed;
}
