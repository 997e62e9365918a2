/**
 * qdrouterd's log `enable` strings: levels separated by commas (qdrouterd also splits on spaces,
 * `;` and `:`), each optionally followed by `+` for "this level and every more severe one";
 * or `none`; or `default` (as the DEFAULT module). Examples: `info+`, `trace,debug,warning+`.
 */

import type { LogLevel } from './types';

/** Log levels, least severe first. */
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'notice', 'warning', 'error', 'critical'];

/** How an invalid enable string is explained; part of the error message. */
export const LOG_ENABLE_HELP =
  `levels from ${LOG_LEVELS.join(', ')} separated by commas, each optionally followed by "+" ` +
  `for that level and above (e.g. "info+" or "trace,debug,warning+"), or "none", or "default"`;

/**
 * Parses an enable string. Level names are case-insensitive, as in qdrouterd; unlike qdrouterd,
 * which matches any prefix of a level name ("d" is "default"), names must be complete.
 * @returns the enabled levels (least severe first), `'default'`, or undefined if the string is invalid.
 */
export function parseLogEnable(enable: string): LogLevel[] | 'default' | undefined {
  const tokens = enable
    .toLowerCase()
    .split(/[,;: \t]+/)
    .filter((token) => token !== '');
  if (tokens.length === 0) return undefined;
  if (tokens.length === 1 && tokens[0] === 'default') return 'default';
  if (tokens.length === 1 && tokens[0] === 'none') return [];
  const enabled = new Set<LogLevel>();
  for (const token of tokens) {
    const andAbove = token.endsWith('+');
    const index = LOG_LEVELS.indexOf((andAbove ? token.slice(0, -1) : token) as LogLevel);
    if (index === -1) return undefined;
    for (const level of andAbove ? LOG_LEVELS.slice(index) : [LOG_LEVELS[index]!]) enabled.add(level);
  }
  return LOG_LEVELS.filter((level) => enabled.has(level));
}
