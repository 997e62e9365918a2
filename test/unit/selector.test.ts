/**
 * JMS message selectors (broker/core/selector.ts) against JMS 1.1 section 3.8.1.1 and the
 * ActiveMQ/Artemis `apache.org:selector-filter:string` dialect.
 *
 * Three-valued results are observed through `tri`: a selector E is TRUE when E matches, FALSE when
 * NOT (E) matches, and UNKNOWN when neither does.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  compileSelector, MAX_IN_LIST_ITEMS, MAX_SELECTOR_DEPTH, MAX_SELECTOR_LENGTH, SelectorError, type Lookup,
  type SelectorValue,
} from '../../broker/core/selector';

// ------------------------------------------------------------------------------------------
// Helpers

type Props = Record<string, SelectorValue>;

function lookupOf(props: Props): Lookup {
  return (name) => (Object.prototype.hasOwnProperty.call(props, name) ? props[name] : undefined);
}

function matches(selector: string, props: Props = {}): boolean {
  return compileSelector(selector).matches(lookupOf(props));
}

/** 'T', 'F' or 'U' (UNKNOWN) for a boolean selector expression. */
function tri(expression: string, props: Props = {}): 'T' | 'F' | 'U' {
  const yes = matches(expression, props);
  const no = matches(`NOT (${expression})`, props);
  assert.ok(!(yes && no), `${expression}: both it and its negation matched`);
  return yes ? 'T' : no ? 'F' : 'U';
}

function triIs(expression: string, props: Props, expected: 'T' | 'F' | 'U'): void {
  assert.is(tri(expression, props), expected, `${expression} with ${show(props)}`);
}

function show(props: Props): string {
  return JSON.stringify(props, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v === undefined ? '<undefined>' : v));
}

/** Asserts that compiling `selector` fails at `column` and that the message names the column and `mentions`. */
function refused(selector: string, column: number, ...mentions: string[]): SelectorError {
  let error: unknown;
  try {
    compileSelector(selector);
  } catch (e) {
    error = e;
  }
  if (error === undefined) assert.unreachable(`${JSON.stringify(selector)}: expected a SelectorError, it compiled`);
  if (!(error instanceof SelectorError)) throw error;
  assert.is(error.code, 'ERR_SELECTOR_SYNTAX');
  assert.is(error.name, 'SelectorError');
  assert.is(error.column, column, `${JSON.stringify(selector)}: ${error.message}`);
  assert.ok(error.message.includes(`column ${column}`), `"${error.message}" should name column ${column}`);
  for (const m of mentions) assert.ok(error.message.includes(m), `"${error.message}" should mention ${JSON.stringify(m)}`);
  return error;
}

// ------------------------------------------------------------------------------------------
// API surface

test('SelectorError is an Error with code, column, name and cause', () => {
  const cause = new Error('root');
  const e = new SelectorError('boom at column 3', 3, { cause });
  assert.ok(e instanceof Error);
  assert.is(e.code, 'ERR_SELECTOR_SYNTAX');
  assert.is(e.column, 3);
  assert.is(e.name, 'SelectorError');
  assert.is(e.message, 'boom at column 3');
  assert.is(e.cause, cause);
});

test('compileSelector keeps the text and can be reused across messages', () => {
  const s = compileSelector("color = 'red'");
  assert.is(s.text, "color = 'red'");
  assert.ok(s.matches(lookupOf({ color: 'red' })));
  assert.not.ok(s.matches(lookupOf({ color: 'blue' })));
  assert.ok(s.matches(lookupOf({ color: 'red' })));
});

test('an empty or blank selector means no selector and matches everything', () => {
  assert.ok(matches(''));
  assert.ok(matches('  \t\n'));
  assert.is(compileSelector('').text, '');
});

test('lookup is called with the identifier exactly as written', () => {
  const seen: string[] = [];
  compileSelector('JMSPriority > 4 AND $x IS NULL AND _y_1 = 1').matches((n) => {
    seen.push(n);
    return n === 'JMSPriority' ? 9 : n === '_y_1' ? 1 : undefined;
  });
  assert.equal(seen, ['JMSPriority', '$x', '_y_1']);
});

test('a non-string selector is a TypeError', () => {
  assert.throws(() => compileSelector(42 as unknown as string), (e: unknown) => e instanceof TypeError);
});

// ------------------------------------------------------------------------------------------
// Literals

test('string literals: quotes, doubled quotes, empty, unicode', () => {
  assert.ok(matches("s = 'it''s'", { s: "it's" }));
  assert.not.ok(matches("s = 'it''s'", { s: 'it' }));
  assert.ok(matches("s = ''''", { s: "'" }));
  assert.ok(matches("s = ''", { s: '' }));
  assert.ok(matches("s = 'héllo wörld 😀'", { s: 'héllo wörld 😀' }));
  assert.ok(matches("s = 'a -- not a comment /* nor this */'", { s: 'a -- not a comment /* nor this */' }));
  assert.ok(matches("s = 'line\nbreak'", { s: 'line\nbreak' }));
});

test('string comparison is case-sensitive and exact', () => {
  assert.not.ok(matches("s = 'Red'", { s: 'red' }));
  assert.not.ok(matches("s = 'red '", { s: 'red' }));
});

test('exact numeric literals, including long and beyond', () => {
  assert.ok(matches('n = 57', { n: 57 }));
  assert.ok(matches('n = -957', { n: -957 }));
  assert.ok(matches('n = +62', { n: 62 }));
  assert.ok(matches('n = 0', { n: 0 }));
  assert.ok(matches('n = 9223372036854775807', { n: 9223372036854775807n }));
  assert.ok(matches('n = -9223372036854775808', { n: -9223372036854775808n }));
  assert.ok(matches('n = 123456789012345678901234567890', { n: 123456789012345678901234567890n }));
  assert.ok(matches('n = 10L', { n: 10 }), 'Java long suffix');
  assert.ok(matches('n = 10l', { n: 10 }));
});

