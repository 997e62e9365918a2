/**
 * JMS message selectors (JMS 1.1 section 3.8.1.1, the SQL-92 subset that ActiveMQ and Artemis accept
 * as the `apache.org:selector-filter:string` filter).
 *
 * A selector is tokenized and parsed once by recursive descent into a small AST, checked for the
 * type errors that can be seen without a message, and compiled into closures; `matches` then runs
 * those closures against a lookup function and never throws (except for what `lookup` throws).
 *
 * Evaluation uses SQL three-valued logic: UNKNOWN is represented as `null`, a missing property and a
 * comparison of mismatched types are UNKNOWN, and a message is selected only when the whole selector
 * evaluates to TRUE.
 *
 * Numbers: exact values are kept as bigint (integer literals, bigint properties, and integral
 * `number` properties when they take part in arithmetic) and approximate values as number (literals
 * with a point or an exponent, non-integral properties). Comparisons are by mathematical value across
 * the two, so 2^53 (number) <> 9007199254740993 (bigint). Exact arithmetic is arbitrary precision and
 * exact division truncates toward zero as Java's long division does; dividing an exact value by zero
 * is UNKNOWN, while approximate division follows IEEE 754 as Java's double division does.
 */

/** Selectors longer than this (in UTF-16 code units) are refused. */
export const MAX_SELECTOR_LENGTH = 4096;
/** Parentheses, NOT and unary signs together may nest this deep; deeper is refused. */
export const MAX_SELECTOR_DEPTH = 64;
/** The most string literals an IN (...) list may hold. */
export const MAX_IN_LIST_ITEMS = 1024;

/** Thrown for a selector that does not parse; message names the 1-based column and what was expected. */
export class SelectorError extends Error {
  readonly code = 'ERR_SELECTOR_SYNTAX';
  /**
   * @param message full message, normally "selector syntax error at column N: ..."
   * @param column 1-based column (UTF-16 code unit offset + 1) where the problem was seen
   */
  constructor(message: string, readonly column: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SelectorError';
  }
}

/** A value a selector can see. `null` and `undefined` both mean "not present". */
export type SelectorValue = string | number | bigint | boolean | null | undefined;

/** Resolves an identifier to a value (undefined/null = not present). */
export type Lookup = (identifier: string) => SelectorValue;

/** A compiled selector; reusable and safe to share, it holds no per-message state. */
export interface Selector {
  /** The selector text as given to compileSelector. */
  readonly text: string;
  /** True when the selector evaluates to TRUE for the message `lookup` describes (FALSE and UNKNOWN are both false). */
  matches(lookup: Lookup): boolean;
}

/**
 * Compiles a JMS message selector.
 *
 * Per JMS, a selector that is empty or only whitespace means "no selector" and matches every message.
 *
 * @throws SelectorError when the text does not parse, is longer than MAX_SELECTOR_LENGTH, nests
 *   deeper than MAX_SELECTOR_DEPTH, has an IN list longer than MAX_IN_LIST_ITEMS, or is not a boolean
 *   expression (for example `a + 1` or `'x' AND b`).
 */
