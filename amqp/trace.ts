/**
 * Frames as text, the way Proton traces them (qdrouterd's PROTOCOL trace, PN_TRACE_FRM):
 * `@close(24) [error=@error(29) [condition=:"amqp:connection:forced", description="..."]]`.
 * Read straight from the encoding (so symbols, strings and integer widths show as sent); only
 * used when an operator enables protocol tracing, never on the forwarding path otherwise.
 */

/** Field names of the described lists the spec defines, by descriptor code. */
const DESCRIBED: { readonly [code: number]: readonly [string, readonly string[]] } = {
  0x10: ['open', ['container-id', 'hostname', 'max-frame-size', 'channel-max', 'idle-time-out', 'outgoing-locales', 'incoming-locales', 'offered-capabilities', 'desired-capabilities', 'properties']],
  0x11: ['begin', ['remote-channel', 'next-outgoing-id', 'incoming-window', 'outgoing-window', 'handle-max', 'offered-capabilities', 'desired-capabilities', 'properties']],
  0x12: ['attach', ['name', 'handle', 'role', 'snd-settle-mode', 'rcv-settle-mode', 'source', 'target', 'unsettled', 'incomplete-unsettled', 'initial-delivery-count', 'max-message-size', 'offered-capabilities', 'desired-capabilities', 'properties']],
  0x13: ['flow', ['next-incoming-id', 'incoming-window', 'next-outgoing-id', 'outgoing-window', 'handle', 'delivery-count', 'link-credit', 'available', 'drain', 'echo', 'properties']],
  0x14: ['transfer', ['handle', 'delivery-id', 'delivery-tag', 'message-format', 'settled', 'more', 'rcv-settle-mode', 'state', 'resume', 'aborted', 'batchable']],
  0x15: ['disposition', ['role', 'first', 'last', 'settled', 'state', 'batchable']],
  0x16: ['detach', ['handle', 'closed', 'error']],
  0x17: ['end', ['error']],
  0x18: ['close', ['error']],
  0x1d: ['error', ['condition', 'description', 'info']],
  0x23: ['received', ['section-number', 'section-offset']],
  0x24: ['accepted', []],
  0x25: ['rejected', ['error']],
  0x26: ['released', []],
  0x27: ['modified', ['delivery-failed', 'undeliverable-here', 'message-annotations']],
  0x28: ['source', ['address', 'durable', 'expiry-policy', 'timeout', 'dynamic', 'dynamic-node-properties', 'distribution-mode', 'filter', 'default-outcome', 'outcomes', 'capabilities']],
  0x29: ['target', ['address', 'durable', 'expiry-policy', 'timeout', 'dynamic', 'dynamic-node-properties', 'capabilities']],
  0x30: ['coordinator', ['capabilities']],
  0x31: ['declare', ['global-id']],
  0x32: ['discharge', ['txn-id', 'fail']],
  0x33: ['declared', ['txn-id']],
  0x34: ['transactional-state', ['txn-id', 'outcome']],
  0x40: ['sasl-mechanisms', ['sasl-server-mechanisms']],
  0x41: ['sasl-init', ['mechanism', 'initial-response', 'hostname']],
  0x42: ['sasl-challenge', ['challenge']],
  0x43: ['sasl-response', ['response']],
  0x44: ['sasl-outcome', ['code', 'additional-data']],
};

/** Bytes of a binary or string shown at most; the rest is counted. */
const MAX_SHOWN = 64;
/** Deepest nesting described (a malformed or hostile value cannot recurse without bound). */
const MAX_DEPTH = 32;

class Cursor {
  constructor(readonly buf: Buffer, public off: number, readonly end: number) {}
  need(n: number): void {
    if (this.off + n > this.end) throw new RangeError('truncated');
  }
  u8(): number {
    this.need(1);
    return this.buf[this.off++];
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }
}

function escapeBytes(b: Buffer): string {
  let s = '';
  for (const c of b.subarray(0, MAX_SHOWN)) s += c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return b.length > MAX_SHOWN ? `${s}...(${b.length} bytes)` : s;
}

function symbolText(s: string): string {
  return /^[A-Za-z0-9_.-]+$/.test(s) ? `:${s}` : `:${JSON.stringify(s)}`;
}

/** One value at the cursor as text; the cursor moves past it. */
function describe(c: Cursor, depth: number): string {
  return describeTyped(c, c.u8(), depth);
}

