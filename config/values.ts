/**
 * Conversions of written attribute values that the router's and the broker's validators share:
 * strings, booleans, ports and integers as qdrouterd reads them, with the same refusal texts.
 */
import type { ConfigErrorCode } from './errors';
import { quote } from './errors';
import type { RawValue } from './raw-entity';

/** Refuses a value: throws a ConfigError naming the attribute's line. */
export type Fail = (code: ConfigErrorCode, reason: string) => never;

const BOOLEAN_WORDS: { readonly [word: string]: boolean } = { true: true, yes: true, on: true, false: false, no: false, off: false };
const AMQP_PORTS: { readonly [service: string]: number } = { amqp: 5672, amqps: 5671 };

/** How a value is named in a refusal. */
export function describeValue(value: RawValue): string {
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'a map';
  return quote(value);
}

/** A whole number from a number or from text such as "16384" or " -1 "; undefined if it is not one. */
export function toInteger(value: RawValue): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value !== 'string' || !/^[ \t]*[+-]?\d+[ \t]*$/.test(value)) return undefined;
  const integer = Number(value.trim());
  return Number.isSafeInteger(integer) ? integer : undefined;
}

/** A string; numbers (what YAML users write unquoted, `name: 1`) become their text, as qdrouterd's str(). */
export function convertString(value: RawValue, label: string, fail: Fail): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${describeValue(value)} is not a string${typeof value === 'boolean' ? `; quote it: "${value}"` : ''}`);
}

/** true/false, or yes/no, on/off in any case. */
export function convertBoolean(value: RawValue, label: string, fail: Fail): boolean {
  if (typeof value === 'boolean') return value;
  const word = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  if (word !== undefined && Object.prototype.hasOwnProperty.call(BOOLEAN_WORDS, word)) return BOOLEAN_WORDS[word]!;
  return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${describeValue(value)} is not a boolean; expected true or false (or yes/no, on/off)`);
}

/** 0..65535, or the service names amqp (5672) and amqps (5671). */
export function convertPort(value: RawValue, label: string, fail: Fail): number {
  const portHelp = 'expected a number from 0 to 65535, "amqp" (5672) or "amqps" (5671)';
  const service = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  if (service !== undefined && Object.prototype.hasOwnProperty.call(AMQP_PORTS, service)) return AMQP_PORTS[service]!;
  const port = toInteger(value);
  if (port === undefined) return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${describeValue(value)} is not a port; ${portHelp}`);
  if (port < 0 || port > 65535) return fail('ERR_CONFIG_INVALID_VALUE', `${label} ${describeValue(value)} is out of range; ${portHelp}`);
  return port;
}
