/**
 * Address configuration lookup: qdrouterd's `address` entities (prefix or pattern) decide an
 * address's distribution. Matching follows qdrouterd's parse tree: addresses are tokens split on
 * '.' or '/'; a prefix matches the address itself and anything below it; in a pattern `*` is one
 * token and `#` zero or more. The most specific match wins (longest prefix; a prefix beats a
 * pattern of the same length, as qdrouterd prefers exact tokens over wildcards).
 */
import { LRUCache } from 'lru-cache';

export type Distribution = 'closest' | 'balanced' | 'multicast';

/** One configured address rule. */
export interface AddressRule {
  prefix?: string;
  pattern?: string;
  distribution: Distribution;
}

interface CompiledRule {
  tokens: string[];
  isPrefix: boolean;
  distribution: Distribution;
  /** Higher wins: literal tokens count more than wildcards. */
  weight: number;
}

function tokenize(s: string): string[] {
  return s.split(/[./]/);
}

function matchPattern(p: string[], pi: number, a: string[], ai: number): boolean {
  if (pi === p.length) return ai === a.length;
  const t = p[pi];
  if (t === '#') {
    for (let k = ai; k <= a.length; k++) if (matchPattern(p, pi + 1, a, k)) return true;
    return false;
  }
  if (ai === a.length) return false;
  if (t === '*' || t === a[ai]) return matchPattern(p, pi + 1, a, ai + 1);
  return false;
}

/** Resolves addresses to distributions; results are cached (bounded). */
export class AddressTable {
  private rules: CompiledRule[] = [];
  private readonly cache = new LRUCache<string, Distribution>({ max: 10_000 });

  constructor(rules: AddressRule[], readonly defaultDistribution: Distribution = 'balanced') {
    this.setRules(rules);
  }

  setRules(rules: AddressRule[]): void {
    this.rules = rules.map((r) => {
      const src = (r.prefix ?? r.pattern ?? '').replace(/^\/+|\/+$/g, '');
      const tokens = tokenize(src);
      const literal = tokens.filter((t) => t !== '*' && t !== '#').length;
      return { tokens, isPrefix: r.prefix !== undefined, distribution: r.distribution, weight: literal * 2 + (r.prefix !== undefined ? 1 : 0) };
    });
    this.cache.clear();
  }

  /** The distribution for `address` (already stripped of amqp:/ scheme). */
  computeDistribution(address: string): Distribution {
    const hit = this.cache.get(address);
    if (hit !== undefined) return hit;
    const a = tokenize(address);
    let best: CompiledRule | null = null;
    for (const r of this.rules) {
      let ok: boolean;
      if (r.isPrefix) {
        ok = r.tokens.length <= a.length;
        for (let i = 0; ok && i < r.tokens.length; i++) if (r.tokens[i] !== a[i]) ok = false;
      } else ok = matchPattern(r.tokens, 0, a, 0);
      if (ok && (best === null || r.weight > best.weight)) best = r;
    }
    const d = best ? best.distribution : this.defaultDistribution;
    this.cache.set(address, d);
    return d;
  }
}

/** Strips `amqp:/` and `amqp://host/` so equivalent spellings route alike (as qdrouterd does). */
export function normalizeAddress(address: string): string {
  if (address.startsWith('amqp:')) {
    let rest = address.slice(5);
    if (rest.startsWith('//')) {
      const slash = rest.indexOf('/', 2);
      rest = slash < 0 ? '' : rest.slice(slash);
    }
    return rest.replace(/^\/+/, '');
  }
  return address;
}

/** Why an address is unusable, or null when fine. Limits what a client can make us store. */
export function checkAddress(address: string, maxLength: number): string | null {
  if (address.length === 0) return 'address is empty';
  if (address.length > maxLength) return `address is ${address.length} characters, over the limit of ${maxLength}`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(address)) return 'address contains control characters';
  return null;
}
