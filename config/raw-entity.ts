/**
 * The syntax-neutral form every config format is parsed into before schema validation.
 *
 * The conf, YAML and JSON parsers only know about sections and `key: value` pairs; all knowledge
 * of entity types, attribute types and defaults lives in the schema and the validator, so the
 * three formats cannot drift apart.
 */

/** A value as written in a config file, before schema conversion. */
export type RawValue = string | number | boolean | null | RawValue[] | { [key: string]: RawValue };

/** One `key: value` inside an entity, as written. */
export interface RawAttribute {
  /** The key as written (not yet camelCased), e.g. `max-frame-size`. */
  readonly name: string;
  readonly value: RawValue;
  /** 1-based line of the key. */
  readonly line: number;
}

/** One entity (a conf section, or a YAML/JSON entry), as written. */
export interface RawEntity {
  /** The entity type as written (not yet camelCased), e.g. `listener` or `ssl-profile`. */
  readonly type: string;
  /** 1-based line where the entity starts. */
  readonly line: number;
  readonly attributes: readonly RawAttribute[];
  /** The file it was read from, when not the configuration's own (a vhost of qdrouterd's policyDir). */
  readonly file?: string;
}

/**
 * qdrouterd's name normalisation: words separated by space, `_`, `-` or `.` are joined in
 * camelCase, so `max-frame-size`, `max_frame_size` and `maxFrameSize` are the same attribute.
 * Like qdrouterd (Python's `str.capitalize`), every word after the first is lower-cased apart
 * from its first letter, so `max-frameSize` becomes `maxFramesize`; keeping that quirk means a
 * name accepted here is accepted by qdrouterd too.
 */
export function qdrouterdCamelCase(name: string): string {
  const [first = '', ...rest] = name.split(/[ _.-]/);
  return first + rest.map((word) => word.charAt(0).toUpperCase() + word.slice(1).toLowerCase()).join('');
}

/** Size of a value as the attribute-size limit counts it: UTF-8 bytes of strings, JSON otherwise. */
export function rawValueBytes(value: RawValue): number {
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}
