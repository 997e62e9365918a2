/**
 * The `prefix` or `pattern` of qdrouterd's address-matching entities (the router's `address` and
 * `linkRoute`, the broker's `address`): exactly one, with tokens separated by `.` or `/`.
 */

import { ConfigError, quote } from './errors';
import { invalid, optionalString, refuseTogether, type ValidatedEntity } from './validate';

/** A prefix or a pattern, and the normalised pattern it matches (a prefix `a.b` matches what `a/b/#` does). */
export type AddressMatch = { prefix: string; pattern?: undefined; matchKey: string } | { prefix?: undefined; pattern: string; matchKey: string };

/** A prefix or pattern without the separators at either end, which qdrouterd ignores; '' when it has no tokens. */
export function addressTokens(written: string): string {
  return written.replace(/^[./]+|[./]+$/g, '');
}

/** The prefix or pattern of an entity (exactly one, with tokens), and its normalised match. */
export function readMatch(entity: ValidatedEntity): AddressMatch {
  const type = entity.schema.type;
  const prefix = optionalString(entity, 'prefix');
  const pattern = optionalString(entity, 'pattern');
  if (prefix === undefined && pattern === undefined) {
    throw new ConfigError('ERR_CONFIG_MISSING_ATTRIBUTE', entity.file, entity.line, `${type} needs exactly one of "prefix" or "pattern"; it has neither`);
  }
  if (prefix !== undefined && pattern !== undefined) {
    refuseTogether(
      entity,
      'prefix',
      'pattern',
      (prefixLine, patternLine) => `${type} needs exactly one of "prefix" or "pattern"; it has both (prefix on line ${prefixLine}, pattern on line ${patternLine})`,
    );
  }
  const attribute = prefix !== undefined ? 'prefix' : 'pattern';
  const written = (prefix ?? pattern)!;
  const tokens = addressTokens(written);
  if (tokens === '') {
    invalid(entity, attribute, 'ERR_CONFIG_INVALID_VALUE', `${type} ${attribute} ${quote(written)} has no tokens; expected something like "orders" or "orders.*"`);
  }
  // A prefix matches what the pattern "prefix/#" matches (qdrouterd turns the one into the other).
  const matchKey = tokens.replace(/\./g, '/') + (prefix !== undefined ? '/#' : '');
  return prefix !== undefined ? { prefix, matchKey } : { pattern: pattern!, matchKey };
}

/**
 * The earlier address entity (line and description) that matches the same addresses as this
 * one, or null; this one is recorded when it is the first.
 */
export function findDuplicateMatch(entity: ValidatedEntity, earlier: Map<string, { line: number; description: string }>): { line: number; description: string; mine: string } | null {
  const match = readMatch(entity);
  const attribute = match.prefix !== undefined ? 'prefix' : 'pattern';
  const mine = `${attribute} ${quote(match.prefix ?? match.pattern)}`;
  const first = earlier.get(match.matchKey);
  if (first !== undefined) return { ...first, mine };
  earlier.set(match.matchKey, { line: entity.line, description: mine });
  return null;
}

/**
 * An `address` entity's match, refused when an earlier address entity matches the same
 * addresses (qdrouterd refuses a second address entry for the same match).
 * @param earlier the matches of the address entities read so far; this one is added.
 */
export function readUniqueMatch(entity: ValidatedEntity, earlier: Map<string, { line: number; description: string }>): AddressMatch {
  const match = readMatch(entity);
  const attribute = match.prefix !== undefined ? 'prefix' : 'pattern';
  const description = `${attribute} ${quote(match.prefix ?? match.pattern)}`;
  const first = earlier.get(match.matchKey);
  if (first !== undefined) {
    invalid(entity, attribute, 'ERR_CONFIG_DUPLICATE', `${entity.schema.type} ${description} matches the same addresses as the address on line ${first.line} (${first.description})`);
  }
  earlier.set(match.matchKey, { line: entity.line, description });
  return match;
}