test('approximate numeric literals', () => {
  assert.ok(matches('n = 1.5', { n: 1.5 }));
  assert.ok(matches('n = 7E3', { n: 7000 }));
  assert.ok(matches('n = 7e3', { n: 7000 }));
  assert.ok(matches('n = -57.9E2', { n: -5790 }));
  assert.ok(matches('n = 1e-2', { n: 0.01 }));
  assert.ok(matches('n = 1E+2', { n: 100 }));
  assert.ok(matches('n = 7.', { n: 7 }));
  assert.ok(matches('n = .5', { n: 0.5 }));
  assert.ok(matches('n = 5.E1', { n: 50 }));
  assert.ok(matches('n = 1.5', { n: 1.5 }));
});

test('hex and octal literals (ActiveMQ extension)', () => {
  assert.ok(matches('n = 0x1F', { n: 31 }));
  assert.ok(matches('n = 0X1f', { n: 31 }));
  assert.ok(matches('n = 0xFFFFFFFFFFFFFFFF', { n: 18446744073709551615n }));
  assert.ok(matches('n = 010', { n: 8 }));
  assert.ok(matches('n = 0777', { n: 511 }));
  assert.ok(matches('n = 00', { n: 0 }));
});

test('boolean literals and boolean properties', () => {
  assert.ok(matches('TRUE'));
  assert.not.ok(matches('FALSE'));
  assert.ok(matches('true'));
  assert.ok(matches('True'));
  assert.ok(matches('flag', { flag: true }));
  assert.not.ok(matches('flag', { flag: false }));
  assert.not.ok(matches('flag', {}));
  assert.not.ok(matches('flag', { flag: 'true' }), 'a string is not a boolean');
  assert.not.ok(matches('flag', { flag: 1 }), 'a number is not a boolean');
  assert.ok(matches('flag = TRUE', { flag: true }));
  assert.ok(matches('flag = false', { flag: false }));
  assert.ok(matches('flag <> FALSE', { flag: true }));
  assert.ok(matches('NOT flag', { flag: false }));
  assert.ok(matches('TRUE = TRUE'));
  assert.ok(matches('(1 < 2) = TRUE'));
});

test('NULL literal: every comparison with it is UNKNOWN', () => {
  triIs('a = NULL', { a: 1 }, 'U');
  triIs('a <> NULL', { a: 1 }, 'U');
  triIs('NULL = NULL', {}, 'U');
  triIs('NULL', {}, 'U');
  assert.ok(matches('NULL IS NULL'));
});

// ------------------------------------------------------------------------------------------
// Identifiers and keywords

test('identifiers: Java identifier characters, case-sensitive', () => {
  assert.ok(matches('$a = 1', { $a: 1 }));
  assert.ok(matches('_a = 1', { _a: 1 }));
  assert.ok(matches('a$b_c9 = 1', { a$b_c9: 1 }));
  assert.ok(matches('JMSType = 1', { JMSType: 1 }));
  assert.ok(matches('größe = 1', { größe: 1 }));
  assert.ok(matches('名前 = 1', { 名前: 1 }));
  assert.ok(matches('Color = 1', { Color: 1 }));
  assert.not.ok(matches('Color = 1', { color: 1 }));
  assert.not.ok(matches('color = 1', { Color: 1 }));
});

test('keywords are case-insensitive, but only ASCII spellings are keywords', () => {
  assert.ok(matches('a between 1 and 3', { a: 2 }));
  assert.ok(matches('a BeTwEeN 1 AnD 3', { a: 2 }));
  assert.ok(matches('a is not null', { a: 2 }));
  assert.ok(matches('a Is Null', {}));
  assert.ok(matches("a in ('x')", { a: 'x' }));
  assert.ok(matches("a like 'x!%' escape '!'", { a: 'x%' }));
  assert.ok(matches('not a = 1 or b = 2', { a: 1, b: 2 }));
  assert.ok(matches('a = 1 oR b = 2', { a: 0, b: 2 }));
  assert.ok(matches('a not between 1 and 3', { a: 5 }));
  // U+0131 dotless i upper-cases to I, yet 'ın' is an identifier, not IN.
  assert.ok(matches('ın = 1', { ın: 1 }));
});

test('keywords cannot be used as identifiers', () => {
  refused('AND = 1', 1, 'expected an expression', 'keyword AND');
  refused('a = or', 5, 'keyword OR');
  refused('between > 1', 1, 'keyword BETWEEN');
  refused('x = escape', 5, 'keyword ESCAPE');
});

test('identifiers that contain keywords are ordinary identifiers', () => {
  assert.ok(matches('ANDY = 1 AND ORder = 2 AND isnull = 3 AND notes = 4 AND inx = 5', { ANDY: 1, ORder: 2, isnull: 3, notes: 4, inx: 5 }));
});

test('whitespace and comments', () => {
  assert.ok(matches('\ta\n=\r\n1\f', { a: 1 }));
  assert.ok(matches('a=1', { a: 1 }));
  assert.ok(matches("a='x'AND b=2", { a: 'x', b: 2 }));
  assert.ok(matches('a = 1 -- trailing comment', { a: 1 }));
  assert.ok(matches('a = 1 -- comment\n AND b = 2', { a: 1, b: 2 }));
  assert.not.ok(matches('a = 1 -- comment\n AND b = 2', { a: 1, b: 3 }));
  assert.ok(matches('/* leading */ a = /* inner */ 1', { a: 1 }));
  assert.ok(matches('a - -1 = 2', { a: 1 }), 'a spaced double minus is not a comment');
  refused('a = 1 /* unterminated', 7, '*/');
});

// ------------------------------------------------------------------------------------------
// Comparisons

