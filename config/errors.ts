/**
 * Errors and warnings produced while loading a router or broker configuration.
 *
 * Every problem names the file and, when it can be pinned to one, the line, so that an operator
 * can go straight to it: `router.conf:12: listener has no attribute "prot"; valid attributes: ...`.
 */

/** Why a configuration was refused. */
export type ConfigErrorCode =
  /** The file could not be read (missing, unreadable, a directory...). */
  | 'ERR_CONFIG_READ'
  /** The file is not valid UTF-8. */
  | 'ERR_CONFIG_ENCODING'
  /** The text does not follow the syntax of its format (conf, YAML or JSON). */
  | 'ERR_CONFIG_SYNTAX'
  /** An entity type that qdrouterd's schema does not define, or one that cannot be configured. */
  | 'ERR_CONFIG_UNKNOWN_ENTITY'
  /** An attribute that the entity's schema does not define. */
  | 'ERR_CONFIG_UNKNOWN_ATTRIBUTE'
  /** A value of the wrong type, out of range, or not one of an enumeration's values. */
  | 'ERR_CONFIG_INVALID_VALUE'
  /** A required attribute is not set. */
  | 'ERR_CONFIG_MISSING_ATTRIBUTE'
  /** Attributes that cannot be used together. */
  | 'ERR_CONFIG_CONFLICT'
  /** Something set twice that must be set once: an attribute, a singleton, a unique name. */
  | 'ERR_CONFIG_DUPLICATE'
  /** A value qdrouterd accepts but amqp-mesh does not implement yet and cannot safely ignore. */
  | 'ERR_CONFIG_NOT_SUPPORTED'
  /**
   * A file the configuration names (an sslProfile's certificate, key, CA certificates or
   * password file) cannot be read, or does not hold what it should (PEM certificates, a key).
   */
  | 'ERR_CONFIG_REFERENCED_FILE'
  /** The file is larger than {@link MAX_CONFIG_FILE_BYTES}. */
  | 'ERR_CONFIG_TOO_LARGE'
  /** The file defines more than {@link MAX_CONFIG_ENTITIES} entities. */
  | 'ERR_CONFIG_TOO_MANY_ENTITIES'
  /** An attribute value is larger than {@link MAX_ATTRIBUTE_VALUE_BYTES}. */
  | 'ERR_CONFIG_VALUE_TOO_LARGE';

/** Why a configuration was accepted with a warning. */
export type ConfigWarningCode =
  /** A whole entity type that amqp-mesh accepts but does not act on yet. */
  | 'WARN_CONFIG_ENTITY_NOT_IMPLEMENTED'
  /** An attribute that amqp-mesh accepts but does not act on yet. */
  | 'WARN_CONFIG_ATTRIBUTE_NOT_IMPLEMENTED'
  /** A deprecated entity type, attribute or attribute name. */
  | 'WARN_CONFIG_DEPRECATED'
  /** A status attribute (statistics and the like) written in a config file; its value is ignored. */
  | 'WARN_CONFIG_READ_ONLY'
  /** An enumeration given by its numeric index, which qdrouterd accepts. */
  | 'WARN_CONFIG_ENUM_INDEX'
  /**
   * A setting that has no effect where it is written, in qdrouterd as in amqp-mesh: a `cost` on
   * a listener or connector whose role is not inter-router, a router protocol interval in
   * standalone mode, an autoLink with neither connection nor containerId, a linkRoute or autoLink
   * whose connection is not a route-container.
   */
  | 'WARN_CONFIG_NO_EFFECT'
  /**
   * A setting that works but is unsafe: a password written in clear text in the file (qdrouterd
   * warns too); an sslProfile whose versions, from the system's OpenSSL policy, include TLS 1.0 or 1.1.
   */
  | 'WARN_CONFIG_INSECURE'
  /**
   * Not a warning but an info (logged at info, see {@link configWarningLevel}): a linkRoute or
   * autoLink names a connection no connector or listener of this file has. Accepted, as
   * qdrouterd does: it stays inactive until a connection of that name exists (a template shared
   * by the routers of a mesh, a connector added later).
   */
  | 'INFO_CONFIG_CONNECTION_NOT_DEFINED';

/** Largest configuration file accepted, in bytes (4 MiB). */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;
/** Most entities (sections) a configuration file may define. */
export const MAX_CONFIG_ENTITIES = 10_000;
/** Largest single attribute value accepted, in bytes of UTF-8 (64 KiB); maps are measured as JSON. */
export const MAX_ATTRIBUTE_VALUE_BYTES = 64 * 1024;
/** Deepest nesting of maps and lists inside one attribute value or YAML/JSON document. */
export const MAX_VALUE_NESTING_DEPTH = 32;

/** A configuration that cannot be used. The message starts with `file:line: `. */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  /** The configuration file name, as given by the caller. */
  readonly file: string;
  /** 1-based line of the problem, or undefined when it concerns the whole file. */
  readonly line: number | undefined;
  /** The message without the `file:line: ` prefix. */
  readonly reason: string;

  constructor(
    code: ConfigErrorCode,
    file: string,
    line: number | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${formatLocation(file, line)}: ${reason}`, options);
    this.name = 'ConfigError';
    this.code = code;
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/** A configuration accepted with a remark the operator should see (typically logged at startup). */
export interface ConfigWarning {
  readonly code: ConfigWarningCode;
  readonly file: string;
  /** 1-based line the warning is about. */
  readonly line: number;
  /** Full text, starting with `file:line: ` like {@link ConfigError} messages. */
  readonly message: string;
}

/** `file:line`, or just `file` when there is no line (0 or undefined). */
export function formatLocation(file: string, line: number | undefined): string {
  return line === undefined || line <= 0 ? file : `${file}:${line}`;
}

/** The log level a remark is logged at: `info` for the INFO_ codes, else `warning`. */
export function configWarningLevel(w: Pick<ConfigWarning, 'code'>): 'info' | 'warning' {
  return w.code.startsWith('INFO_') ? 'info' : 'warning';
}

/** Builds a {@link ConfigWarning} with the same message layout as {@link ConfigError}. */
export function configWarning(code: ConfigWarningCode, file: string, line: number, reason: string): ConfigWarning {
  return { code, file, line, message: `${formatLocation(file, line)}: ${reason}` };
}

/** Quotes a value for a message the way JSON would, so empty strings and spaces stay visible. */
export function quote(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? value.slice(0, 77) + '...' : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 80 ? json.slice(0, 77) + '...' : json;
}
