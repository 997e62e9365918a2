/**
 * Logging in qdrouterd's shape: `TIMESTAMP MODULE (level) text`, levels trace..critical, each
 * module enabled by a `log` entity's `enable` ("info+", "debug,warning", "none").
 */

export const LEVELS = ['trace', 'debug', 'info', 'notice', 'warning', 'error', 'critical'] as const;
export type Level = (typeof LEVELS)[number];

/** Parses an enable string into the set of enabled levels. */
export function parseEnable(enable: string): Set<Level> {
  const out = new Set<Level>();
  for (const part of enable.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (part === 'none') continue;
    const plus = part.endsWith('+');
    const name = (plus ? part.slice(0, -1) : part) as Level;
    const i = LEVELS.indexOf(name);
    if (i < 0) continue;
    if (plus) for (let k = i; k < LEVELS.length; k++) out.add(LEVELS[k]);
    else out.add(name);
  }
  return out;
}

/** A process-wide logger with per-module levels. */
export class Logger {
  private readonly modules = new Map<string, Set<Level>>();
  private defaults: Set<Level> = parseEnable('info+');

  constructor(private readonly write: (line: string) => void = (l) => process.stderr.write(l + '\n')) {}

  configure(module: string, enable: string): void {
    if (module === 'DEFAULT') this.defaults = parseEnable(enable);
    else this.modules.set(module, parseEnable(enable));
  }

  enabled(module: string, level: Level): boolean {
    return (this.modules.get(module) ?? this.defaults).has(level);
  }

  log(module: string, level: Level, text: string): void {
    if (!this.enabled(module, level)) return;
    const ts = new Date().toISOString().replace('T', ' ').replace('Z', '');
    this.write(`${ts} ${module} (${level}) ${text}`);
  }
}