test('numeric comparison operators', () => {
  const cases: [string, number, boolean][] = [
    ['a = 5', 5, true], ['a = 5', 6, false],
    ['a <> 5', 6, true], ['a <> 5', 5, false],
    ['a < 5', 4, true], ['a < 5', 5, false],
    ['a > 5', 6, true], ['a > 5', 5, false],
    ['a <= 5', 5, true], ['a <= 5', 6, false],
    ['a >= 5', 5, true], ['a >= 5', 4, false],
    ['5 > a', 4, true], ['a > -5', -4, true],
  ];
  const floats: [string, number, boolean][] = [
    ['a = 5.5', 5.5, true], ['a <> 5.5', 5.5, false], ['a < 5.5', 5.25, true], ['a > 5', 5.01, true],
    ['a <= 5', 5.01, false], ['a >= 5.5', 5.5, true], ['a < 5', 4.99, true], ['a > 5.5', 5.49, false],
  ];
  for (const [sel, a, want] of floats) assert.is(matches(sel, { a }), want, `${sel} with a = ${a}`);
  for (const [sel, a, want] of cases) {
    assert.is(matches(sel, { a }), want, `${sel} with a = ${a}`);
    assert.is(matches(sel, { a: BigInt(a) }), want, `${sel} with a = ${a}n`);
    assert.is(matches(sel, { a: a + 0.0 }), want, `${sel} with a = ${a}.0`);
  }
});

test('int, bigint and float compare by numeric value', () => {
  assert.ok(matches('a = 3', { a: 3n }));
  assert.ok(matches('a = 3.0', { a: 3n }));
  assert.ok(matches('a = 3.0', { a: 3 }));
  assert.ok(matches('a < 3.5', { a: 3n }));
  assert.ok(matches('a > 2.5', { a: 3n }));
  assert.ok(matches('a = b', { a: 3n, b: 3 }));
  assert.ok(matches('a = b', { a: 3n, b: 3.0 }));
  assert.not.ok(matches('a = b', { a: 3n, b: 3.1 }));
  assert.ok(matches('a < b', { a: 3n, b: 3.1 }));
  assert.ok(matches('a <> b', { a: 3n, b: 3.1 }));
});

test('bigint comparisons are exact beyond 2^53', () => {
  const big = 9007199254740993n; // 2^53 + 1, not representable as a double
  assert.ok(matches('a = 9007199254740993', { a: big }));
  assert.not.ok(matches('a = 9007199254740992', { a: big }));
  assert.ok(matches('a > 9007199254740992', { a: big }));
  assert.not.ok(matches('a = 9007199254740993', { a: 2 ** 53 }), 'the double 2^53 is not 2^53 + 1');
  assert.ok(matches('a < 9007199254740993', { a: 2 ** 53 }));
  assert.ok(matches('a = 9223372036854775807', { a: 9223372036854775807n }));
  assert.ok(matches('a > 9223372036854775806', { a: 9223372036854775807n }));
  assert.ok(matches('a < -9223372036854775807', { a: -9223372036854775808n }));
  assert.ok(matches('a BETWEEN 9223372036854775806 AND 9223372036854775807', { a: 9223372036854775807n }));
  assert.ok(matches('a = b', { a: 18446744073709551616n, b: 2 ** 64 }), '2^64 is exact in both');
});

test('string and boolean comparisons support only = and <>', () => {
  assert.ok(matches("s = 'x'", { s: 'x' }));
  assert.ok(matches("s <> 'x'", { s: 'y' }));
  assert.ok(matches('s = t', { s: 'x', t: 'x' }));
  triIs('s < t', { s: 'a', t: 'b' }, 'U');
  triIs('s > t', { s: 'a', t: 'b' }, 'U');
  triIs('s <= t', { s: 'a', t: 'a' }, 'U');
  triIs('s < t', { s: false, t: true }, 'U');
  triIs('s >= t', { s: true, t: true }, 'U');
  triIs('s < 1', { s: 'a' }, 'U');
  refused("s < 'b'", 5, 'numeric', '<');
  refused("'a' > s", 1, 'numeric', '>');
  refused('s <= TRUE', 6, 'numeric');
  refused('(a = 1) < 2', 1, 'numeric');
});

test('comparing mismatched types is UNKNOWN, never TRUE or FALSE', () => {
  triIs('a = 1', { a: '1' }, 'U');
  triIs('a <> 1', { a: '1' }, 'U');
  triIs("a = '1'", { a: 1 }, 'U');
  triIs("a <> '1'", { a: 1 }, 'U');
  triIs('a = TRUE', { a: 1 }, 'U');
  triIs('a = TRUE', { a: 'true' }, 'U');
  triIs('a = b', { a: true, b: 'true' }, 'U');
  triIs("'1' = 1", {}, 'U');
  triIs('a > 1', { a: true }, 'U');
});

test('NaN and infinities follow IEEE comparison', () => {
  triIs('a = a', { a: NaN }, 'F');
  triIs('a <> 1', { a: NaN }, 'T');
  triIs('a < 1', { a: NaN }, 'F');
  triIs('a > 1e308', { a: Infinity }, 'T');
  triIs('a < -1e308', { a: -Infinity }, 'T');
});

// ------------------------------------------------------------------------------------------
// Three-valued logic

const TV: Record<'T' | 'F' | 'U', SelectorValue> = { T: true, F: false, U: undefined };
const VALUES = ['T', 'F', 'U'] as const;

test('AND truth table', () => {
  const table: Record<string, string> = {
    TT: 'T', TF: 'F', TU: 'U', FT: 'F', FF: 'F', FU: 'F', UT: 'U', UF: 'F', UU: 'U',
  };
  for (const x of VALUES) for (const y of VALUES) triIs('x AND y', { x: TV[x], y: TV[y] }, table[x + y] as 'T');
});

test('OR truth table', () => {
  const table: Record<string, string> = {
    TT: 'T', TF: 'T', TU: 'T', FT: 'T', FF: 'F', FU: 'U', UT: 'T', UF: 'U', UU: 'U',
  };
  for (const x of VALUES) for (const y of VALUES) triIs('x OR y', { x: TV[x], y: TV[y] }, table[x + y] as 'T');
});

test('NOT truth table', () => {
  triIs('NOT x', { x: true }, 'F');
  triIs('NOT x', { x: false }, 'T');
  triIs('NOT x', {}, 'U');
  triIs('NOT NOT x', {}, 'U');
  triIs('NOT NOT x', { x: true }, 'T');
});