/** A value whose constructor `code` was read already (an array's elements share one). */
function describeTyped(c: Cursor, code: number, depth: number): string {
  if (depth > MAX_DEPTH) throw new RangeError('nested too deep');
  switch (code) {
    case 0x00: {
      const descStart = c.off;
      const d = describe(c, depth + 1);
      const b = c.buf;
      // A ulong descriptor (0x53 small or 0x80) names a spec type.
      const num = b[descStart] === 0x53 ? b[descStart + 1] : b[descStart] === 0x80 ? Number(b.readBigUInt64BE(descStart + 1)) : -1;
      const known = DESCRIBED[num];
      if (known === undefined) return `@${d} ${describe(c, depth + 1)}`;
      const [name, fields] = known;
      return `@${name}(${num}) ${describeFields(c, depth + 1, fields)}`;
    }
    case 0x40: return 'null';
    case 0x41: return 'true';
    case 0x42: return 'false';
    case 0x56: return c.u8() ? 'true' : 'false';
    case 0x50: return String(c.u8());
    case 0x51: return String((c.u8() << 24) >> 24);
    case 0x60: c.need(2); c.off += 2; return String(c.buf.readUInt16BE(c.off - 2));
    case 0x61: c.need(2); c.off += 2; return String(c.buf.readInt16BE(c.off - 2));
    case 0x43: case 0x44: return '0';
    case 0x52: case 0x53: return String(c.u8());
    case 0x54: return String((c.u8() << 24) >> 24);
    case 0x55: return String((c.u8() << 24) >> 24);
    case 0x70: return String(c.u32());
    case 0x71: c.need(4); c.off += 4; return String(c.buf.readInt32BE(c.off - 4));
    case 0x72: c.need(4); c.off += 4; return String(c.buf.readFloatBE(c.off - 4));
    case 0x73: c.need(4); c.off += 4; return `'${String.fromCodePoint(c.buf.readUInt32BE(c.off - 4))}'`;
    case 0x80: c.need(8); c.off += 8; return String(c.buf.readBigUInt64BE(c.off - 8));
    case 0x81: c.need(8); c.off += 8; return String(c.buf.readBigInt64BE(c.off - 8));
    case 0x82: c.need(8); c.off += 8; return String(c.buf.readDoubleBE(c.off - 8));
    case 0x83: c.need(8); c.off += 8; return String(c.buf.readBigInt64BE(c.off - 8));
    case 0x98: c.need(16); c.off += 16; return `UUID(${c.buf.subarray(c.off - 16, c.off).toString('hex')})`;
    case 0xa0: case 0xb0: case 0xa1: case 0xb1: case 0xa3: case 0xb3: {
      const n = code & 0x10 ? c.u32() : c.u8();
      c.need(n);
      const b = c.buf.subarray(c.off, c.off + n);
      c.off += n;
      if ((code & 0x0f) === 0) return `b"${escapeBytes(b)}"`;
      const s = b.length > MAX_SHOWN ? `${b.subarray(0, MAX_SHOWN).toString('utf8')}...(${b.length} bytes)` : b.toString('utf8');
      return (code & 0x0f) === 1 ? JSON.stringify(s) : symbolText(s);
    }
    case 0x45: return '[]';
    case 0xc0: case 0xd0: case 0xc1: case 0xd1: {
      const wide = code >= 0xd0;
      const size = wide ? c.u32() : c.u8();
      const count = wide ? c.u32() : c.u8();
      const end = c.off + size - (wide ? 4 : 1);
      if (end > c.end) throw new RangeError('truncated');
      const items: string[] = [];
      const isMap = (code & 0x0f) === 1;
      for (let i = 0; i < count; i += isMap ? 2 : 1) {
        if (isMap) items.push(`${describe(c, depth + 1)}=${describe(c, depth + 1)}`);
        else items.push(describe(c, depth + 1));
      }
      c.off = end;
      return isMap ? `{${items.join(', ')}}` : `[${items.join(', ')}]`;
    }
    case 0xe0: case 0xf0: {
      const wide = code === 0xf0;
      const size = wide ? c.u32() : c.u8();
      const count = wide ? c.u32() : c.u8();
      const end = c.off + size - (wide ? 4 : 1);
      if (end > c.end) throw new RangeError('truncated');
      let elementCode = c.u8();
      let descriptor = '';
      if (elementCode === 0x00) {
        descriptor = `@${describe(c, depth + 1)} `;
        elementCode = c.u8();
      }
      const items: string[] = [];
      for (let i = 0; i < count; i++) items.push(descriptor + describeTyped(c, elementCode, depth + 1));
      c.off = end;
      return `@[${items.join(', ')}]`;
    }
    default:
      throw new RangeError(`type 0x${code.toString(16)}`);
  }
}

/** A described list with its fields named, null fields left out (as Proton prints them). */
function describeFields(c: Cursor, depth: number, names: readonly string[]): string {
  const code = c.u8();
  if (code === 0x45) return '[]';
  if (code !== 0xc0 && code !== 0xd0) {
    c.off--;
    return describe(c, depth);
  }
  const wide = code === 0xd0;
  const size = wide ? c.u32() : c.u8();
  const count = wide ? c.u32() : c.u8();
  const end = c.off + size - (wide ? 4 : 1);
  if (end > c.end) throw new RangeError('truncated');
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    if (c.buf[c.off] === 0x40) {
      c.off++;
      continue;
    }
    parts.push(`${names[i] ?? String(i)}=${describe(c, depth)}`);
  }
  c.off = end;
  return `[${parts.join(', ')}]`;
}

/**
 * The body of one frame (from its performative on) as Proton shows it; a transfer's payload is
 * shown by its size. A body that cannot be read is shown as such, never thrown.
 */
export function describeFrameBody(buf: Buffer, start: number, end: number): string {
  if (start >= end) return '(empty frame)';
  const c = new Cursor(buf, start, end);
  try {
    const text = describe(c, 0);
    return c.off < end ? `${text} (${end - c.off} bytes of payload)` : text;
  } catch (e) {
    return `(unreadable frame: ${(e as Error).message})`;
  }
}

/**
 * The frames of a chunk the engine wrote, one line each (`channel -> text`), protocol headers as
 * `-> AMQP` or `-> SASL`; a frame cut off at the end of the chunk is noted.
 */
export function describeOutput(buf: Buffer): string[] {
  const lines: string[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0x41 && buf.toString('latin1', off, off + 4) === 'AMQP') {
      lines.push(buf[off + 4] === 3 ? '-> SASL' : '-> AMQP');
      off += 8;
      continue;
    }
    if (off + 8 > buf.length) break;
    const size = buf.readUInt32BE(off);
    const doff = buf[off + 4] * 4;
    const channel = buf.readUInt16BE(off + 6);
    if (size < 8 || off + size > buf.length) {
      lines.push(`-> (${buf.length - off} bytes of a frame)`);
      break;
    }
    lines.push(size === doff ? `${channel} -> (empty frame)` : `${channel} -> ${describeFrameBody(buf, off + doff, off + size)}`);
    off += size;
  }
  return lines;
}
