/**
 * Which `address` entity applies to an address name, with the router's matching rules
 * (amqp/address.ts): names are tokens split on '.' or '/'; a prefix matches the
 * address itself and anything below it, at token boundaries (`orders` matches `orders` and
 * `orders.eu`, not `ordersX`); in a pattern `*` is one token and `#` zero or more. The most
 * specific match wins: each literal token counts 2, a prefix 1 more than a pattern of the same
 * literal tokens; between equals, the first in the file. The winner's settings apply whole;
 * nothing is merged from less specific matches.
 */

import { addressTokens, compileAddressMatcher, matchesTokens, type AddressMatcher } from '../../amqp/address';
import type { BrokerAddress, BrokerAddressSettings } from './types';

/** The settings of an address no `address` entity matches: every attribute's default. */
export const DEFAULT_ADDRESS_SETTINGS: Readonly<BrokerAddressSettings> = Object.freeze({
  routingType: 'anycast',
  maxDeliveryAttempts: 10,
  maxSizeBytes: -1,
  addressFullPolicy: 'BLOCK',
  autoCreate: true,
});

/** Compiled once per address entity (the broker calls matchAddress per new queue or topic). */
const compiled = new WeakMap<BrokerAddress, AddressMatcher>();

function compile(address: BrokerAddress): AddressMatcher {
  let m = compiled.get(address);
  if (m === undefined) {
    m = compileAddressMatcher(address);
    compiled.set(address, m);
  }
  return m;
}

/**
 * The `address` entity that applies to an address name: the most specific match, or undefined.
 * @param name the address, without an `amqp:/` scheme (see normalizeAddress in router/core/addresses.ts).
 */
export function findAddressEntity(addresses: readonly BrokerAddress[], name: string): BrokerAddress | undefined {
  const tokens = addressTokens(name);
  let best: BrokerAddress | undefined;
  let bestWeight = -1;
  for (const address of addresses) {
    const rule = compile(address);
    if (rule.weight > bestWeight && matchesTokens(rule, tokens)) {
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
