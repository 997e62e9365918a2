/**
 * Logging in qdrouterd's shape: `TIMESTAMP MODULE (level) text`, levels trace..critical, each
 * module enabled by a `log` entity's `enable` ("info+", "debug,warning", "none").
 */

import * as fs from 'node:fs';

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

/** Where and how one module's lines go. */
export interface LogOutput {
  write: (line: string) => void;
  includeTimestamp: boolean;
}

/** Files opened for logging, by path: a reconfiguration naming the same file reuses its descriptor. */
const openLogFiles = new Map<string, (line: string) => void>();

/** Opens a qdrouterd `outputFile`: stderr, stdout, or a file appended to. */
export function openLogOutput(outputFile: string | undefined): (line: string) => void {
  if (outputFile === undefined || outputFile === 'stderr') return (l) => process.stderr.write(l + '\n');
  if (outputFile === 'stdout') return (l) => process.stdout.write(l + '\n');
  if (outputFile === 'syslog') return (l) => process.stderr.write(l + '\n');
  const open = openLogFiles.get(outputFile);
  if (open !== undefined) return open;
  // Synchronous appends: log lines are rare on the data path and must survive a crash.
  const fd = fs.openSync(outputFile, 'a');
  const write = (l: string): void => void fs.writeSync(fd, l + '\n');
  openLogFiles.set(outputFile, write);
  return write;
}

/** A process-wide logger with per-module levels and outputs. */
/** One logged line as management's GET-LOG shows it. */
export interface LogEntry {
  module: string;
  level: Level;
  text: string;
  /** Seconds since the epoch. */
  time: number;
}

/** How many recent lines a logger keeps. */
export const RECENT_LINES = 100;

export class Logger {
  private readonly modules = new Map<string, Set<Level>>();
  private defaults: Set<Level> = parseEnable('info+');
  private readonly outputs = new Map<string, LogOutput>();
  private defaultOutput: LogOutput;

  constructor(private readonly baseWrite: (line: string) => void = (l) => process.stderr.write(l + '\n')) {
    this.defaultOutput = { write: baseWrite, includeTimestamp: true };
  }

  /** Back to the defaults (info+ everywhere, one output): before a new configuration is applied. */
  reset(): void {
    this.modules.clear();
    this.outputs.clear();
    this.defaults = parseEnable('info+');
    this.defaultOutput = { write: this.baseWrite, includeTimestamp: true };
  }

  configure(module: string, enable: string | null, output?: Partial<LogOutput>): void {
    if (enable !== null) {
      if (module === 'DEFAULT') this.defaults = parseEnable(enable);
      else this.modules.set(module, parseEnable(enable));
    }
    if (output && (output.write || output.includeTimestamp !== undefined)) {
      const base = module === 'DEFAULT' ? this.defaultOutput : this.outputs.get(module) ?? this.defaultOutput;
      const merged: LogOutput = {
        write: output.write ?? base.write,
        includeTimestamp: output.includeTimestamp ?? base.includeTimestamp,
      };
      if (module === 'DEFAULT') this.defaultOutput = merged;
      else this.outputs.set(module, merged);
    }
  }

  enabled(module: string, level: Level): boolean {
    return (this.modules.get(module) ?? this.defaults).has(level);
  }

  /** The most recent lines logged (management's GET-LOG), oldest first, at most {@link RECENT_LINES}. */
  private readonly recentLines: LogEntry[] = [];

  /** The last `limit` lines logged (all kept when `limit` is negative), oldest first. */
  recent(limit = -1): LogEntry[] {
    return limit < 0 ? this.recentLines.slice() : this.recentLines.slice(Math.max(0, this.recentLines.length - limit));
  }

  /** Lines logged so far by module and level (management's logStats). */
  private readonly counts = new Map<string, Record<string, number>>();

  /** How many lines `module` has logged, by level. */
  countsOf(module: string): Readonly<Record<string, number>> {
    return this.counts.get(module) ?? {};
  }

  log(module: string, level: Level, text: string): void {
    if (!this.enabled(module, level)) return;
    let c = this.counts.get(module);
    if (c === undefined) this.counts.set(module, (c = {}));
    c[level] = (c[level] ?? 0) + 1;
    if (this.recentLines.length >= RECENT_LINES) this.recentLines.shift();
    this.recentLines.push({ module, level, text, time: Date.now() / 1000 });
    const out = this.outputs.get(module) ?? this.defaultOutput;
    if (out.includeTimestamp) {
      const ts = new Date().toISOString().replace('T', ' ').replace('Z', '');
      out.write(`${ts} ${module} (${level}) ${text}`);
    } else out.write(`${module} (${level}) ${text}`);
  }
}
