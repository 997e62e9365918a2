/**
 * Entry points of the router's and the broker's configurations: choose the syntax, enforce the
 * file-level limits, parse, and hand the entities to the application's validator.
 */

import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfSyntax } from './conf-syntax';
import { ConfigError, MAX_CONFIG_FILE_BYTES } from './errors';
import type { RawEntity } from './raw-entity';
import { parseStructuredSyntax } from './yaml-syntax';

/** The configuration formats: qdrouterd's own syntax, YAML, JSON. */
export type ConfigSyntax = 'conf' | 'yaml' | 'json';

/** What every application's load options have. */
export interface SyntaxOption {
  /** Overrides the syntax chosen from the file name (see {@link detectConfigSyntax}). */
  readonly syntax?: ConfigSyntax;
}

/** The syntax for a file name: `.yaml`/`.yml` is YAML, `.json` is JSON, anything else qdrouterd.conf syntax. */
export function detectConfigSyntax(fileName: string): ConfigSyntax {
  const extension = path.extname(fileName).toLowerCase();
  if (extension === '.yaml' || extension === '.yml') return 'yaml';
  if (extension === '.json') return 'json';
  return 'conf';
}

/**
 * Parses entities from configuration text without validating them against a schema.
 * @throws ConfigError for text over {@link MAX_CONFIG_FILE_BYTES} or a syntax error.
 */
export function parseConfigEntities(text: string, fileName: string, syntax: ConfigSyntax = detectConfigSyntax(fileName)): RawEntity[] {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_FILE_BYTES) throw fileTooLarge(fileName, bytes);
  return syntax === 'conf' ? parseConfSyntax(text, fileName) : parseStructuredSyntax(text, fileName, syntax);
}

/** An application's validator: from parsed entities to its typed configuration. */
export type ConfigValidator<Config, Options> = (entities: readonly RawEntity[], fileName: string, options: Options) => Config;

/** The two entry points of an application's configuration, made by {@link configEntryPoints}. */
export interface ConfigEntryPoints<Config, Options extends SyntaxOption> {
  /**
   * Parses and validates configuration text.
   * @param fileName names the file in messages and, unless `options.syntax` is given, picks the syntax.
   * @throws ConfigError whose message starts with `fileName:line: `.
   */
  parse(text: string, fileName: string, options?: Options): Config;
  /**
   * Reads, parses and validates a configuration file (synchronously: it runs once at startup,
   * before there is anything to interleave with).
   * @param filePath the file; also the name used in messages.
   * @throws ConfigError `ERR_CONFIG_READ` (with the system error as cause), `ERR_CONFIG_TOO_LARGE`,
   *   `ERR_CONFIG_ENCODING`, or any error of `parse`.
   */
  load(filePath: string, options?: Options): Config;
}

/** The parse and load entry points of an application, parameterised by its validator. */
export function configEntryPoints<Config, Options extends SyntaxOption>(validate: ConfigValidator<Config, Options>): ConfigEntryPoints<Config, Options> {
  const parse = (text: string, fileName: string, options = {} as Options): Config =>
    validate(parseConfigEntities(text, fileName, options.syntax ?? detectConfigSyntax(fileName)), fileName, options);
  return {
    parse,
    load: (filePath, options) => parse(readConfigText(filePath), filePath, options),
  };
}

/**
 * Reads a configuration file as UTF-8 text.
 * @throws ConfigError `ERR_CONFIG_READ`, `ERR_CONFIG_TOO_LARGE` or `ERR_CONFIG_ENCODING`.
 */
export function readConfigText(filePath: string): string {
  return decodeUtf8(readConfigBytes(filePath), filePath);
}

function readConfigBytes(filePath: string): Buffer {
  let descriptor: number | undefined;
  try {
    descriptor = fs.openSync(filePath, 'r');
    // Refuse an oversized file before reading it into memory.
    const { size } = fs.fstatSync(descriptor);
    if (size > MAX_CONFIG_FILE_BYTES) throw fileTooLarge(filePath, size);
    const bytes = fs.readFileSync(descriptor);
    // The file may have grown since fstat, or not be a regular file with a size.
    if (bytes.length > MAX_CONFIG_FILE_BYTES) throw fileTooLarge(filePath, bytes.length);
    return bytes;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw new ConfigError('ERR_CONFIG_READ', filePath, undefined, `cannot read the configuration file: ${detail}`, { cause: error });
  } finally {
    if (descriptor !== undefined) fs.closeSync(descriptor);
  }
}

function fileTooLarge(fileName: string, bytes: number): ConfigError {
  return new ConfigError(
    'ERR_CONFIG_TOO_LARGE',
    fileName,
    undefined,
    `the configuration is ${bytes} bytes; the limit is ${MAX_CONFIG_FILE_BYTES} bytes (4 MiB)`,
  );
}

/** Decodes UTF-8, refusing invalid bytes rather than silently replacing them with U+FFFD. */
function decodeUtf8(bytes: Buffer, fileName: string): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const offset = firstInvalidUtf8Offset(bytes);
  let line = 1;
  for (let index = 0; index < offset; index++) if (bytes[index] === 0x0a) line++;
  const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
  const byte = bytes[offset]!.toString(16).toUpperCase().padStart(2, '0');
  throw new ConfigError(
    'ERR_CONFIG_ENCODING',
    fileName,
    line,
    `not valid UTF-8 (byte 0x${byte} at offset ${offset})${utf16 ? '; the file looks like UTF-16' : ''}; save the file as UTF-8`,
  );
}

/** Offset of the first byte that does not start a well-formed UTF-8 sequence, or -1. */
function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  let index = 0;
  while (index < bytes.length) {
    const lead = bytes[index]!;
    if (lead < 0x80) {
      index++;
      continue;
    }
    let continuationCount: number;
    if (lead >= 0xc2 && lead <= 0xdf) continuationCount = 1;
    else if (lead >= 0xe0 && lead <= 0xef) continuationCount = 2;
    else if (lead >= 0xf0 && lead <= 0xf4) continuationCount = 3;
    else return index;
    if (index + continuationCount >= bytes.length) return index;
    for (let next = 1; next <= continuationCount; next++) {
      if ((bytes[index + next]! & 0xc0) !== 0x80) return index;
    }
    // Overlong forms, UTF-16 surrogates and code points above U+10FFFF.
    const second = bytes[index + 1]!;
    if ((lead === 0xe0 && second < 0xa0) || (lead === 0xed && second > 0x9f)) return index;
    if ((lead === 0xf0 && second < 0x90) || (lead === 0xf4 && second > 0x8f)) return index;
    index += continuationCount + 1;
  }
  return -1;
}