test('a missing or null property makes comparisons UNKNOWN', () => {
  for (const props of [{}, { a: null }, { a: undefined }] as Props[]) {
    assert.not.ok(matches('a > 1', props), 'a > 1');
    assert.not.ok(matches('NOT (a > 1)', props), 'NOT (a > 1)');
    assert.not.ok(matches('a = 1', props));
    assert.not.ok(matches('a <> 1', props), 'a <> 1 is not TRUE for a missing a');
    assert.not.ok(matches("a = 'x'", props));
    assert.not.ok(matches("a <> 'x'", props));
    assert.ok(matches('a IS NULL', props), 'a IS NULL');
    assert.not.ok(matches('a IS NOT NULL', props));
    assert.ok(matches('a > 1 OR TRUE', props));
    assert.not.ok(matches('a > 1 AND TRUE', props));
    assert.not.ok(matches('a > 1 OR FALSE', props));
    assert.ok(matches('NOT (a > 1 AND FALSE)', props));
  }
});

test('AND and OR chains of many operands', () => {
  assert.ok(matches('a = 1 AND b = 2 AND c = 3', { a: 1, b: 2, c: 3 }));
  assert.not.ok(matches('a = 1 AND b = 2 AND c = 3', { a: 1, b: 2, c: 4 }));
  assert.ok(matches('a = 1 OR b = 2 OR c = 3', { c: 3 }));
  triIs('a = 1 OR b = 2 OR c = 3', { a: 0, b: 0 }, 'U');
  triIs('a = 1 AND b = 2 AND c = 3', { a: 1, b: 2 }, 'U');
  triIs('a = 1 AND b = 2 AND c = 3', { a: 1, b: 0 }, 'F');
});

test('precedence: NOT binds tighter than AND, AND tighter than OR', () => {
  // a OR b AND c = a OR (b AND c)
  assert.ok(matches('x OR y AND z', { x: true, y: false, z: false }));
  assert.not.ok(matches('(x OR y) AND z', { x: true, y: false, z: false }));
  // NOT a AND b = (NOT a) AND b
  assert.ok(matches('NOT x AND y', { x: false, y: true }));
  assert.not.ok(matches('NOT (x AND y)', { x: true, y: true }));
  assert.not.ok(matches('NOT x AND y', { x: true, y: true }));
  // NOT binds looser than comparison: NOT a = 1 is NOT (a = 1)
  assert.ok(matches('NOT a = 1', { a: 2 }));
  assert.not.ok(matches('NOT a = 1', { a: 1 }));
});

// ------------------------------------------------------------------------------------------
// Arithmetic

test('arithmetic operators and precedence', () => {
  assert.ok(matches('1 + 2 * 3 = 7'));
  assert.ok(matches('(1 + 2) * 3 = 9'));
  assert.ok(matches('10 - 4 - 3 = 3'), '- is left associative');
  assert.ok(matches('8 / 4 / 2 = 1'), '/ is left associative');
  assert.ok(matches('2 * 3 - 4 / 2 = 4'));
  assert.ok(matches('a * b + c = 11', { a: 2, b: 4, c: 3 }));
  assert.ok(matches('a + b * c = 14', { a: 2, b: 4, c: 3 }));
  assert.ok(matches('a - b - c = -5', { a: 2, b: 4, c: 3 }));
  assert.ok(matches('-a = -5', { a: 5 }));
  assert.ok(matches('- - a = 5', { a: 5 }));
  assert.ok(matches('+a = 5', { a: 5 }));
  assert.ok(matches('-(a + 1) * 2 = -12', { a: 5 }));
  assert.ok(matches('a + 1 > b * 2', { a: 5, b: 2 }));
  assert.ok(matches('price * quantity >= 100.0', { price: 12.5, quantity: 8 }));
});

test('exact arithmetic: integer division truncates toward zero, as in Java', () => {
  assert.ok(matches('7 / 2 = 3'));
  assert.ok(matches('-7 / 2 = -3'));
  assert.ok(matches('a / 2 = 3', { a: 7 }));
  assert.ok(matches('a / 2 = 3', { a: 7n }));
  assert.ok(matches('a / b = -3', { a: 7, b: -2 }));
  assert.ok(matches('7 / 2.0 = 3.5'));
  assert.ok(matches('7.0 / 2 = 3.5'));
  assert.ok(matches('a / 2 = 3.75', { a: 7.5 }));
  assert.ok(matches('a / 2.0 = 3.5', { a: 7 }));
  assert.ok(matches('1e3 / 3 > 333'), 'an exponent literal is approximate');
});

test('exact arithmetic does not lose precision', () => {
  assert.ok(matches('a * 2 = 18446744073709551614', { a: 9223372036854775807n }));
  assert.ok(matches('a + 1 = 9007199254740993', { a: 2 ** 53 }));
  assert.ok(matches('a + 1 = 9223372036854775808', { a: 9223372036854775807n }));
  assert.ok(matches('9007199254740993 - 1 = 9007199254740992'));
});

test('division by zero: UNKNOWN when exact, IEEE when approximate', () => {
  triIs('a / 0 = 1', { a: 1 }, 'U');
  triIs('a / b > 0', { a: 1, b: 0 }, 'U');
  triIs('1 / 0 = 1', {}, 'U');
  triIs('(1 / 0) IS NULL', {}, 'T');
  triIs('1.0 / 0 > 1e308', {}, 'T');
  triIs('a / 0.0 < -1e308', { a: -1 }, 'T');
});

test('arithmetic with a missing or non-numeric operand is UNKNOWN', () => {
  triIs('a + 1 > 0', {}, 'U');
  triIs('a + 1 > 0', { a: 'x' }, 'U');
  triIs('a + 1 > 0', { a: true }, 'U');
  triIs('1 + a * 2 > 0', {}, 'U');
  triIs('a + b + c > 0', { a: 1, c: 1 }, 'U');
  triIs('-a < 0', {}, 'U');
  triIs('-a < 0', { a: 'x' }, 'U');
  assert.ok(matches('a + 1 IS NULL', {}));
  assert.ok(matches('a + 1 IS NOT NULL', { a: 1 }));
});

