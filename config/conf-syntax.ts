/**
 * Parser for qdrouterd's own configuration syntax (`qdrouterd.conf`).
 *
 * The syntax, as qdrouterd 1.19 accepts it:
 *
 * ```
 * # whole-line comment
 * router {                      # a section: NAME then "{" ending the line
 *     mode: interior            # key: value; everything after "#" is a comment
 *     id: Router.A
 * }                             # "}" alone on its line closes the section
 * address {
 *     pattern: orders/#         # pattern, bindingKey and hostname values may contain "#";
 * }                             # their value is one whitespace-free token
 * connector {
 *     openProperties: {         # a map value: "key: {" ending the line ...
 *         "label": "green",     # ... JSON-ish entries, one per line ...
 *     }                         # ... and "}" (optionally "},") alone on its line
 * }
 * ```
 *
 * Sections cannot nest and one-line sections (`router {}`) are not allowed. Every top-level
 * value is a string (`maxFrameSize: 16384` is the string "16384"); the schema converts it, as
 * qdrouterd does.
 *
 * Where amqp-mesh goes beyond qdrouterd, it only accepts more, never less: values may be quoted
 * with '...' (literal) or "..." (JSON escapes) so they can hold "#", leading spaces or nothing at
 * all, while qdrouterd would pass the quotes into the value or fail. Where qdrouterd's
 * regex-and-json.loads approach silently accepts garbage (a second token after a pattern, text
 * after "}"), this parser reports the line instead.
 */

import { ConfigError, MAX_VALUE_NESTING_DEPTH, quote } from './errors';
import { qdrouterdCamelCase, type RawAttribute, type RawEntity, type RawValue } from './raw-entity';

/** Attributes whose unquoted value is the first whitespace-free token, `#` included (qdrouterd's rule). */
const HASH_ALLOWED_ATTRIBUTES: ReadonlySet<string> = new Set(['pattern', 'bindingKey', 'hostname']);

