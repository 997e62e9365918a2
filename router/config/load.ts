/**
 * Entry points of the router's configuration: the shared ones (config/load.ts: syntax by file
 * name, file-level limits, parsing) with the router's validator.
 */

import { configEntryPoints, type SyntaxOption } from '../../config/load';
import type { RouterConfig } from './types';
import { validateEntities, type ValidationOptions } from './validate';

export { detectConfigSyntax, parseConfigEntities, type ConfigSyntax } from '../../config/load';

/** Options of {@link parseConfig} and {@link loadConfigFile}. */
export interface ConfigOptions extends ValidationOptions, SyntaxOption {}

/**
 * `parseConfig(text, fileName, options)` parses and validates configuration text; pure apart from
 * generating a random router id when the text sets none (pass `generateRouterId` for a
 * deterministic one). `loadConfigFile(filePath, options)` reads the file first (synchronously: it
 * runs once at startup). Both throw {@link ConfigError}s whose message starts with `FILE:LINE: `.
 */
export const { parse: parseConfig, load: loadConfigFile } = configEntryPoints<RouterConfig, ConfigOptions>(validateEntities);