test('arithmetic on literal strings or booleans is refused', () => {
  refused("a + 'x' > 1", 5, 'numeric', 'string');
  refused("'x' * 2 = 1", 1, 'numeric');
  refused('-TRUE = 1', 2, 'numeric');
  refused('(a = 1) + 1 = 2', 1, 'numeric');
  refused('a = 1 + (b > 2)', 9, 'numeric');
});

// ------------------------------------------------------------------------------------------
// BETWEEN

test('BETWEEN is inclusive at both ends', () => {
  assert.ok(matches('age BETWEEN 15 AND 19', { age: 15 }));
  assert.ok(matches('age BETWEEN 15 AND 19', { age: 17 }));
  assert.ok(matches('age BETWEEN 15 AND 19', { age: 19 }));
  assert.not.ok(matches('age BETWEEN 15 AND 19', { age: 14 }));
  assert.not.ok(matches('age BETWEEN 15 AND 19', { age: 20 }));
  assert.ok(matches('age BETWEEN 15 AND 19', { age: 19.0 }));
  assert.not.ok(matches('age BETWEEN 15 AND 19', { age: 19.5 }));
  assert.ok(matches('age BETWEEN 15 AND 19', { age: 16n }));
  assert.ok(matches('age BETWEEN 1.5 AND 2.5', { age: 2 }));
  assert.not.ok(matches('age BETWEEN 19 AND 15', { age: 17 }), 'an empty range');
});

test('NOT BETWEEN', () => {
  assert.ok(matches('age NOT BETWEEN 15 AND 19', { age: 14 }));
  assert.ok(matches('age NOT BETWEEN 15 AND 19', { age: 20 }));
  assert.not.ok(matches('age NOT BETWEEN 15 AND 19', { age: 15 }));
  assert.not.ok(matches('age NOT BETWEEN 15 AND 19', { age: 19 }));
});

test('BETWEEN with expressions and followed by AND', () => {
  assert.ok(matches('a + 1 BETWEEN b - 1 AND b * 2', { a: 3, b: 2 }));
  assert.ok(matches('a BETWEEN 1 AND 10 AND b = 2', { a: 5, b: 2 }));
  assert.not.ok(matches('a BETWEEN 1 AND 10 AND b = 2', { a: 5, b: 3 }));
  assert.ok(matches('a BETWEEN -10 AND -1', { a: -5 }));
});

test('BETWEEN three-valued logic', () => {
  triIs('a BETWEEN 1 AND 3', {}, 'U');
  triIs('a NOT BETWEEN 1 AND 3', {}, 'U');
  triIs('a BETWEEN 1 AND 3', { a: 'x' }, 'U');
  triIs('a NOT BETWEEN 1 AND 3', { a: 'x' }, 'U');
  // a >= lo AND a <= hi: a FALSE half decides regardless of the UNKNOWN one
  triIs('a BETWEEN lo AND 3', { a: 5 }, 'F');
  triIs('a BETWEEN lo AND 3', { a: 2 }, 'U');
  triIs('a BETWEEN 1 AND hi', { a: 0 }, 'F');
  triIs('a NOT BETWEEN lo AND 3', { a: 5 }, 'T');
  triIs('a NOT BETWEEN lo AND 3', { a: 2 }, 'U');
});

test('BETWEEN refuses non-numeric literals and a missing AND', () => {
  refused("a BETWEEN 'a' AND 'z'", 11, 'numeric', 'lower bound');
  refused("a BETWEEN 1 AND 'z'", 17, 'upper bound');
  refused("'s' BETWEEN 1 AND 2", 1, 'BETWEEN');
  refused('a BETWEEN 1 OR 2', 13, 'expected AND', 'keyword OR');
  refused('a BETWEEN 1', 12, 'expected AND', 'end of input');
});

// ------------------------------------------------------------------------------------------
// IN

test('IN and NOT IN', () => {
  const sel = "Country IN ('UK', 'US', 'France')";
  assert.ok(matches(sel, { Country: 'UK' }));
  assert.ok(matches(sel, { Country: 'France' }));
  assert.not.ok(matches(sel, { Country: 'Peru' }));
  assert.not.ok(matches(sel, { Country: 'uk' }), 'case-sensitive');
  const notSel = "Country NOT IN ('UK', 'US', 'France')";
  assert.ok(matches(notSel, { Country: 'Peru' }));
  assert.not.ok(matches(notSel, { Country: 'US' }));
  assert.ok(matches("a IN ('x')", { a: 'x' }));
  assert.ok(matches("a IN ('it''s', '')", { a: "it's" }));
  assert.ok(matches("a IN ('it''s', '')", { a: '' }));
  assert.ok(matches("a IN('x','y')", { a: 'y' }));
  assert.ok(matches("a IN ('x', 'x')", { a: 'x' }), 'duplicates are harmless');
});

test('IN three-valued logic: missing or non-string is UNKNOWN', () => {
  triIs("a IN ('x', 'y')", {}, 'U');
  triIs("a NOT IN ('x', 'y')", {}, 'U');
  triIs("a IN ('1')", { a: 1 }, 'U');
  triIs("a NOT IN ('1')", { a: 1 }, 'U');
  triIs("a IN ('true')", { a: true }, 'U');
});

test('IN list size limit and syntax', () => {
  assert.is(MAX_IN_LIST_ITEMS, 1024);
  // 1024 distinct literals cannot fit in MAX_SELECTOR_LENGTH, so the limit is reached with short ones.
  const list = (n: number, last: string): string => `a IN (${[...Array<string>(n - 1).fill("''"), last].join(',')})`;
  const atLimit = list(MAX_IN_LIST_ITEMS, "'z'");
  assert.ok(atLimit.length <= MAX_SELECTOR_LENGTH);
  assert.ok(matches(atLimit, { a: 'z' }));
  assert.ok(matches(atLimit, { a: '' }));
  assert.not.ok(matches(atLimit, { a: 'y' }));
  const over = list(MAX_IN_LIST_ITEMS + 1, "'z'");
  assert.ok(over.length <= MAX_SELECTOR_LENGTH);
  refused(over, over.lastIndexOf("'z'") + 1, 'more than 1024');
  const many = `a IN (${Array.from({ length: 500 }, (_, i) => `'${i}'`).join(',')})`;
  assert.ok(matches(many, { a: '499' }));
  assert.not.ok(matches(many, { a: '500' }));
  refused('a IN ()', 7, 'string literal', "')'");
  refused('a IN (1, 2)', 7, 'string literal', 'number 1');
  refused("a IN ('x' 'y')", 11, "',' or ')'");
  refused("a IN ('x',)", 11, 'string literal');
  refused("a IN 'x'", 6, "'('");
  refused("a IN ('x'", 10, "',' or ')'", 'end of input');
  refused("5 IN ('x')", 1, 'string', 'IN');
});

