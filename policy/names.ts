/**
 * Whether a user may use a link name (an address) under a group's `sources`/`targets` or
 * `sourcePattern`/`targetPattern` (qdrouterd's rules, with `${user}` substitution). Pure.
 */
import { addressTokens, compileAddressMatcher, matchesTokens, type AddressMatcher } from '../amqp/address';

/**
 * One allowed link name: literal (`a`), `${user}` as prefix (`p`), suffix (`s`) or embedded (`e`),
 * or `*` (any). A literal ending in `*` allows any name with that prefix.
 */
export interface NameRule {
  readonly kind: 'a' | 'p' | 's' | 'e' | '*';
  readonly before: string;
  readonly after: string;
}

/** The `${user}` substitution token. */
export const USER_TOKEN = '${user}';

/** qdrouterd's address token separators: a user name in a pattern must stand as whole tokens. */
const TOKEN_SEPARATORS = './';

/**
 * A name against literal rules: `a` literal, `p`/`s`/`e` with the user substituted, `*` any; a
 * rule ending in `*` allows every name it prefixes. An empty name is never allowed.
 */
export function approveName(user: string, rules: readonly NameRule[], proposed: string): boolean {
  if (proposed === '') return false;
  for (const r of rules) {
    if (r.kind === '*') return true;
    const name = r.kind === 'a' ? r.before : r.kind === 'p' ? user + r.after : r.kind === 's' ? r.before + user : r.before + user + r.after;
    if (name === '') continue;
    if (name.endsWith('*') ? proposed.startsWith(name.slice(0, -1)) : proposed === name) return true;
  }
  return false;
}

/** A sourcePattern/targetPattern item, compiled once with its vhost. */
export interface PatternRule {
  readonly pattern: string;
  readonly matcher: AddressMatcher;
}

/** Compiles pattern items (`${user}` stands as one token in them). */
export function compilePatterns(patterns: readonly string[]): PatternRule[] {
  return patterns.map((pattern) => ({ pattern, matcher: compileAddressMatcher({ pattern }) }));
}

/**
 * A name against address patterns (`*` one token, `#` any number). A pattern starting or ending
 * with `${user}` allows the name only where the user name is a whole token there.
 */
export function approveNameByPattern(user: string, patterns: readonly PatternRule[], proposed: string): boolean {
  if (proposed === '') return false;
  for (const { pattern: p, matcher } of patterns) {
    let candidate = proposed;
    if (p.startsWith(USER_TOKEN)) {
      if (!proposed.startsWith(user)) continue;
      if (proposed.length > user.length && !TOKEN_SEPARATORS.includes(proposed[user.length])) continue;
      candidate = USER_TOKEN + proposed.slice(user.length);
    } else if (p.endsWith(USER_TOKEN)) {
      if (user.length > proposed.length || !proposed.endsWith(user)) continue;
      const sepAt = proposed.length - user.length - 1;
      if (sepAt < 0 || !TOKEN_SEPARATORS.includes(proposed[sepAt])) continue;
      candidate = proposed.slice(0, proposed.length - user.length) + USER_TOKEN;
    }
    // The token stands for itself in both: the name with the user as the token, against the pattern as written.
    if (matchesTokens(matcher, addressTokens(candidate))) return true;
  }
  return false;
}
