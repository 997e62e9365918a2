/**
 * Address configuration lookup: qdrouterd's `address` entities (prefix or pattern) decide an
 * address's distribution. Matching follows qdrouterd's parse tree: addresses are tokens split on
 * '.' or '/'; a prefix matches the address itself and anything below it; in a pattern `*` is one
 * token and `#` zero or more. The most specific match wins (longest prefix; a prefix beats a
 * pattern of the same length, as qdrouterd prefers exact tokens over wildcards).
 */
import { LRUCache } from 'lru-cache';

import type { Distribution } from '../distribution';

export type { Distribution };

/** One configured address rule. */
export interface AddressRule {
  prefix?: string;
  pattern?: string;
  distribution: Distribution;
  /** A waypoint (qdrouterd): producers send on `ingressPhase`, consumers receive on `egressPhase`. */
  waypoint?: boolean;
  ingressPhase?: number;
  egressPhase?: number;
}

/** Phases of an address: what a producer's messages enter as, what consumers receive. */
export interface AddressPhases {
  ingress: number;
  egress: number;
}

const NO_PHASES: AddressPhases = { ingress: 0, egress: 0 };

interface CompiledRule {
  tokens: string[];
  isPrefix: boolean;
  distribution: Distribution;
  phases: AddressPhases;
  /** Higher wins: literal tokens count more than wildcards. */
  weight: number;
}

function tokenize(s: string): string[] {
  return s.split(/[./]/);
}

/**
 * True when `address` is under `rule.prefix` (whole tokens, separators `.` and `/`; a separator
 * at either end of either side does not count) or matches `rule.pattern` (`*` one token, `#` any).
 */
export function matchesAddressRule(rule: { prefix?: string; pattern?: string }, address: string): boolean {
  const strip = (x: string) => tokenize(x.replace(/^[./]+|[./]+$/g, ''));
  const a = strip(address);
  if (rule.prefix !== undefined) {
    const p = strip(rule.prefix);
    if (p.length > a.length) return false;
    for (let i = 0; i < p.length; i++) if (p[i] !== a[i]) return false;
    return true;
  }
  return rule.pattern !== undefined && matchPattern(strip(rule.pattern), 0, a, 0);
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
  private readonly cache = new LRUCache<string, CompiledRule | 0>({ max: 10_000 });

  constructor(rules: AddressRule[], readonly defaultDistribution: Distribution = 'balanced') {
    this.setRules(rules);
  }

  setRules(rules: AddressRule[]): void {
    this.rules = rules.map((r) => {
      // "queue." and "queue" name the same prefix: separators at either end are not tokens.
      const src = (r.prefix ?? r.pattern ?? '').replace(/^[./]+|[./]+$/g, '');
      const tokens = tokenize(src);
      const literal = tokens.filter((t) => t !== '*' && t !== '#').length;
      const phases = r.waypoint || r.ingressPhase !== undefined || r.egressPhase !== undefined
        ? { ingress: r.ingressPhase ?? 0, egress: r.egressPhase ?? (r.waypoint ? 1 : 0) }
        : NO_PHASES;
      return { tokens, isPrefix: r.prefix !== undefined, distribution: r.distribution, phases, weight: literal * 2 + (r.prefix !== undefined ? 1 : 0) };
    });
    this.cache.clear();
  }

  /** The distribution for `address` (already stripped of amqp:/ scheme). */
  computeDistribution(address: string): Distribution {
    const r = this.match(address);
    return r === 0 ? this.defaultDistribution : r.distribution;
  }

  /** The phases producers and consumers of `address` use (0/0 unless it is a waypoint). */
  computePhases(address: string): AddressPhases {
    const r = this.match(address);
    return r === 0 ? NO_PHASES : r.phases;
  }

  private match(address: string): CompiledRule | 0 {
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
    const m = best ?? 0;
    this.cache.set(address, m);
    return m;
  }
}

/**
 * The routing key of `address` in `phase`: the address itself for phase 0, otherwise a form no
 * client can spell (a control character first: {@link checkAddress} refuses those).
 */
export function phaseKey(address: string, phase: number): string {
  return phase === 0 ? address : `\u0001${String.fromCharCode(0x30 + phase)}${address}`;
}

/** The address and phase of a routing key made by {@link phaseKey}. */
export function parsePhaseKey(key: string): { address: string; phase: number } {
  if (key.charCodeAt(0) !== 1) return { address: key, phase: 0 };
  return { address: key.slice(2), phase: key.charCodeAt(1) - 0x30 };
}