// ------------------------------------------------------------------------------------------
// LIKE

test('LIKE with % and _', () => {
  assert.ok(matches("phone LIKE '12%3'", { phone: '123' }));
  assert.ok(matches("phone LIKE '12%3'", { phone: '12993' }));
  assert.not.ok(matches("phone LIKE '12%3'", { phone: '1234' }));
  assert.ok(matches("word LIKE 'l_se'", { word: 'lose' }));
  assert.not.ok(matches("word LIKE 'l_se'", { word: 'loose' }));
  assert.not.ok(matches("word LIKE 'l_se'", { word: 'lse' }));
  assert.ok(matches("w LIKE '%'", { w: '' }));
  assert.ok(matches("w LIKE '%'", { w: 'anything' }));
  assert.ok(matches("w LIKE '%%'", { w: 'x' }));
  assert.ok(matches("w LIKE ''", { w: '' }));
  assert.not.ok(matches("w LIKE ''", { w: 'x' }));
  assert.ok(matches("w LIKE '___'", { w: 'abc' }));
  assert.not.ok(matches("w LIKE '___'", { w: 'ab' }));
  assert.ok(matches("w LIKE 'a%b%c'", { w: 'aXXbYYc' }));
  assert.ok(matches("w LIKE 'a%b%c'", { w: 'abc' }));
  assert.not.ok(matches("w LIKE 'a%b%c'", { w: 'acb' }));
  assert.ok(matches("w LIKE '%ab%ab'", { w: 'abab' }));
  assert.ok(matches("w LIKE '%ab%ab'", { w: 'xxabyyab' }));
  assert.not.ok(matches("w LIKE '%ab%ab'", { w: 'aba' }));
  assert.ok(matches("w LIKE '%a_a%'", { w: 'xxabaxx' }));
  assert.not.ok(matches("w LIKE 'abc'", { w: 'ABC' }), 'case-sensitive');
});

test('LIKE: % and _ cover line breaks and _ is one code point', () => {
  assert.ok(matches("w LIKE 'a%b'", { w: 'a\n\r\nb' }));
  assert.ok(matches("w LIKE 'a_b'", { w: 'a\nb' }));
  assert.ok(matches("w LIKE 'a_b'", { w: 'a😀b' }));
  assert.ok(matches("w LIKE '😀%'", { w: '😀 smile' }));
});

test('LIKE: regular-expression metacharacters in the pattern are literal', () => {
  assert.not.ok(matches("w LIKE 'a.b%'", { w: 'axb' }));
  assert.not.ok(matches("w LIKE 'a.b%'", { w: 'axbc' }));
  assert.ok(matches("w LIKE 'a.b%'", { w: 'a.bc' }));
  const specials = ['.', '*', '+', '?', '^', '$', '(', ')', '[', ']', '{', '}', '|', '\\', '/', '-'];
  for (const c of specials) {
    const lit = c === "'" ? "''" : c;
    assert.ok(matches(`w LIKE 'x${lit}y%'`, { w: `x${c}yz` }), `pattern with ${c}`);
    assert.not.ok(matches(`w LIKE 'x${lit}y%'`, { w: 'xQyz' }), `pattern with ${c} against xQyz`);
  }
  assert.ok(matches("w LIKE 'a{2}'", { w: 'a{2}' }));
  assert.not.ok(matches("w LIKE 'a{2}'", { w: 'aa' }));
  assert.ok(matches("w LIKE '[ab]'", { w: '[ab]' }));
  assert.not.ok(matches("w LIKE '[ab]'", { w: 'a' }));
  assert.ok(matches("w LIKE 'a|b'", { w: 'a|b' }));
  assert.not.ok(matches("w LIKE 'a|b'", { w: 'a' }));
  assert.ok(matches("w LIKE '\\d'", { w: '\\d' }));
  assert.not.ok(matches("w LIKE '\\d'", { w: '1' }));
  assert.ok(matches("w LIKE '%it''s%'", { w: "yes it's here" }));
  assert.ok(matches("w LIKE '(1)'", { w: '(1)' }));
});

test('LIKE with ESCAPE', () => {
  assert.ok(matches("underscored LIKE '\\_%' ESCAPE '\\'", { underscored: '_foo' }));
  assert.not.ok(matches("underscored LIKE '\\_%' ESCAPE '\\'", { underscored: 'bar' }));
  assert.ok(matches("w LIKE '100!%' ESCAPE '!'", { w: '100%' }));
  assert.not.ok(matches("w LIKE '100!%' ESCAPE '!'", { w: '1000' }));
  assert.ok(matches("w LIKE 'a!!b' ESCAPE '!'", { w: 'a!b' }), 'the escape character escapes itself');
  assert.ok(matches("w LIKE '%!_%' ESCAPE '!'", { w: 'x_y' }));
  assert.not.ok(matches("w LIKE '%!_%' ESCAPE '!'", { w: 'xy' }));
  assert.ok(matches("w LIKE '!a' ESCAPE '!'", { w: 'a' }), 'escaping an ordinary character makes it literal');
  assert.ok(matches("w LIKE '.%' ESCAPE '.'", { w: '%' }), 'a regex metacharacter as the escape character');
  assert.not.ok(matches("w LIKE '.%' ESCAPE '.'", { w: 'x%' }));
  assert.ok(matches("w LIKE 'a$.b' ESCAPE '$'", { w: 'a.b' }));
  assert.ok(matches("w LIKE 'x%%' ESCAPE '%'", { w: 'x%' }), "'%' as escape: %% is a literal %");
  assert.not.ok(matches("w LIKE 'x%%' ESCAPE '%'", { w: 'xy' }));
  assert.ok(matches("w LIKE 'it''''s' ESCAPE ''''", { w: "it's" }), "quote as the escape character");
  assert.ok(matches("w LIKE '😀%' ESCAPE '😀'", { w: '%' }), 'an astral escape character');
  assert.ok(matches("w LIKE '\\%' ESCAPE '\\'", { w: '%' }));
});

