/**
 * Address checks shared by the router and the broker: the spellings that name the same node,
 * and what a peer may not make us store.
 */

/**
 * Strips `amqp:/` and `amqp://host/` (and any other `scheme:/` or `scheme://host/`, as qdrouterd's
 * address view does: uAMQP sends `amqps://host/queue`) so equivalent spellings route alike.
 */
export function normalizeAddress(address: string): string {
  if (address.startsWith('amqp:')) {
    let rest = address.slice(5);
    if (rest.startsWith('//')) {
      const slash = rest.indexOf('/', 2);
      rest = slash < 0 ? '' : rest.slice(slash);
    }
    return rest.replace(/^\/+/, '');
  }
  const colon = address.indexOf(':/');
  if (colon <= 0) return address;
  if (address.charCodeAt(colon + 2) !== 0x2f) return address.slice(colon + 2);
  const slash = address.indexOf('/', colon + 3);
  return slash < 0 ? address : address.slice(slash + 1);
}

/** Why an address is unusable, or null when fine. Limits what a client can make us store. */
export function checkAddress(address: string, maxLength: number): string | null {
  if (address.length === 0) return 'address is empty';
  if (address.length > maxLength) return `address is ${address.length} characters, over the limit of ${maxLength}`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(address)) return 'address contains control characters';
  return null;
}

/**
 * An `address` entity's prefix or pattern compiled for matching, as qdrouterd's parse tree does:
 * names are tokens split on '.' or '/' (separators at either end do not count: "queue." and
 * "queue" are one prefix); a prefix matches the name itself and anything below it at token
 * boundaries; in a pattern `*` is one token and `#` zero or more. The router orders matches as
 * qdrouterd's parse tree does ({@link compareMatchers}); `weight` (each literal token counts 2, a
 * prefix 1 more than a pattern of the same literal tokens) orders the broker's address settings.
 */
export interface AddressMatcher {
  readonly tokens: readonly string[];
  readonly isPrefix: boolean;
  /** Higher wins. */
  readonly weight: number;
}

/** The tokens of an address name (or of a prefix or pattern). */
export function addressTokens(name: string): string[] {
  return name.replace(/^[./]+|[./]+$/g, '').split(/[./]/);
}

/** Compiles a rule's `prefix` (preferred) or `pattern`. */
export function compileAddressMatcher(rule: { prefix?: string; pattern?: string }): AddressMatcher {
  const isPrefix = rule.prefix !== undefined;
  const tokens = addressTokens(rule.prefix ?? rule.pattern ?? '');
  const literal = isPrefix ? tokens.length : tokens.filter((t) => t !== '*' && t !== '#').length;
  return { tokens, isPrefix, weight: literal * 2 + (isPrefix ? 1 : 0) };
}

/** How a pattern token ranks in qdrouterd's parse-tree search: a literal first, then `*`, then `#`. */
function tokenRank(t: string): number {
  return t === '#' ? 2 : t === '*' ? 1 : 0;
}

/**
 * Which of two rules that both match a name qdrouterd's parse tree picks: its search tries, token
 * by token, a literal before `*` before `#`, so the first token where the rules differ decides
 * (a prefix counts as its tokens then `#`). Negative when `a` wins; on a tie a prefix wins, then
 * the earlier rule (0).
 */
export function compareMatchers(a: AddressMatcher, b: AddressMatcher): number {
  const ta = a.isPrefix ? [...a.tokens, '#'] : a.tokens;
  const tb = b.isPrefix ? [...b.tokens, '#'] : b.tokens;
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    const d = tokenRank(ta[i]) - tokenRank(tb[i]);
    if (d !== 0) return d;
  }
  // One is the other plus more tokens: the search reaches the shorter one's end first.
  if (ta.length !== tb.length) return ta.length - tb.length;
  return (b.isPrefix ? 1 : 0) - (a.isPrefix ? 1 : 0);
}

/** True when the name's tokens are matched by `m`. */
export function matchesTokens(m: AddressMatcher, name: readonly string[]): boolean {
  if (!m.isPrefix) return matchPattern(m.tokens, 0, name, 0);
  if (m.tokens.length > name.length) return false;
  for (let i = 0; i < m.tokens.length; i++) if (m.tokens[i] !== name[i]) return false;
  return true;
}

/** True when `address` is under `rule.prefix` or matches `rule.pattern` (see {@link AddressMatcher}). */
export function matchesAddressRule(rule: { prefix?: string; pattern?: string }, address: string): boolean {
  if (rule.prefix === undefined && rule.pattern === undefined) return false;
  return matchesTokens(compileAddressMatcher(rule), addressTokens(address));
}

function matchPattern(p: readonly string[], pi: number, a: readonly string[], ai: number): boolean {
  if (pi === p.length) return ai === a.length;
  const t = p[pi];
  if (t === '#') {
    for (let k = ai; k <= a.length; k++) if (matchPattern(p, pi + 1, a, k)) return true;
    return false;
  }
  if (ai === a.length) return false;
  return (t === '*' || t === a[ai]) && matchPattern(p, pi + 1, a, ai + 1);
}
