/**
 * Entry points of the broker configuration: choose the syntax by extension (as the router does),
 * parse with router/config's parsers, validate.
 */

import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';
import {
  ConfigError,
  detectConfigSyntax,
  MAX_CONFIG_FILE_BYTES,
  parseConfigEntities,
  type ConfigSyntax,
} from '../../router/config';
import type { BrokerConfig } from './types';
import { validateBrokerEntities, type BrokerValidationOptions } from './validate';

/** Options of {@link parseBrokerConfig} and {@link loadBrokerConfigFile}. */
export interface BrokerConfigOptions extends BrokerValidationOptions {
  /** Overrides the syntax chosen from the file name: `.yaml`/`.yml` YAML, `.json` JSON, anything else qdrouterd.conf syntax. */
  readonly syntax?: ConfigSyntax;
}

/**
 * Parses and validates broker configuration text. Pure apart from generating a random broker id
 * when the text sets none (pass `generateBrokerId` for a deterministic one) and resolving a
 * relative dataDir against the directory of `file` (against the working directory if `file` is relative).
 * @param file names the file in messages and, unless `options.syntax` is given, picks the syntax.
 * @throws ConfigError whose message starts with `file:line: `.
 */
export function parseBrokerConfig(text: string, file: string, options: BrokerConfigOptions = {}): BrokerConfig {
  const entities = parseConfigEntities(text, file, options.syntax ?? detectConfigSyntax(file));
  return validateBrokerEntities(entities, file, options);
}

/**
 * Reads, parses and validates a broker configuration file (synchronously: it runs once at startup).
 * @throws ConfigError `ERR_CONFIG_READ` (with the system error as cause), `ERR_CONFIG_TOO_LARGE`,
 *   `ERR_CONFIG_ENCODING`, or any error of {@link parseBrokerConfig}.
 */
export function loadBrokerConfigFile(file: string, options: BrokerConfigOptions = {}): BrokerConfig {
  return parseBrokerConfig(readConfigText(file), file, options);
}

function readConfigText(file: string): string {
  let bytes: Buffer;
  let descriptor: number | undefined;
  try {
    descriptor = fs.openSync(file, 'r');
    // Refuse an oversized file before reading it into memory.
    const { size } = fs.fstatSync(descriptor);
    if (size > MAX_CONFIG_FILE_BYTES) throw fileTooLarge(file, size);
    bytes = fs.readFileSync(descriptor);
    if (bytes.length > MAX_CONFIG_FILE_BYTES) throw fileTooLarge(file, bytes.length);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw new ConfigError('ERR_CONFIG_READ', file, undefined, `cannot read the configuration file: ${detail}`, { cause: error });
  } finally {
    if (descriptor !== undefined) fs.closeSync(descriptor);
  }
  if (isUtf8(bytes)) return bytes.toString('utf8');
  // A newline byte is never part of a multi-byte UTF-8 sequence, so lines can be checked one by one.
  let line = 1;
  for (let start = 0; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    if (!isUtf8(bytes.subarray(start, end))) break;
    start = end + 1;
  }
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  throw new ConfigError('ERR_CONFIG_ENCODING', file, line, `not valid UTF-8${utf16 ? '; the file looks like UTF-16' : ''}; save the file as UTF-8`);
}

function fileTooLarge(file: string, bytes: number): ConfigError {
  return new ConfigError('ERR_CONFIG_TOO_LARGE', file, undefined, `the configuration is ${bytes} bytes; the limit is ${MAX_CONFIG_FILE_BYTES} bytes (4 MiB)`);
}