test('NOT LIKE and LIKE three-valued logic', () => {
  assert.ok(matches("w NOT LIKE 'a%'", { w: 'ba' }));
  assert.not.ok(matches("w NOT LIKE 'a%'", { w: 'ab' }));
  triIs("w LIKE 'a%'", {}, 'U');
  triIs("w NOT LIKE 'a%'", {}, 'U');
  triIs("w LIKE '1%'", { w: 12 }, 'U');
  triIs("w NOT LIKE '1%'", { w: 12 }, 'U');
});

test('LIKE syntax errors', () => {
  refused('w LIKE a', 8, 'string literal pattern', 'identifier a');
  refused("w LIKE 'a' ESCAPE ''", 19, 'single character');
  refused("w LIKE 'a' ESCAPE 'ab'", 19, 'single character');
  refused("w LIKE 'a' ESCAPE x", 19, 'string literal after ESCAPE');
  refused("w LIKE 'ab!' ESCAPE '!'", 8, 'escape character');
  refused("5 LIKE 'a'", 1, 'string', 'LIKE');
  refused("w NOT = 'a'", 7, 'BETWEEN, LIKE or IN after NOT');
});

/** A straightforward dynamic-programming LIKE to check the RegExp translation against. */
function referenceLike(text: string, pattern: string): boolean {
  const t = Array.from(text);
  const p = Array.from(pattern);
  let row = new Array<boolean>(t.length + 1).fill(false);
  row[0] = true;
  for (const c of p) {
    const next = new Array<boolean>(t.length + 1).fill(false);
    if (c === '%') {
      let any = false;
      for (let j = 0; j <= t.length; j++) next[j] = any = any || row[j];
    } else {
      for (let j = 1; j <= t.length; j++) next[j] = row[j - 1] && (c === '_' || c === t[j - 1]);
    }
    row = next;
  }
  return row[t.length];
}

test('LIKE agrees with a reference matcher on random patterns', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pick = (alphabet: string, max: number): string => {
    let s = '';
    for (let i = rand(max + 1); i > 0; i--) s += alphabet[rand(alphabet.length)];
    return s;
  };
  for (let i = 0; i < 300; i++) {
    const pattern = pick('ab%_.', 7);
    const sel = compileSelector(`w LIKE '${pattern}'`);
    for (let j = 0; j < 20; j++) {
      const w = pick('ab.', 8);
      assert.is(sel.matches(lookupOf({ w })), referenceLike(w, pattern), `'${w}' LIKE '${pattern}'`);
    }
  }
});

test('LIKE does not backtrack catastrophically', () => {
  const pattern = '%a'.repeat(40) + '%b';
  const sel = compileSelector(`w LIKE '${pattern}'`);
  const text = 'a'.repeat(50_000);
  const started = Date.now();
  assert.not.ok(sel.matches(lookupOf({ w: text })));
  assert.ok(sel.matches(lookupOf({ w: text + 'b' })));
  const elapsed = Date.now() - started;
  assert.ok(elapsed < 2000, `took ${elapsed} ms`);
  // The same for a pattern of the maximum length.
  const long = '%a'.repeat(2000);
  const longSel = compileSelector(`w LIKE '${long.slice(0, MAX_SELECTOR_LENGTH - 20)}'`);
  const t2 = Date.now();
  longSel.matches(lookupOf({ w: 'a'.repeat(5000) + 'c' }));
  assert.ok(Date.now() - t2 < 2000, `took ${Date.now() - t2} ms`);
});

// ------------------------------------------------------------------------------------------
// IS NULL

test('IS NULL and IS NOT NULL', () => {
  assert.ok(matches('a IS NULL', {}));
  assert.ok(matches('a IS NULL', { a: null }));
  assert.ok(matches('a IS NULL', { a: undefined }));
  assert.not.ok(matches('a IS NULL', { a: 0 }));
  assert.not.ok(matches('a IS NULL', { a: '' }));
  assert.not.ok(matches('a IS NULL', { a: false }));
  assert.ok(matches('a IS NOT NULL', { a: 0 }));
  assert.ok(matches('a IS NOT NULL', { a: '' }));
  assert.ok(matches('a IS NOT NULL', { a: false }));
  assert.not.ok(matches('a IS NOT NULL', {}));
  // IS NULL is never UNKNOWN
  triIs('a IS NULL', {}, 'T');
  triIs('a IS NOT NULL', {}, 'F');
  triIs('(a > 1) IS NULL', {}, 'T');
  triIs('(a > 1) IS NULL', { a: 5 }, 'F');
  refused('a IS 5', 6, 'NULL');
  refused('a IS NOT TRUE', 10, 'NULL');
});

// ------------------------------------------------------------------------------------------
// Syntax errors

test('syntax errors name the column and what was expected', () => {
  refused('color = ', 9, 'expected an expression', 'end of input');
  refused("color = 'red", 9, 'unterminated string');
  refused("color = 'it''s", 9, 'unterminated string');
  refused('a = 1 )', 7, 'unbalanced');
  refused('(a = 1', 7, "')'", 'end of input');
  refused('((a = 1)', 9, "')'");
  refused('a = 1 b', 7, 'AND, OR or end of input', 'identifier b');
  refused('a = 1 = 2', 7, 'AND, OR or end of input', "'='");
  refused('a == 1', 3, "'='");
  refused('a != 1', 3, "'<>'");
  refused('a = 1 AND', 10, 'expression');
  refused('a = 1 OR OR b = 2', 10, 'keyword OR');
  refused('a # 1', 3, 'unexpected character', '#');
  refused('a = @', 5, '@');
  refused('a = ()', 6, 'expression');
  refused('a = 1,', 6, "','");
  refused('NOT', 4, 'expression');
  refused('a = 0x', 7, 'hexadecimal');
  refused('a = 1e', 7, 'exponent');
  refused('a = 1e+', 8, 'exponent');
  refused('a = 09', 6, 'octal', "'9'");
  refused('a = 1.2.3', 8, 'number .3');
});