export function compileSelector(text: string): Selector {
  if (typeof text !== 'string') throw new TypeError(`selector must be a string, got ${typeof text}`);
  if (text.length > MAX_SELECTOR_LENGTH) {
    throw syntaxError(MAX_SELECTOR_LENGTH + 1, `selector is ${text.length} characters long, more than the ${MAX_SELECTOR_LENGTH} allowed`);
  }
  let evaluate: Ev;
  if (text.trim() === '') {
    evaluate = () => true;
  } else {
    const tokens = tokenize(text);
    evaluate = compile(new Parser(tokens).parseSelector());
  }
  return Object.freeze({
    text,
    matches(lookup: Lookup): boolean {
      return evaluate(lookup) === true;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Errors

function syntaxError(column: number, what: string): SelectorError {
  return new SelectorError(`selector syntax error at column ${column}: ${what}`, column);
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

type TokenType = 'num' | 'str' | 'id' | 'kw' | 'op' | 'eof';

interface Token {
  readonly type: TokenType;
  /** Source text; for 'kw' the upper-cased keyword, for 'str' the unescaped value. */
  readonly text: string;
  readonly value?: number | bigint;
  readonly col: number;
}

const KEYWORDS = new Set(['NULL', 'TRUE', 'FALSE', 'NOT', 'AND', 'OR', 'BETWEEN', 'LIKE', 'IN', 'IS', 'ESCAPE']);

// Java's isJavaIdentifierStart/Part, less the "ignorable" control characters nobody means to type.
const IDENT_START = /[\p{L}\p{Nl}\p{Sc}\p{Pc}]/u;
const IDENT_PART = /[\p{L}\p{Nl}\p{Sc}\p{Pc}\p{Nd}\p{Mn}\p{Mc}]/u;

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

function isHexDigit(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}

function isIdentStart(cp: number): boolean {
  if (cp < 128) return (cp >= 65 && cp <= 90) || (cp >= 97 && cp <= 122) || cp === 36 || cp === 95;
  return IDENT_START.test(String.fromCodePoint(cp));
}

function isIdentPart(cp: number | undefined): boolean {
  if (cp === undefined) return false;
  if (cp < 128) return isIdentStart(cp) || (cp >= 48 && cp <= 57);
  return IDENT_PART.test(String.fromCodePoint(cp));
}

const TWO_CHAR_OPS = new Set(['<>', '<=', '>=']);
const ONE_CHAR_OPS = new Set(['=', '<', '>', '+', '-', '*', '/', '(', ')', ',']);

function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    const col = i + 1;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') {
      i++;
      continue;
    }
    // ActiveMQ's grammar skips SQL comments, so selectors written for it may carry them.
    if (c === '-' && s[i + 1] === '-') {
      while (i < s.length && s[i] !== '\n' && s[i] !== '\r') i++;
      continue;
    }
    if (c === '/' && s[i + 1] === '*') {
      const end = s.indexOf('*/', i + 2);
      if (end < 0) throw syntaxError(col, 'unterminated comment, expected */');
      i = end + 2;
      continue;
    }
    if (c === "'") {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = s.indexOf("'", j);
        if (q < 0) throw syntaxError(col, "unterminated string literal, expected closing '");
        value += s.slice(j, q);
        if (s[q + 1] === "'") {
          value += "'";
          j = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      tokens.push({ type: 'str', text: value, col });
      continue;
    }
    if (isDigit(c) || (c === '.' && isDigit(s[i + 1]))) {
      i = scanNumber(s, i, tokens);
      continue;
    }
    const cp = s.codePointAt(i)!;
    if (isIdentStart(cp)) {
      let j = i + (cp > 0xffff ? 2 : 1);
      for (;;) {
        const p = s.codePointAt(j);
        if (!isIdentPart(p)) break;
        j += p! > 0xffff ? 2 : 1;
      }
      const word = s.slice(i, j);
      // ASCII-only upper-casing, so that e.g. Turkish 'ın' stays an identifier instead of becoming IN.
      const upper = /^[A-Za-z]+$/.test(word) ? word.toUpperCase() : '';
      tokens.push(KEYWORDS.has(upper) ? { type: 'kw', text: upper, col } : { type: 'id', text: word, col });
      i = j;
      continue;
    }
    const two = s.slice(i, i + 2);
    // Common slips from other languages; a precise hint beats "expected an expression" one column later.
    if (two === '!=' || two === '==') throw syntaxError(col, `'${two}' is not a selector operator; use ${two === '!=' ? "'<>'" : "'='"}`);
    if (TWO_CHAR_OPS.has(two)) {
      tokens.push({ type: 'op', text: two, col });
      i += 2;
      continue;
    }
    if (ONE_CHAR_OPS.has(c)) {
      tokens.push({ type: 'op', text: c, col });
      i++;
      continue;
    }
    throw syntaxError(col, `unexpected character ${JSON.stringify(String.fromCodePoint(cp))}`);
  }
  tokens.push({ type: 'eof', text: '', col: s.length + 1 });
  return tokens;
}

/** Scans a numeric literal starting at `start`, pushes its token and returns the index after it. */
function scanNumber(s: string, start: number, tokens: Token[]): number {
  const col = start + 1;
  let j = start;
  let value: number | bigint;
  if (s[j] === '0' && (s[j + 1] === 'x' || s[j + 1] === 'X')) {
    j += 2;
    while (isHexDigit(s[j])) j++;
    if (j === start + 2) throw syntaxError(j + 1, 'expected hexadecimal digits after 0x');
    value = BigInt(s.slice(start, j));
    j = skipLongSuffix(s, j);
  } else {
    while (isDigit(s[j])) j++;
    let approximate = false;
    if (s[j] === '.') {
      approximate = true;
      j++;
      while (isDigit(s[j])) j++;
    }
    if (s[j] === 'e' || s[j] === 'E') {
      let k = j + 1;
      if (s[k] === '+' || s[k] === '-') k++;
      if (!isDigit(s[k])) throw syntaxError(k + 1, 'expected exponent digits');
      while (isDigit(s[k])) k++;
      j = k;
      approximate = true;
    }
    const literal = s.slice(start, j);
    if (approximate) {
      value = Number(literal);
    } else if (literal.length > 1 && literal[0] === '0') {
      const bad = literal.search(/[89]/);
      if (bad >= 0) throw syntaxError(start + bad + 1, `invalid digit '${literal[bad]}' in octal literal ${literal}`);
      value = BigInt('0o' + literal.slice(1));
      j = skipLongSuffix(s, j);
    } else {
      value = BigInt(literal);
      j = skipLongSuffix(s, j);
    }
  }
  tokens.push({ type: 'num', text: s.slice(start, j), value, col });
  return j;
}

/** Java long literals may end in L; ActiveMQ accepts it, so selectors in the wild carry it. */
function skipLongSuffix(s: string, j: number): number {
  return (s[j] === 'l' || s[j] === 'L') && !isIdentPart(s.codePointAt(j + 1)) ? j + 1 : j;
}

function describe(t: Token): string {
  const clip = (x: string): string => (x.length > 24 ? x.slice(0, 24) + '...' : x);
  switch (t.type) {
    case 'eof':
      return 'end of input';
    case 'str':
      return `string '${clip(t.text.replace(/'/g, "''"))}'`;
    case 'num':
      return `number ${clip(t.text)}`;
    case 'id':
      return `identifier ${clip(t.text)}`;
    case 'kw':
      return `keyword ${t.text}`;
    case 'op':
      return `'${t.text}'`;
  }
}

// ---------------------------------------------------------------------------------------------
// AST

/** Internal value: bigint = exact, number = approximate, null = absent / UNKNOWN. */
type Val = string | number | bigint | boolean | null;

type CmpOp = '=' | '<>' | '<' | '>' | '<=' | '>=';
type ArithOp = '+' | '-' | '*' | '/';

type Node =
  | { k: 'lit'; col: number; v: Val }
  | { k: 'id'; col: number; name: string }
  | { k: 'neg'; col: number; e: Node }
  // Chains are kept flat (not as left-deep binary trees) so a long `a + b + c ...` cannot recurse deeply.
  | { k: 'arith'; col: number; first: Node; rest: { op: ArithOp; e: Node }[] }
  | { k: 'cmp'; col: number; op: CmpOp; l: Node; r: Node }
  | { k: 'between'; col: number; not: boolean; e: Node; lo: Node; hi: Node }
  | { k: 'in'; col: number; not: boolean; e: Node; items: Set<string> }
  | { k: 'like'; col: number; not: boolean; e: Node; re: RegExp }
  | { k: 'isnull'; col: number; not: boolean; e: Node }
  | { k: 'not'; col: number; e: Node }
  | { k: 'and' | 'or'; col: number; es: Node[] };

type StaticType = 'bool' | 'num' | 'str' | 'null' | 'any';

function staticType(n: Node): StaticType {
  switch (n.k) {
    case 'lit':
      if (n.v === null) return 'null';
      if (typeof n.v === 'boolean') return 'bool';
      if (typeof n.v === 'string') return 'str';
      return 'num';
    case 'id':
      return 'any';
    case 'neg':
    case 'arith':
      return 'num';
    default:
      return 'bool';
  }
}

const TYPE_NAMES: Record<StaticType, string> = {
  bool: 'a boolean expression',
  num: 'a numeric expression',
  str: 'a string',
  null: 'NULL',
  any: 'an identifier',
};

// ---------------------------------------------------------------------------------------------
// Parser

const CMP_OPS = new Set<string>(['=', '<>', '<', '>', '<=', '>=']);

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly tokens: Token[]) {}

  parseSelector(): Node {
    const e = this.parseOr();
    const t = this.peek();
    if (t.type !== 'eof') {
      throw this.expected(t, t.type === 'op' && t.text === ')' ? "end of input (unbalanced ')')" : 'AND, OR or end of input');
    }
    this.require(e, 'bool', 'the selector');
    return e;
  }

  // --- token helpers

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)];
  }

  private next(): Token {
    const t = this.peek();
    if (t.type !== 'eof') this.pos++;
    return t;
  }

  private isKw(name: string, t = this.peek()): boolean {
    return t.type === 'kw' && t.text === name;
  }

  private isOp(op: string, t = this.peek()): boolean {
    return t.type === 'op' && t.text === op;
  }

  private expected(t: Token, what: string): SelectorError {
    return syntaxError(t.col, `expected ${what} but found ${describe(t)}`);
  }

  private expectKw(name: string): Token {
    const t = this.next();
    if (!this.isKw(name, t)) throw this.expected(t, name);
    return t;
  }

  private expectOp(op: string): Token {
    const t = this.next();
    if (!this.isOp(op, t)) throw this.expected(t, `'${op}'`);
    return t;
  }

  private expectString(what: string): Token {
    const t = this.next();
    if (t.type !== 'str') throw this.expected(t, what);
    return t;
  }

  /** Bounds recursion so that hostile input cannot exhaust the stack. */
  private enter(t: Token): void {
    if (++this.depth > MAX_SELECTOR_DEPTH) {
      throw syntaxError(t.col, `expression nested more than ${MAX_SELECTOR_DEPTH} levels deep`);
    }
  }

  private leave(): void {
    this.depth--;
  }

  /**
   * Refuses operands whose type is already known to be wrong. Identifiers and NULL pass: their type
   * is only known per message, and a wrong one evaluates to UNKNOWN.
   */
  private require(n: Node, want: 'bool' | 'num' | 'str', role: string): void {
    const t = staticType(n);
    if (t === want || t === 'any' || t === 'null') return;
    throw syntaxError(n.col, `expected ${TYPE_NAMES[want]} for ${role} but found ${TYPE_NAMES[t]}`);
  }

  // --- grammar

  private parseOr(): Node {
    const first = this.parseAnd();
    if (!this.isKw('OR')) return first;
    const es = [first];
    while (this.isKw('OR')) {
      this.next();
      es.push(this.parseAnd());
    }
    for (const e of es) this.require(e, 'bool', 'an operand of OR');
    return { k: 'or', col: first.col, es };
  }

  private parseAnd(): Node {
    const first = this.parseNot();
    if (!this.isKw('AND')) return first;
    const es = [first];
    while (this.isKw('AND')) {
      this.next();
      es.push(this.parseNot());
    }
    for (const e of es) this.require(e, 'bool', 'an operand of AND');
    return { k: 'and', col: first.col, es };
  }

  private parseNot(): Node {
    if (!this.isKw('NOT')) return this.parseComparison();
    const t = this.next();
    this.enter(t);
    const e = this.parseNot();
    this.leave();
    this.require(e, 'bool', 'the operand of NOT');
    return { k: 'not', col: t.col, e };
  }

  private parseComparison(): Node {
    const l = this.parseAdditive();
    const t = this.peek();
    if (t.type === 'op' && CMP_OPS.has(t.text)) {
      this.next();
      const op = t.text as CmpOp;
      const r = this.parseAdditive();
      // JMS restricts strings and booleans to = and <>.
      if (op !== '=' && op !== '<>') {
        this.require(l, 'num', `the left operand of ${op}`);
        this.require(r, 'num', `the right operand of ${op}`);
      }
      return { k: 'cmp', col: l.col, op, l, r };
    }
    let not = false;
    if (this.isKw('NOT')) {
      this.next();
      const after = this.peek();
      if (!this.isKw('BETWEEN', after) && !this.isKw('LIKE', after) && !this.isKw('IN', after)) {
        throw this.expected(after, 'BETWEEN, LIKE or IN after NOT');
      }
      not = true;
    }
    if (this.isKw('BETWEEN')) {
      this.next();
      const lo = this.parseAdditive();
      this.expectKw('AND');
      const hi = this.parseAdditive();
      this.require(l, 'num', 'the operand of BETWEEN');
      this.require(lo, 'num', 'the lower bound of BETWEEN');
      this.require(hi, 'num', 'the upper bound of BETWEEN');
      return { k: 'between', col: l.col, not, e: l, lo, hi };
    }
    if (this.isKw('LIKE')) {
      this.next();
      const pattern = this.expectString('a string literal pattern after LIKE');
      let escape: string | undefined;
      if (this.isKw('ESCAPE')) {
        this.next();
        const esc = this.expectString('a string literal after ESCAPE');
        const chars = Array.from(esc.text);
        if (chars.length !== 1) throw syntaxError(esc.col, `ESCAPE must be a single character, got ${chars.length}`);
        escape = chars[0];
      }
      this.require(l, 'str', 'the operand of LIKE');
      return { k: 'like', col: l.col, not, e: l, re: likeToRegExp(pattern.text, escape, pattern.col) };
    }
    if (this.isKw('IN')) {
      this.next();
      this.expectOp('(');
      const items = new Set<string>();
      let count = 0;
      for (;;) {
        const item = this.expectString('a string literal in the IN list');
        if (++count > MAX_IN_LIST_ITEMS) throw syntaxError(item.col, `IN list has more than ${MAX_IN_LIST_ITEMS} items`);
        items.add(item.text);
        const sep = this.next();
        if (this.isOp(')', sep)) break;
        if (!this.isOp(',', sep)) throw this.expected(sep, "',' or ')'");
      }
      this.require(l, 'str', 'the operand of IN');
      return { k: 'in', col: l.col, not, e: l, items };
    }
    if (this.isKw('IS')) {
      this.next();
      let isNot = false;
      if (this.isKw('NOT')) {
        this.next();
        isNot = true;
      }
      this.expectKw('NULL');
      return { k: 'isnull', col: l.col, not: isNot, e: l };
    }
    return l;
  }

  private parseAdditive(): Node {
    return this.parseChain(() => this.parseMultiplicative(), '+', '-');
  }

  private parseMultiplicative(): Node {
    return this.parseChain(() => this.parseUnary(), '*', '/');
  }

  private parseChain(operand: () => Node, op1: ArithOp, op2: ArithOp): Node {
    const first = operand();
    if (!this.isOp(op1) && !this.isOp(op2)) return first;
    const rest: { op: ArithOp; e: Node }[] = [];
    while (this.isOp(op1) || this.isOp(op2)) {
      const op = this.next().text as ArithOp;
      rest.push({ op, e: operand() });
    }
    this.require(first, 'num', `an operand of ${rest[0].op}`);
    for (const r of rest) this.require(r.e, 'num', `an operand of ${r.op}`);
    if (first.k === 'lit' && rest.every((r) => r.e.k === 'lit')) {
      let v = first.v;
      for (const r of rest) v = arith(r.op, v, (r.e as { v: Val }).v);
      return { k: 'lit', col: first.col, v };
    }
    return { k: 'arith', col: first.col, first, rest };
  }

  private parseUnary(): Node {
    const t = this.peek();
    if (!this.isOp('+', t) && !this.isOp('-', t)) return this.parsePrimary();
    this.next();
    this.enter(t);
    const e = this.parseUnary();
    this.leave();
    this.require(e, 'num', `unary ${t.text}`);
    const node: Node = t.text === '-' ? { k: 'neg', col: t.col, e } : e;
    if (node.k === 'neg' && e.k === 'lit') return { k: 'lit', col: t.col, v: negate(e.v) };
    // Unary plus changes nothing, but the node must still start at the sign for error columns.
    return node.k === 'neg' ? node : { ...node, col: t.col };
  }

  private parsePrimary(): Node {
    const t = this.next();
    switch (t.type) {
      case 'num':
        return { k: 'lit', col: t.col, v: t.value! };
      case 'str':
        return { k: 'lit', col: t.col, v: t.text };
      case 'id':
        return { k: 'id', col: t.col, name: t.text };
      case 'kw':
        if (t.text === 'TRUE') return { k: 'lit', col: t.col, v: true };
        if (t.text === 'FALSE') return { k: 'lit', col: t.col, v: false };
        if (t.text === 'NULL') return { k: 'lit', col: t.col, v: null };
        break;
      case 'op':
        if (t.text === '(') {
          this.enter(t);
          const e = this.parseOr();
          this.expectOp(')');
          this.leave();
          return { ...e, col: t.col };
        }
        break;
      default:
        break;
    }
    throw this.expected(t, 'an expression');
  }
}

