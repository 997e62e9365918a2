/**
 * qdrouterd's log `enable` strings: levels separated by commas (qdrouterd also splits on spaces,
 * `;` and `:`), each optionally followed by `+` for "this level and every more severe one";
 * or `none`; or `default` (as the DEFAULT module). Examples: `info+`, `trace,debug,warning+`.
 */

import type { LogLevel } from './log';

/** Log levels, least severe first. */
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'notice', 'warning', 'error', 'critical'];

/** How an invalid enable string is explained; part of the error message. */
export const LOG_ENABLE_HELP =
  `levels from ${LOG_LEVELS.join(', ')} (or unambiguous abbreviations) separated by commas, each optionally ` +
  `followed by "+" for that level and above (e.g. "info+" or "trace,debug,warning+"), or "none", or "default"`;

/** Every word qdrouterd accepts in an enable string, in the order it tries them. */
const ENABLE_WORDS = ['default', 'none', ...LOG_LEVELS] as const;

/**
 * Parses an enable string. Words are case-insensitive and, as in qdrouterd, may be abbreviated
 * ("warn+" is "warning+"); qdrouterd resolves an ambiguous abbreviation ("d": default or debug?)
 * by taking the first word in its list, this parser refuses it. "default" and "none" must stand
 * alone: qdrouterd's result for them inside a list is not meaningful. An empty string enables
 * nothing, as in qdrouterd (its own management tests set `enable: ""` to silence a module).
 * @returns the enabled levels (least severe first), `'default'`, or undefined if the string is invalid.
 */
export function parseLogEnable(enable: string): LogLevel[] | 'default' | undefined {
  if (enable.trim() === '') return [];
  const tokens = enable.split(/[,;: \t]+/).filter((token) => token !== '');
  if (tokens.length === 0) return undefined;
  const words: Array<{ word: (typeof ENABLE_WORDS)[number]; andAbove: boolean }> = [];
  for (const token of tokens) {
    const andAbove = token.endsWith('+');
    const written = (andAbove ? token.slice(0, -1) : token).toLowerCase();
    const candidates = ENABLE_WORDS.filter((word) => word.startsWith(written));
    const word = ENABLE_WORDS.find((exact) => exact === written) ?? (candidates.length === 1 ? candidates[0] : undefined);
    if (written === '' || word === undefined) return undefined;
    words.push({ word, andAbove });
  }
  const [first] = words;
  if (first !== undefined && (first.word === 'default' || first.word === 'none')) {
    if (words.length !== 1 || first.andAbove) return undefined;
    return first.word === 'default' ? 'default' : [];
  }
  const enabled = new Set<LogLevel>();
  for (const { word, andAbove } of words) {
    const index = LOG_LEVELS.indexOf(word as LogLevel);
    if (index === -1) return undefined;
    for (const level of andAbove ? LOG_LEVELS.slice(index) : [LOG_LEVELS[index]!]) enabled.add(level);
  }
  return LOG_LEVELS.filter((level) => enabled.has(level));
}