test('non-boolean selectors and operands are refused', () => {
  refused('a + 1', 1, 'boolean', 'the selector');
  refused('5', 1, 'boolean');
  refused("'yes'", 1, 'boolean');
  refused("a = 1 AND 'x'", 11, 'boolean', 'AND');
  refused('1 OR a', 1, 'boolean', 'OR');
  refused('NOT 1', 5, 'boolean', 'NOT');
  refused('(a + 1)', 1, 'boolean');
});

test('long error tokens are clipped in the message', () => {
  const e = refused(`a = 1 '${'x'.repeat(500)}'`, 7);
  assert.ok(e.message.length < 200, e.message);
});

// ------------------------------------------------------------------------------------------
// Limits

test('selector length limit', () => {
  assert.is(MAX_SELECTOR_LENGTH, 4096);
  const base = 'a = 1';
  const atLimit = base + ' '.repeat(MAX_SELECTOR_LENGTH - base.length);
  assert.is(atLimit.length, MAX_SELECTOR_LENGTH);
  assert.ok(matches(atLimit, { a: 1 }));
  refused(atLimit + ' ', MAX_SELECTOR_LENGTH + 1, 'characters', '4096');
  refused('x'.repeat(1_000_000), MAX_SELECTOR_LENGTH + 1);
});

test('nesting depth limit: parentheses', () => {
  assert.is(MAX_SELECTOR_DEPTH, 64);
  const nest = (n: number): string => '('.repeat(n) + 'a = 1' + ')'.repeat(n);
  assert.ok(matches(nest(MAX_SELECTOR_DEPTH), { a: 1 }));
  refused(nest(MAX_SELECTOR_DEPTH + 1), MAX_SELECTOR_DEPTH + 1, 'nested', '64');
  refused(nest(2000), MAX_SELECTOR_DEPTH + 1, 'nested');
  const arith = 'a = ' + '('.repeat(MAX_SELECTOR_DEPTH) + '1' + ')'.repeat(MAX_SELECTOR_DEPTH);
  assert.ok(matches(arith, { a: 1 }));
});

test('nesting depth limit: NOT and unary sign chains', () => {
  const nots = (n: number): string => 'NOT '.repeat(n) + 'a';
  assert.ok(matches(nots(MAX_SELECTOR_DEPTH), { a: true }));
  assert.not.ok(matches(nots(MAX_SELECTOR_DEPTH - 1), { a: true }));
  refused(nots(MAX_SELECTOR_DEPTH + 1), 4 * MAX_SELECTOR_DEPTH + 1, 'nested');
  refused(nots(1000), 4 * MAX_SELECTOR_DEPTH + 1, 'nested');
  const negs = (n: number): string => 'a = ' + '- '.repeat(n) + '1';
  assert.ok(matches(negs(MAX_SELECTOR_DEPTH), { a: 1 }));
  refused(negs(MAX_SELECTOR_DEPTH + 1), 5 + 2 * MAX_SELECTOR_DEPTH, 'nested');
  refused('a = ' + '-('.repeat(40) + '1' + ')'.repeat(40), 5 + 2 * 32, 'nested');
});

test('long flat chains within the length limit do not overflow the stack', () => {
  const ors = Array.from({ length: 300 }, (_, i) => `a = ${i}`).join(' OR ');
  assert.ok(ors.length <= MAX_SELECTOR_LENGTH);
  assert.ok(matches(ors, { a: 299 }));
  assert.not.ok(matches(ors, { a: 300 }));
  const sum = 'a' + ' + a'.repeat(Math.floor((MAX_SELECTOR_LENGTH - 20) / 4)) + ' > 0';
  assert.ok(matches(sum, { a: 1 }));
  const sumTight = Array.from({ length: 2000 }, () => 'a').join('+') + ' > 0';
  assert.ok(matches(sumTight, { a: 1 }));
  const product = Array.from({ length: 2000 }, () => 'a').join('*') + ' = 1';
  assert.ok(matches(product, { a: 1 }));
  const ands = Array.from({ length: 680 }, () => 'a').join(' AND ');
  assert.ok(ands.length <= MAX_SELECTOR_LENGTH);
  assert.ok(matches(ands, { a: true }));
});

// ------------------------------------------------------------------------------------------
// Realistic selectors

test('realistic selectors', () => {
  const sel = compileSelector(
    "JMSType = 'car' AND color = 'blue' AND weight > 2500 AND (region IN ('EU', 'US') OR priority >= 7)",
  );
  const base = { JMSType: 'car', color: 'blue', weight: 3000, region: 'EU', priority: 1 };
  assert.ok(sel.matches(lookupOf(base)));
  assert.ok(sel.matches(lookupOf({ ...base, region: 'APAC', priority: 7 })));
  assert.not.ok(sel.matches(lookupOf({ ...base, region: 'APAC' })));
  assert.not.ok(sel.matches(lookupOf({ ...base, weight: 2500 })));
  assert.not.ok(sel.matches(lookupOf({ ...base, color: undefined })));
  const sel2 = compileSelector("(symbol LIKE 'IBM%' OR symbol = 'MSFT') AND price * 1.1 < 200 AND NOT halted");
  assert.ok(sel2.matches(lookupOf({ symbol: 'IBM.N', price: 150, halted: false })));
  assert.not.ok(sel2.matches(lookupOf({ symbol: 'IBM.N', price: 150 })), 'halted missing makes NOT halted UNKNOWN');
  assert.not.ok(sel2.matches(lookupOf({ symbol: 'ORCL', price: 10, halted: false })));
});

test.run();
