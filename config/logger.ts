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

/** A logger set up from `log` entities; an unwritable outputFile ends the process (exit 2, FILE:LINE). */
export function loggerFromConfig(entities: readonly LogSettings[]): Logger {
  const logger = new Logger();
  // DEFAULT first: other modules inherit its output settings.
  const logs = [...entities].sort((a, b) => (a.module === 'DEFAULT' ? -1 : b.module === 'DEFAULT' ? 1 : 0));
  for (const l of logs) {
    let write: ((line: string) => void) | undefined;
    try {
      write = l.outputFile === undefined ? undefined : openLogOutput(l.outputFile);
    } catch (e) {
      process.stderr.write(`amqp-mesh: ${l.source.file}:${l.source.line}: log outputFile ${l.outputFile}: ${(e as Error).message}\n`);
      process.exit(EXIT_CONFIG);
    }
    logger.configure(l.module, l.enabledLevels === 'default' ? null : l.enabledLevels.length ? l.enabledLevels.join(',') : 'none', { write, includeTimestamp: l.includeTimestamp });
  }
  return logger;
}
