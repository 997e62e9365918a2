/**
 * What the builders of one configuration file share while it is read, in the router and the
 * broker alike: the file, the warnings so far, what must be unique across entities, and the
 * sslProfile references to resolve once every entity is read.
 */

import { readSystemTlsPolicy, type SystemTlsPolicy } from '../amqp/transport/tls-policy';
import { configWarning, type ConfigWarning, type ConfigWarningCode } from './errors';
import { TransportLinker } from './transport';

export interface BuildContext {
  readonly file: string;
  /** Everything accepted with a remark so far. */
  readonly warnings: ConfigWarning[];
  /** The matches of the address entities read so far, to refuse two entities for the same addresses. */
  readonly addressMatches: Map<string, { line: number; description: string }>;
  /** First line of each log module configured so far. */
  readonly logModules: Map<string, number>;
  /** sslProfiles read so far, and the listeners and connectors that refer to them. */
  readonly transports: TransportLinker;
  /** The system's OpenSSL policy for TLS versions (profiles without `protocols`), read once per file, when first asked. */
  systemTlsPolicy(): SystemTlsPolicy | null;
}

export function buildContext(file: string): BuildContext {
  const warnings: ConfigWarning[] = [];
  let policy: SystemTlsPolicy | null | undefined;
  return {
    file, warnings, addressMatches: new Map(), logModules: new Map(), transports: new TransportLinker(file, warnings),
    systemTlsPolicy: () => (policy === undefined ? (policy = readSystemTlsPolicy()) : policy),
  };
}

/** Accepts with a remark, at `line`. */
export function warn(context: Pick<BuildContext, 'file' | 'warnings'>, code: ConfigWarningCode, line: number, reason: string): void {
  context.warnings.push(configWarning(code, context.file, line, reason));
}
