/**
 * `amqp-mesh users add FILE NAME [--password-file PATH]`: adds or replaces a user in a SASL users
 * file (`<saslConfigDir>/<saslConfigName>.users`) with salted SCRAM credentials, never the password.
 */
import * as fs from 'node:fs';
import { EXIT_USAGE } from '../lib/lifecycle';
import { addUser } from '../config/users';

/** Longest password read. */
const MAX_PASSWORD_BYTES = 4096;

function fail(message: string, usage: string, code = EXIT_USAGE): never {
  process.stderr.write(`amqp-mesh users: ${message}\n${usage}\n`);
  process.exit(code);
}

/** The first line of a file or of standard input, without its line end. */
function readPassword(from: string | null): string {
  let text: string;
  try {
    text = fs.readFileSync(from ?? 0, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the password from ${from ?? 'standard input'}: ${(e as Error).message}`, { cause: e });
  }
  const line = text.split(/\r?\n/)[0] ?? '';
  if (line === '') throw new Error(`no password in ${from ?? 'standard input'} (its first line is empty)`);
  if (Buffer.byteLength(line) > MAX_PASSWORD_BYTES) throw new Error(`the password is over ${MAX_PASSWORD_BYTES} bytes`);
  return line;
}

/** Runs the `users` command. */
export async function runUsers(args: string[], usage: string): Promise<void> {
  const [sub, file, name, ...rest] = args;
  if (sub !== 'add' || file === undefined || name === undefined) fail('expected: users add FILE NAME [--password-file PATH]', usage);
  let passwordFile: string | null = null;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--password-file' && rest[i + 1] !== undefined) passwordFile = rest[++i];
    else fail(`unknown argument "${rest[i]}"`, usage);
  }
  try {
    const done = addUser(file, name, readPassword(passwordFile));
    process.stdout.write(`user ${name} ${done} in ${file}\n`);
  } catch (e) {
    process.stderr.write(`amqp-mesh users: ${(e as Error).message}\n`);
    process.exit(1);
  }
}
