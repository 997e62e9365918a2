/**
 * Which `address` entity applies to an address name, with the router's matching rules
 * (router/core/addresses.ts): names are tokens split on '.' or '/'; a prefix matches the
 * address itself and anything below it, at token boundaries (`orders` matches `orders` and
 * `orders.eu`, not `ordersX`); in a pattern `*` is one token and `#` zero or more. The most
 * specific match wins: each literal token counts 2, a prefix 1 more than a pattern of the same
 * literal tokens; between equals, the first in the file. The winner's settings apply whole;
 * nothing is merged from less specific matches.
 */

import type { BrokerAddress, BrokerAddressSettings } from './types';

/** The settings of an address no `address` entity matches: every attribute's default. */
export const DEFAULT_ADDRESS_SETTINGS: Readonly<BrokerAddressSettings> = Object.freeze({
  routingType: 'anycast',
  maxDeliveryAttempts: 10,
  maxSizeBytes: -1,
  addressFullPolicy: 'BLOCK',
  autoCreate: true,
});

interface CompiledRule {
  readonly tokens: readonly string[];
  readonly isPrefix: boolean;
  /** Higher wins. */
  readonly weight: number;
}

/** Compiled once per address entity (the broker calls matchAddress per new queue or topic). */
const compiled = new WeakMap<BrokerAddress, CompiledRule>();

function compile(address: BrokerAddress): CompiledRule {
  let rule = compiled.get(address);
  if (rule === undefined) {
    const isPrefix = address.prefix !== undefined;
    // Separators at either end are ignored, as in qdrouterd.
    const tokens = (address.prefix ?? address.pattern ?? '').replace(/^[./]+|[./]+$/g, '').split(/[./]/);
    // A prefix's tokens match literally; in a pattern `*` and `#` are wildcards.
    const literal = isPrefix ? tokens.length : tokens.filter((token) => token !== '*' && token !== '#').length;
    rule = { tokens, isPrefix, weight: literal * 2 + (isPrefix ? 1 : 0) };
    compiled.set(address, rule);
  }
  return rule;
}

function matchPattern(pattern: readonly string[], pi: number, name: readonly string[], ni: number): boolean {
  if (pi === pattern.length) return ni === name.length;
  const token = pattern[pi];
  if (token === '#') {
    for (let next = ni; next <= name.length; next++) if (matchPattern(pattern, pi + 1, name, next)) return true;
    return false;
  }
  if (ni === name.length) return false;
  return (token === '*' || token === name[ni]) && matchPattern(pattern, pi + 1, name, ni + 1);
}

function matches(rule: CompiledRule, name: readonly string[]): boolean {
  if (!rule.isPrefix) return matchPattern(rule.tokens, 0, name, 0);
  if (rule.tokens.length > name.length) return false;
  return rule.tokens.every((token, index) => token === name[index]);
}

/**
 * The `address` entity that applies to an address name: the most specific match, or undefined.
 * @param name the address, without an `amqp:/` scheme (see normalizeAddress in router/core/addresses.ts).
 */
export function findAddressEntity(addresses: readonly BrokerAddress[], name: string): BrokerAddress | undefined {
  const tokens = name.split(/[./]/);
  let best: BrokerAddress | undefined;
  let bestWeight = -1;
  for (const address of addresses) {
    const rule = compile(address);
    if (rule.weight > bestWeight && matches(rule, tokens)) {
      best = address;
      bestWeight = rule.weight;
    }
  }
  return best;
}

/**
 * The settings for a new queue or topic: those of the most specific matching `address` entity,
 * or {@link DEFAULT_ADDRESS_SETTINGS} when none matches. Returns a new object each call.
 * @param name the address, without an `amqp:/` scheme.
 */
export function matchAddress(addresses: readonly BrokerAddress[], name: string): BrokerAddressSettings {
  const found = findAddressEntity(addresses, name) ?? DEFAULT_ADDRESS_SETTINGS;
  return {
    routingType: found.routingType,
    maxDeliveryAttempts: found.maxDeliveryAttempts,
    ...(found.deadLetterAddress !== undefined ? { deadLetterAddress: found.deadLetterAddress } : {}),
    ...(found.expiryAddress !== undefined ? { expiryAddress: found.expiryAddress } : {}),
    maxSizeBytes: found.maxSizeBytes,
    addressFullPolicy: found.addressFullPolicy,
    autoCreate: found.autoCreate,
  };
}
