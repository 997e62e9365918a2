/**
 * The pager: an append-only spill file for message bodies the store does not hold (non-durable
 * messages, or every message of a non-persistent broker) once the page cache is full. Nothing in
 * it survives a restart, so it is never fsynced; it is truncated whenever nothing in it is live.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Pager } from '../store/types';

/** A pager on one file, created afresh (a leftover from an earlier process is discarded). */
export class FilePager implements Pager {
  private readonly fd: number;
  private end = 0;
  /** Bytes written since the last reset (for tests and logs). */
  written = 0;

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, 'w+');
  }

  write(payload: Buffer): number {
    const at = this.end;
    let off = 0;
    while (off < payload.length) off += fs.writeSync(this.fd, payload, off, payload.length - off, at + off);
    this.end += payload.length;
    this.written += payload.length;
    return at;
  }

  read(offset: number, length: number): Buffer {
    const b = Buffer.allocUnsafe(length);
    let off = 0;
    while (off < length) {
      const n = fs.readSync(this.fd, b, off, length - off, offset + off);
      if (n === 0) throw new Error(`pager ${this.file}: short read at ${offset + off}`);
      off += n;
    }
    return b;
  }

  reset(): void {
    fs.ftruncateSync(this.fd, 0);
    this.end = 0;
  }

  close(): void {
    fs.closeSync(this.fd);
    fs.rmSync(this.file, { force: true });
  }
}
