/**
 * Process lifecycle shared by the router and the broker: exit codes, what a configuration error
 * does to the process, and the shutdown signals. The CLI only dispatches to the applications.
 */
import { ConfigError } from '../config/errors';
import type { Logger } from './log';

/**
 * Exit codes (stable: scripts and tests rely on them). A process that cannot start exits 1, as
 * qdrouterd does, whether its configuration was refused or it cannot listen (stderr says which);
 * a command line the CLI cannot use exits 2 (docs/decisions/0008-exit-codes.md).
 */
export const EXIT_OK = 0;
/** Cannot listen (port taken, address not local). */
export const EXIT_LISTEN = 1;
/** The configuration was refused (FILE:LINE on stderr). */
export const EXIT_CONFIG = 1;
/** The command line was not usable (unknown command or argument, no -c FILE). */
export const EXIT_USAGE = 2;
/** A broker lost its store lock or its store refused a write: it stepped down. */
export const EXIT_FENCED = 3;

/** Runs `load`; a ConfigError ends the process with {@link EXIT_CONFIG} and its FILE:LINE message. */
export function exitOnConfigError<T>(load: () => T): T {
  try {
    return load();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`amqp-mesh: ${e.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw e;
  }
}

/** Runs `start` (opening listeners); a failure ends the process with {@link EXIT_LISTEN}. */
export async function exitIfCannotListen(start: () => Promise<void>): Promise<void> {
  try {
    await start();
  } catch (e) {
    process.stderr.write(`amqp-mesh: cannot listen: ${(e as Error).message}\n`);
    process.exit(EXIT_LISTEN);
  }
}

/**
 * SIGTERM and SIGINT run `stop` once (it closes every connection with a close frame), then the
 * process exits 0 whatever `stop` did.
 */
export function stopOnSignals(logger: Logger, module: string, stop: () => Promise<unknown>): void {
  let stopping = false;
  const shutdown = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    logger.log(module, 'notice', `${sig}: closing connections and shutting down`);
    stop().then(() => process.exit(EXIT_OK), () => process.exit(EXIT_OK));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