const NAME = String.raw`[\p{L}\p{N}_-]+`;
const SECTION_OPEN = new RegExp(String.raw`^(${NAME})[ \t]*\{[ \t]*(?:#.*)?$`, 'su');
const ONE_LINE_SECTION = new RegExp(String.raw`^${NAME}[ \t]*\{.*\}[ \t]*(?:#.*)?$`, 'su');
const SECTION_CLOSE = /^\}[ \t]*(?:#.*)?$/s;
const ATTRIBUTE = new RegExp(String.raw`^(${NAME})[ \t]*:(.*)$`, 'su');
const MAP_OPEN = /^[ \t]*\{[ \t]*(?:#.*)?$/s;
const MAP_CLOSE = /^\}[ \t]*,?[ \t]*(?:#.*)?$/s;
const MAP_ENTRY = new RegExp(String.raw`^(?:"((?:[^"\\]|\\.)*)"|(\$*${NAME}))[ \t]*:(.*)$`, 'su');
/** C0 controls except tab, and DEL: never meaningful in a config value, often a sign of a binary or mangled file. */
const CONTROL_CHARACTER = /[\u0000-\u0008\u000a-\u001f\u007f]/;

interface OpenSection {
  readonly type: string;
  readonly line: number;
  readonly attributes: RawAttribute[];
}

interface OpenMap {
  /** The key the map is the value of. */
  readonly key: string;
  readonly line: number;
  readonly entries: { [key: string]: RawValue };
  readonly entryLines: Map<string, number>;
}

/**
 * Parses qdrouterd.conf text into entities. Pure; line numbers are 1-based.
 * @param text the file's text (a leading byte-order mark is ignored).
 * @param file the file name used in error messages.
 * @throws ConfigError with code `ERR_CONFIG_SYNTAX` naming the offending line.
 */
export function parseConfSyntax(text: string, file: string): RawEntity[] {
  const entities: RawEntity[] = [];
  let section: OpenSection | undefined;
  // Maps nest (openProperties values may be maps); the innermost open map is last.
  const maps: OpenMap[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');

  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    const rawLine = lines[index]!;
    const line = trimBlanks(rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine);
    if (line === '' || line.startsWith('#')) continue;
    const fail: (reason: string) => never = (reason) => {
      throw new ConfigError('ERR_CONFIG_SYNTAX', file, lineNumber, reason);
    };

    if (maps.length > 0) {
      parseMapLine(line, lineNumber, maps, fail);
      continue;
    }

    const sectionOpen = SECTION_OPEN.exec(line);
    if (sectionOpen !== null) {
      if (section !== undefined) {
        fail(
          `section "${sectionOpen[1]}" cannot start inside section "${section.type}" (opened on line ${section.line}); ` +
            `sections do not nest: close "${section.type}" with "}" first`,
        );
      }
      section = { type: sectionOpen[1]!, line: lineNumber, attributes: [] };
      continue;
    }

    if (SECTION_CLOSE.test(line)) {
      if (section === undefined) fail('"}" closes nothing: there is no open section');
      entities.push(section);
      section = undefined;
      continue;
    }

    const attribute = ATTRIBUTE.exec(line);
    if (attribute !== null) {
      const key = attribute[1]!;
      const rest = attribute[2]!;
      if (section === undefined) {
        fail(`${quote(`${key}:`)} is outside any section; attributes belong inside a section such as "listener {" ... "}"`);
      }
      if (MAP_OPEN.test(rest)) {
        maps.push({ key, line: lineNumber, entries: {}, entryLines: new Map() });
        continue;
      }
      section.attributes.push({ name: key, value: parseTopLevelValue(key, rest, fail), line: lineNumber });
      continue;
    }

    if (ONE_LINE_SECTION.test(line)) {
      fail(`one-line sections are not allowed: put "${line.slice(0, line.indexOf('{') + 1)}" and "}" on lines of their own`);
    }
    fail(`expected "name {", "key: value" or "}", got ${quote(line)}`);
  }

  const unclosedMap = maps[0];
  if (unclosedMap !== undefined) {
    throw new ConfigError('ERR_CONFIG_SYNTAX', file, unclosedMap.line, `map "${unclosedMap.key}" opened here is never closed with "}"`);
  }
  if (section !== undefined) {
    throw new ConfigError('ERR_CONFIG_SYNTAX', file, section.line, `section "${section.type}" opened here is never closed with "}"`);
  }
  return entities;

  /** A line inside a `key: {` map: an entry, a nested map, or the closing brace. */
  function parseMapLine(line: string, lineNumber: number, openMaps: OpenMap[], fail: (reason: string) => never): void {
    const map = openMaps[openMaps.length - 1]!;
    if (MAP_CLOSE.test(line)) {
      openMaps.pop();
      const parent = openMaps[openMaps.length - 1];
      if (parent !== undefined) parent.entries[map.key] = map.entries;
      else section!.attributes.push({ name: map.key, value: map.entries, line: map.line });
      return;
    }
    const entry = MAP_ENTRY.exec(line);
    if (entry === null) {
      if (SECTION_OPEN.test(line)) {
        fail(`map "${map.key}" (opened on line ${map.line}) is not closed before this section; add "}"`);
      }
      fail(`expected "key: value", "key: {" or "}" inside map "${map.key}" (opened on line ${map.line}), got ${quote(line)}`);
    }
    const key = entry[1] !== undefined ? decodeDoubleQuoted(`"${entry[1]}"`, fail) : entry[2]!;
    const rest = entry[3]!;
    const firstLine = map.entryLines.get(key);
    if (firstLine !== undefined) fail(`key ${quote(key)} is set twice in map "${map.key}" (first on line ${firstLine})`);
    map.entryLines.set(key, lineNumber);
    if (MAP_OPEN.test(rest)) {
      if (openMaps.length >= MAX_VALUE_NESTING_DEPTH) {
        fail(`maps nest more than ${MAX_VALUE_NESTING_DEPTH} levels deep`);
      }
      openMaps.push({ key, line: lineNumber, entries: {}, entryLines: new Map() });
      return;
    }
    map.entries[key] = parseMapEntryValue(key, rest, fail);
  }
}

/** Strips spaces and tabs only: other whitespace (form feeds, NBSP) is not blank in qdrouterd either. */
function trimBlanks(text: string): string {
  return text.replace(/^[ \t]+|[ \t]+$/g, '');
}

/** The value of a section-level `key: value` line: always a string, like qdrouterd. */
function parseTopLevelValue(key: string, rest: string, fail: (reason: string) => never): string {
  const text = trimBlanks(rest);
  if (text.startsWith('"') || text.startsWith("'")) {
    const { value, after } = readQuoted(text, fail);
    if (!/^[ \t]*(?:#.*)?$/s.test(after)) fail(`unexpected text ${quote(trimBlanks(after))} after the quoted value of "${key}"`);
    return value;
  }
  if (HASH_ALLOWED_ATTRIBUTES.has(qdrouterdCamelCase(key))) {
    const token = /^\S*/.exec(text)![0];
    const after = trimBlanks(text.slice(token.length));
    if (token === '') fail(`"${key}" has no value`);
    if (after !== '' && !after.startsWith('#')) {
      fail(`"${key}" takes a single token (it may contain "#"), got ${quote(text)}; quote the value if it has spaces`);
    }
    rejectControlCharacters(token, key, fail);
    return token;
  }
  const hash = text.indexOf('#');
  const value = trimBlanks(hash === -1 ? text : text.slice(0, hash));
  if (value === '') fail(`"${key}" has no value; write ${key}: "" for an empty string`);
  if (value.startsWith('{')) {
    fail(`a map value must be written as "${key}: {" ending the line, its entries on the following lines, then "}"`);
  }
  rejectControlCharacters(value, key, fail);
  return value;
}

/**
 * A value inside a map. qdrouterd expects JSON there (openProperties) but its own documentation
 * writes vhost groups in conf style (`users: admin1, admin2`), so: JSON if the text is JSON,
 * otherwise a string.
 */
function parseMapEntryValue(key: string, rest: string, fail: (reason: string) => never): RawValue {
  const text = trimBlanks(rest);
  if (text.startsWith('"') || text.startsWith("'")) {
    const { value, after } = readQuoted(text, fail);
    if (!/^[ \t]*,?[ \t]*(?:#.*)?$/s.test(after)) fail(`unexpected text ${quote(trimBlanks(after))} after the quoted value of "${key}"`);
    return value;
  }
  rejectControlCharacters(text, key, fail);
  const json = tryParseJson(text.replace(/,[ \t]*$/, ''));
  if (json.ok) return json.value;
  const hash = text.indexOf('#');
  const uncommented = trimBlanks(hash === -1 ? text : text.slice(0, hash)).replace(/[ \t]*,$/, '');
  if (uncommented === '') fail(`"${key}" has no value`);
  const jsonWithoutComment = tryParseJson(uncommented);
  if (jsonWithoutComment.ok) return jsonWithoutComment.value;
  if (uncommented.startsWith('[') || uncommented.startsWith('{')) {
    fail(`the value of "${key}" looks like JSON but is not valid JSON; a JSON list or map must be complete on one line`);
  }
  return uncommented;
}

function tryParseJson(text: string): { ok: true; value: RawValue } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) as RawValue };
  } catch {
    return { ok: false };
  }
}

/** Reads a '...' or "..." string at the start of text; returns it and the text after the closing quote. */
function readQuoted(text: string, fail: (reason: string) => never): { value: string; after: string } {
  const quoteChar = text[0]!;
  if (quoteChar === "'") {
    const end = text.indexOf("'", 1);
    if (end === -1) fail(`unterminated quoted value ${quote(text)}: no closing '`);
    const value = text.slice(1, end);
    rejectControlCharacters(value, 'quoted value', fail);
    return { value, after: text.slice(end + 1) };
  }
  let end = 1;
  while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
  if (end >= text.length) fail(`unterminated quoted value ${quote(text)}: no closing "`);
  return { value: decodeDoubleQuoted(text.slice(0, end + 1), fail), after: text.slice(end + 1) };
}

/** A double-quoted string with JSON escapes; literal tabs are allowed (JSON forbids them). */
function decodeDoubleQuoted(quoted: string, fail: (reason: string) => never): string {
  rejectControlCharacters(quoted, 'quoted value', fail);
  try {
    return JSON.parse(quoted.replace(/\t/g, '\\t')) as string;
  } catch (error) {
    fail(`invalid escape in ${quoted}: use JSON escapes such as \\" \\\\ \\n \\u00e9`);
    throw error;
  }
}

function rejectControlCharacters(value: string, what: string, fail: (reason: string) => never): void {
  const match = CONTROL_CHARACTER.exec(value);
  if (match !== null) {
    const codePoint = match[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    fail(`control character U+${codePoint} in the value of "${what}"`);
  }
}
