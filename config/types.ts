/**
 * What every typed entity of the router's and the broker's configurations carries.
 */

/** A converted attribute value; null only occurs inside maps (an attribute set to null is unset). */
export type ConfigValue = string | number | boolean | null | ConfigValue[] | { [key: string]: ConfigValue };

/** Where an entity came from. */
export interface EntitySource {
  readonly file: string;
  /** 1-based line where the entity starts; 0 for an entity created from defaults (no section in the file). */
  readonly line: number;
  /** 1-based line of each attribute the file sets, by attribute name (current name, even if a deprecated one was written). */
  readonly attributeLines: { readonly [attributeName: string]: number };
}

/** What every typed entity of qdrouterd's kinds carries. */
export interface EntityCommon {
  /** The user-assigned name (unique across all entities), if any. */
  name?: string;
  /** Attributes the file sets that amqp-mesh accepts but does not act on yet, by name. */
  unimplemented: { [attributeName: string]: ConfigValue };
  source: EntitySource;
}
