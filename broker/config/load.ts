/**
 * Entry points of the broker configuration: the shared ones (config/load.ts: syntax by file
 * extension as for the router, file-level limits, parsing) with the broker's validator.
 */

import { configEntryPoints, type SyntaxOption } from '../../config/load';
import type { BrokerConfig } from './types';
import { validateBrokerEntities, type BrokerValidationOptions } from './validate';

/** Options of {@link parseBrokerConfig} and {@link loadBrokerConfigFile}. */
export interface BrokerConfigOptions extends BrokerValidationOptions, SyntaxOption {}

/**
 * `parseBrokerConfig(text, file, options)` parses and validates broker configuration text; pure
 * apart from generating a random broker id when the text sets none (pass `generateBrokerId` for a
 * deterministic one) and resolving a relative dataDir against the directory of `file`.
 * `loadBrokerConfigFile(file, options)` reads the file first (synchronously: it runs once at
 * startup). Both throw {@link ConfigError}s whose message starts with `FILE:LINE: `.
 */
export const { parse: parseBrokerConfig, load: loadBrokerConfigFile } = configEntryPoints<BrokerConfig, BrokerConfigOptions>(validateBrokerEntities);
