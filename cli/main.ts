/**
 * `amqp-mesh` command line: parses the command and its arguments and hands over to the router,
 * the broker or the topology tools. Nothing else lives here.
 */
import { EXIT_USAGE } from '../lib/lifecycle';
import { VERSION } from '../lib/version';
import { runRouter } from '../router/main';
import { runBrokerFile } from '../broker/io/main';
import { runUp } from '../topology/up';
import { runApply } from '../topology/control';
import { runUsers } from './users';

const USAGE = `usage: amqp-mesh router -c FILE    run a router (FILE: qdrouterd.conf syntax, .yaml/.yml or .json)
       amqp-mesh broker -c FILE    run a broker (same syntaxes); two brokers on one dataDir form a master/slave pair
       amqp-mesh up [FILE]         boot a topology (default topology/default.yaml): routers and broker pairs on 127.0.0.1
       amqp-mesh apply FILE [--run-dir DIR] [--drain-timeout SECONDS]
                                   change the running topology (started by up) to match FILE
       amqp-mesh users add FILE NAME [--password-file PATH]
                                   add or replace a SASL user (salted SCRAM credentials; the password
                                   from PATH, else the first line of standard input)
       amqp-mesh --version
       amqp-mesh --help`;

/** Parses `-c FILE` / `--config FILE` / `--config=FILE`. */
function configArg(cmd: string, rest: string[]): string {
  let file: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '-c' || a === '--config') file = rest[++i];
    else if (a.startsWith('--config=')) file = a.slice(9);
    else {
      process.stderr.write(`amqp-mesh ${cmd}: unknown argument "${a}"\n${USAGE}\n`);
      process.exit(EXIT_USAGE);
    }
  }
  if (!file) {
    process.stderr.write(`amqp-mesh ${cmd}: -c FILE is required\n${USAGE}\n`);
    process.exit(EXIT_USAGE);
  }
  return file;
}

/** Entry point. */
export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  if (cmd === '--version' || cmd === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (cmd === undefined || cmd === '--help' || cmd === '-h') {
    process.stdout.write(USAGE + '\n');
    if (cmd === undefined) process.exitCode = EXIT_USAGE;
    return;
  }
  if (cmd === 'router') return runRouter(configArg(cmd, rest));
  if (cmd === 'broker') return runBrokerFile(configArg(cmd, rest));
  if (cmd === 'up') return runUp(rest);
  if (cmd === 'apply') return runApply(rest);
  if (cmd === 'users') return runUsers(rest, USAGE);
  process.stderr.write(`amqp-mesh: unknown command "${cmd}"\n${USAGE}\n`);
  process.exit(EXIT_USAGE);
}