// ---------------------------------------------------------------------------------------------
// LIKE

const REGEX_SYNTAX = /[\\^$.*+?()[\]{}|/]/g;

/**
 * Translates a LIKE pattern into one anchored RegExp.
 *
 * The obvious translation (`%` to `.*`) backtracks polynomially in the number of `%`s, so a
 * selector from a client could stall the broker. Since `_` and literals have a fixed length, the
 * leftmost occurrence of each middle segment is always the best choice; `(?=([^]*?seg))\N` finds it
 * and then commits to it (JS lookaheads are atomic), keeping a match O(text x pattern).
 */
function likeToRegExp(pattern: string, escape: string | undefined, column: number): RegExp {
  const segments: string[] = [];
  let seg = '';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === escape) {
      if (i + 1 >= chars.length) throw syntaxError(column, `LIKE pattern ends with the escape character ${JSON.stringify(escape)}`);
      // As in ActiveMQ, the escape character makes any following character literal.
      seg += chars[++i].replace(REGEX_SYNTAX, '\\$&');
    } else if (c === '%') {
      segments.push(seg);
      seg = '';
    } else if (c === '_') {
      seg += '.';
    } else {
      seg += c.replace(REGEX_SYNTAX, '\\$&');
    }
  }
  segments.push(seg);
  let source = '^' + segments[0];
  if (segments.length > 1) {
    let group = 0;
    for (let i = 1; i < segments.length - 1; i++) {
      if (segments[i] === '') continue; // %% is the same as %
      group++;
      source += `(?=([^]*?${segments[i]}))\\${group}`;
    }
    source += '[^]*' + segments[segments.length - 1];
  }
  // 's' so that % and _ also cover line breaks; 'u' so that _ is one code point, as in Java regex.
  return new RegExp(source + '$', 'su');
}

