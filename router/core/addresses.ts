/**
 * Address configuration lookup: qdrouterd's `address` entities (prefix or pattern) decide an
 * address's distribution. Matching follows qdrouterd's parse tree: addresses are tokens split on
 * '.' or '/'; a prefix matches the address itself and anything below it; in a pattern `*` is one
 * token and `#` zero or more. The match qdrouterd's parse-tree search finds first wins: token by
 * token a literal before `*` before `#` (so the longest prefix; a prefix beats an equal pattern).
 */
import { LRUCache } from 'lru-cache';

import type { Distribution } from '../distribution';
import { addressTokens, compareMatchers, compileAddressMatcher, matchesAddressRule, matchesTokens, type AddressMatcher } from '../../amqp/address';

export type { Distribution };

/** One configured address rule. */
export interface AddressRule {
  prefix?: string;
  pattern?: string;
  /**
   * `unavailable` (qdrouterd): matching addresses cannot be attached to, and anonymous
   * deliveries to them are rejected; such addresses never exist in the core.
   */
  distribution: Distribution | 'unavailable';
  /** A waypoint (qdrouterd): producers send on `ingressPhase`, consumers receive on `egressPhase`. */
  waypoint?: boolean;
  ingressPhase?: number;
  egressPhase?: number;
  /** Priority (0-9) matching messages travel the mesh with, whatever their header says; absent or -1: theirs. */
  priority?: number;
}

/** Phases of an address: what a producer's messages enter as, what consumers receive. */
export interface AddressPhases {
  ingress: number;
  egress: number;
}

const NO_PHASES: AddressPhases = { ingress: 0, egress: 0 };

interface CompiledRule extends AddressMatcher {
  distribution: Distribution;
  unavailable: boolean;
  phases: AddressPhases;
  /** -1: the message's own. */
  priority: number;
}

/** True when `address` is under `rule.prefix` or matches `rule.pattern` (amqp/address.ts). */
export { matchesAddressRule };

/** Resolves addresses to distributions; results are cached (bounded). */
export class AddressTable {
  private rules: CompiledRule[] = [];
  /** Some rule is `unavailable` (else {@link isUnavailable} need not look). */
  private anyUnavailable = false;
  /** Some rule sets a priority (else {@link computePriority} need not look). */
  anyPriority = false;
  private readonly cache = new LRUCache<string, CompiledRule | 0>({ max: 10_000 });

  constructor(rules: AddressRule[], readonly defaultDistribution: Distribution = 'balanced') {
    this.setRules(rules);
  }

  setRules(rules: AddressRule[]): void {
    this.rules = rules.map((r) => {
      const phases = r.waypoint || r.ingressPhase !== undefined || r.egressPhase !== undefined
        ? { ingress: r.ingressPhase ?? 0, egress: r.egressPhase ?? (r.waypoint ? 1 : 0) }
        : NO_PHASES;
      const unavailable = r.distribution === 'unavailable';
      const distribution = r.distribution === 'unavailable' ? this.defaultDistribution : r.distribution;
      return { ...compileAddressMatcher(r), distribution, unavailable, phases, priority: r.priority ?? -1 };
    });
    this.anyUnavailable = this.rules.some((r) => r.unavailable);
    this.anyPriority = this.rules.some((r) => r.priority >= 0);
    this.cache.clear();
  }

  /** The distribution for `address` (already stripped of amqp:/ scheme). */
  computeDistribution(address: string): Distribution {
    const r = this.match(address);
    return r === 0 ? this.defaultDistribution : r.distribution;
  }

  /** The distribution an address rule gives `address`, or null when no rule matches it. */
  computeConfiguredDistribution(address: string): Distribution | null {
    const r = this.match(address);
    return r === 0 ? null : r.distribution;
  }

  /**
   * True when the most specific rule for `address` (without phase prefix) has distribution
   * `unavailable` (qdrouterd 1.19's QD_TREATMENT_UNAVAILABLE).
   */
  isUnavailable(address: string): boolean {
    if (!this.anyUnavailable) return false;
    const r = this.match(address);
    return r !== 0 && r.unavailable;
  }

  /** The priority `address`'s messages cross the mesh with: its rule's, else `own` (the message's). */
  computePriority(address: string, own: number): number {
    if (!this.anyPriority) return own;
    const r = this.match(address);
    return r === 0 || r.priority < 0 ? own : r.priority;
  }

  /** The phases producers and consumers of `address` use (0/0 unless it is a waypoint). */
  computePhases(address: string): AddressPhases {
    const r = this.match(address);
    return r === 0 ? NO_PHASES : r.phases;
  }

  private match(address: string): CompiledRule | 0 {
    const hit = this.cache.get(address);
    if (hit !== undefined) return hit;
    const a = addressTokens(address);
    let best: CompiledRule | null = null;
    for (const r of this.rules) {
      if ((best === null || compareMatchers(r, best) < 0) && matchesTokens(r, a)) best = r;
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
