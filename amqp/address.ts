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