// ---------------------------------------------------------------------------------------------
// Evaluation

type Ev = (lookup: Lookup) => Val;

function isNum(v: unknown): v is number | bigint {
  return typeof v === 'number' || typeof v === 'bigint';
}

function negate(v: Val): Val {
  return isNum(v) ? -v : null;
}

function arith(op: ArithOp, a: Val, b: Val): Val {
  if (typeof a === 'bigint' && typeof b === 'bigint') {
    switch (op) {
      case '+':
        return a + b;
      case '-':
        return a - b;
      case '*':
        return a * b;
      case '/':
        return b === 0n ? null : a / b;
    }
  }
  if (!isNum(a) || !isNum(b)) return null;
  const x = Number(a);
  const y = Number(b);
  switch (op) {
    case '+':
      return x + y;
    case '-':
      return x - y;
    case '*':
      return x * y;
    case '/':
      return x / y;
  }
}

function equals(a: Val, b: Val): boolean | null {
  if (a === null || b === null) return null;
  // Loose equality between number and bigint compares mathematical values exactly.
  if (isNum(a)) return isNum(b) ? a == b : null;
  if (typeof a === typeof b && (typeof a === 'string' || typeof a === 'boolean')) return a === b;
  return null;
}

function compare(op: CmpOp, a: Val, b: Val): boolean | null {
  switch (op) {
    case '=':
      return equals(a, b);
    case '<>': {
      const e = equals(a, b);
      return e === null ? null : !e;
    }
    default:
      break;
  }
  if (!isNum(a) || !isNum(b)) return null;
  switch (op) {
    case '<':
      return a < b;
    case '>':
      return a > b;
    case '<=':
      return a <= b;
    default:
      return a >= b;
  }
}

function not3(v: Val): boolean | null {
  return v === true ? false : v === false ? true : null;
}

function compile(n: Node): Ev {
  switch (n.k) {
    case 'lit': {
      const v = n.v;
      return () => v;
    }
    case 'id': {
      const name = n.name;
      return (lookup) => {
        const v = lookup(name);
        return v === undefined ? null : v;
      };
    }
    case 'neg': {
      const e = compileNumeric(n.e);
      return (lookup) => negate(e(lookup));
    }
    case 'arith': {
      const first = compileNumeric(n.first);
      const ops = n.rest.map((r) => r.op);
      const evs = n.rest.map((r) => compileNumeric(r.e));
      if (evs.length === 1) {
        const op = ops[0];
        const second = evs[0];
        return (lookup) => {
          const a = first(lookup);
          return a === null ? null : arith(op, a, second(lookup));
        };
      }
      return (lookup) => {
        let acc = first(lookup);
        for (let i = 0; i < evs.length && acc !== null; i++) acc = arith(ops[i], acc, evs[i](lookup));
        return acc;
      };
    }
    case 'cmp': {
      const { op } = n;
      const l = compile(n.l);
      const r = compile(n.r);
      return (lookup) => compare(op, l(lookup), r(lookup));
    }
    case 'between': {
      const { not } = n;
      const e = compile(n.e);
      const lo = compile(n.lo);
      const hi = compile(n.hi);
      return (lookup) => {
        const v = e(lookup);
        if (v === null) return null;
        const ge = compare('>=', v, lo(lookup));
        if (ge === false) return not;
        const le = compare('<=', v, hi(lookup));
        if (le === false) return not;
        if (ge === null || le === null) return null;
        return !not;
      };
    }
    case 'in': {
      const { not, items } = n;
      const e = compile(n.e);
      return (lookup) => {
        const v = e(lookup);
        return typeof v === 'string' ? items.has(v) !== not : null;
      };
    }
    case 'like': {
      const { not, re } = n;
      const e = compile(n.e);
      return (lookup) => {
        const v = e(lookup);
        return typeof v === 'string' ? re.test(v) !== not : null;
      };
    }
    case 'isnull': {
      const { not } = n;
      const e = compile(n.e);
      return (lookup) => (e(lookup) === null) !== not;
    }
    case 'not': {
      const e = compile(n.e);
      return (lookup) => not3(e(lookup));
    }
    case 'and': {
      const es = n.es.map(compile);
      return (lookup) => {
        let unknown = false;
        for (const e of es) {
          const v = e(lookup);
          if (v === false) return false;
          if (v !== true) unknown = true;
        }
        return unknown ? null : true;
      };
    }
    case 'or': {
      const es = n.es.map(compile);
      return (lookup) => {
        let unknown = false;
        for (const e of es) {
          const v = e(lookup);
          if (v === true) return true;
          if (v !== false) unknown = true;
        }
        return unknown ? null : false;
      };
    }
  }
}

/**
 * Compiles an operand of arithmetic. A property's integral `number` joins exact (bigint) arithmetic
 * so that `a / 2` divides an int property the way Java does; non-numbers become UNKNOWN at once.
 */
function compileNumeric(n: Node): Ev {
  if (n.k !== 'id') return compile(n);
  const name = n.name;
  return (lookup) => {
    const v = lookup(name);
    if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : v;
    return typeof v === 'bigint' ? v : null;
  };
}
