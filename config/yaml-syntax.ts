/**
 * Parser for configurations written in YAML or JSON.
 *
 * Both go through the `yaml` package (JSON is YAML), which gives every node a source offset, so
 * entity and attribute line numbers work the same in both. Accepted shapes:
 *
 * ```yaml
 * # a list of single-key maps, in file order
 * - router: {mode: interior}
 * - listener: {port: 5672}
 * ```
 * ```json
 * [["router", {"mode": "interior"}], ["listener", {"port": 5672}]]
 * ```
 * (qdrouterd's own JSON config form), or a map from entity type to one entity or a list of them:
 * ```yaml
 * router: {mode: interior}
 * listener:
 *   - {port: 5672}
 *   - {port: 5673}
 * ```
 *
 * Entity types and attribute names are camelCased the same way as in the conf syntax. For `.json`
 * files the JSON subset is enforced on scalars (strings double-quoted) so a file that qdrouterd
 * reads as JSON reads the same here; whole-line `#` comments, which qdrouterd strips from JSON
 * configs, are accepted because YAML accepts them. YAML anchors, aliases and `<<` merge keys work.
 */

import {
  CST,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  parseDocument,
  type Document,
  type Node as YamlNode,
  type ParsedNode,
  type Scalar,
  type YAMLMap,
} from 'yaml';
import { ConfigError, MAX_VALUE_NESTING_DEPTH, quote } from './errors';
import { qdrouterdCamelCase, type RawAttribute, type RawEntity, type RawValue } from './raw-entity';

/** The two syntaxes this module reads. */
export type StructuredSyntax = 'yaml' | 'json';

/** Node visits allowed while expanding aliases; a few thousand-fold blow-up of a 4 MiB file is refused. */
const MAX_NODE_VISITS = 2_000_000;
/**
 * Deepest flow nesting ("[[[" or "{{{"), or most block collections opened on one line ("- - -"),
 * before the document is parsed. Entities need 3 levels and values at most
 * MAX_VALUE_NESTING_DEPTH more; the margin keeps odd but valid layouts working.
 */
const MAX_STRUCTURE_DEPTH = 2 * MAX_VALUE_NESTING_DEPTH;

/**
 * Parses YAML or JSON text into entities. Pure; line numbers are 1-based.
 * @param text the file's text.
 * @param file the file name used in error messages.
 * @param syntax `json` additionally requires JSON's scalar forms.
 * @throws ConfigError `ERR_CONFIG_SYNTAX` for malformed text or an unexpected shape.
 */
export function parseStructuredSyntax(text: string, file: string, syntax: StructuredSyntax): RawEntity[] {
  const source = text.replace(/^\uFEFF/, '');
  checkStructureDepth(source, file);
  const lineCounter = new LineCounter();
  // prettyErrors off: formatting error context for pathological input (deep nesting) can
  // exhaust memory inside the library. uniqueKeys off: duplicates are reported after
  // camelCasing, with both lines, the same way for every syntax.
  const document = parseDocument(source, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: false,
    version: '1.2',
  });
  const reader = new DocumentReader(document, source, file, syntax, lineCounter);
  const firstError = document.errors[0];
  if (firstError !== undefined) {
    throw new ConfigError('ERR_CONFIG_SYNTAX', file, reader.lineAt(firstError.pos[0]), `${syntaxName(syntax)}: ${firstError.message}`);
  }
  return reader.entities();
}

/**
 * The yaml package needs memory in proportion to nesting depth: a few MiB of "[[[[" exhaust the
 * heap and abort the process, which no try/catch can stop. Its lexer is cheap and streams, so
 * the depth is measured on the tokens first.
 */
function checkStructureDepth(source: string, file: string): void {
  let line = 1;
  let flowDepth = 0;
  let blockCollectionsOnLine = 0;
  for (const token of new Lexer().lex(source)) {
    let tooDeep = false;
    switch (CST.tokenType(token)) {
      case 'flow-map-start':
      case 'flow-seq-start':
        tooDeep = ++flowDepth > MAX_STRUCTURE_DEPTH;
        break;
      case 'flow-map-end':
      case 'flow-seq-end':
        flowDepth--;
        break;
      case 'seq-item-ind':
      case 'explicit-key-ind':
        tooDeep = ++blockCollectionsOnLine > MAX_STRUCTURE_DEPTH;
        break;
      case 'newline':
        blockCollectionsOnLine = 0;
        break;
    }
    if (tooDeep) {
      throw new ConfigError('ERR_CONFIG_SYNTAX', file, line, `lists and maps nest more than ${MAX_STRUCTURE_DEPTH} levels deep`);
    }
    for (let newline = token.indexOf('\n'); newline !== -1; newline = token.indexOf('\n', newline + 1)) line++;
  }
}

function syntaxName(syntax: StructuredSyntax): string {
  return syntax === 'json' ? 'invalid JSON' : 'invalid YAML';
}

class DocumentReader {
  private nodeVisits = 0;
  /** Line of the attribute being read, so that an alias blow-up is reported where it is used. */
  private attributeLine: number | undefined;

  constructor(
    private readonly document: Document.Parsed,
    private readonly source: string,
    private readonly file: string,
    private readonly syntax: StructuredSyntax,
    private readonly lineCounter: LineCounter,
  ) {}

  lineAt(offset: number): number {
    return this.lineCounter.linePos(offset).line;
  }

  entities(): RawEntity[] {
    const root = this.document.contents;
    if (root === null || (isScalar(root) && root.value === null)) return [];
    if (this.syntax === 'json' && !((isMap(root) || isSeq(root)) && root.flow === true)) {
      this.fail(root, 'a JSON config must be an array [["router", {...}], ...] or an object {"router": {...}, ...}');
    }
    const top = this.resolve(root);
    if (isSeq(top)) return top.items.map((item) => this.listEntry(item as YamlNode | null));
    if (isMap(top)) return top.items.flatMap((pair) => this.mapEntry(pair.key as YamlNode, pair.value as YamlNode | null));
    return this.fail(top, 'expected a list of entities (- router: {...}) or a map of entity types (router: {...})');
  }

  /** An item of the top-level list: `{type: {attributes}}` or `[type, {attributes}]`. */
  private listEntry(itemNode: YamlNode | null): RawEntity {
    const shapeHint = 'each list entry must be a single-key map such as {listener: {port: 5672}} or a pair such as ["listener", {"port": 5672}]';
    if (itemNode === null) return this.fail(undefined, shapeHint);
    const item = this.resolve(itemNode);
    if (isMap(item) && item.items.length === 1) {
      const pair = item.items[0]!;
      return this.entity(pair.key as YamlNode, pair.value as YamlNode | null);
    }
    if (isSeq(item) && (item.items.length === 1 || item.items.length === 2)) {
      return this.entity(item.items[0] as YamlNode, (item.items[1] ?? null) as YamlNode | null);
    }
    return this.fail(item, shapeHint);
  }

  /** A top-level map entry: `type: {attributes}` or `type: [{attributes}, ...]`. */
  private mapEntry(keyNode: YamlNode, valueNode: YamlNode | null): RawEntity[] {
    const value = valueNode === null ? null : this.resolve(valueNode);
    if (value !== null && isSeq(value)) {
      const type = this.entityType(keyNode);
      return value.items.map((item) => this.entityFromAttributes(type, item as YamlNode | null, item as YamlNode));
    }
    return [this.entity(keyNode, valueNode)];
  }

  private entity(typeNode: YamlNode, attributesNode: YamlNode | null): RawEntity {
    return this.entityFromAttributes(this.entityType(typeNode), attributesNode, typeNode);
  }

  private entityType(typeNode: YamlNode): string {
    const type = this.resolve(typeNode);
    if (!isScalar(type) || typeof type.value !== 'string' || type.value === '') {
      return this.fail(type, `an entity type must be a name such as "listener", got ${this.describe(type)}`);
    }
    this.checkJsonScalar(type);
    return type.value;
  }

  private entityFromAttributes(type: string, attributesNode: YamlNode | null, locationNode: YamlNode): RawEntity {
    const line = this.lineOf(locationNode);
    const attributes = attributesNode === null ? null : this.resolve(attributesNode);
    if (attributes === null || (isScalar(attributes) && attributes.value === null)) {
      return { type, line, attributes: [] };
    }
    if (!isMap(attributes)) {
      return this.fail(attributes, `the attributes of "${type}" must be a map of name: value, got ${this.describe(attributes)}`);
    }
    return { type, line, attributes: this.attributes(attributes) };
  }

  private attributes(map: YAMLMap): RawAttribute[] {
    const explicit: RawAttribute[] = [];
    const mergeSources: YamlNode[] = [];
    for (const pair of map.items) {
      const keyNode = this.resolve(pair.key as YamlNode);
      if (this.syntax === 'yaml' && isScalar(keyNode) && keyNode.value === '<<' && keyNode.type === 'PLAIN') {
        mergeSources.push(pair.value as YamlNode);
        continue;
      }
      explicit.push(this.attribute(keyNode, pair.value as YamlNode | null));
    }
    if (mergeSources.length === 0) return explicit;
    // YAML merge semantics: explicit keys win over merged ones, earlier merge sources over later.
    const seen = new Set(explicit.map((attribute) => qdrouterdCamelCase(attribute.name)));
    const merged: RawAttribute[] = [];
    for (const sourceNode of mergeSources) {
      const source = this.resolve(sourceNode);
      const sourceMaps = isSeq(source) ? source.items.map((item) => this.resolve(item as YamlNode)) : [source];
      for (const sourceMap of sourceMaps) {
        if (!isMap(sourceMap)) return this.fail(sourceMap, `"<<" merges maps only, got ${this.describe(sourceMap)}`);
        for (const attribute of this.attributes(sourceMap)) {
          const name = qdrouterdCamelCase(attribute.name);
          if (seen.has(name)) continue;
          seen.add(name);
          merged.push(attribute);
        }
      }
    }
    return [...explicit, ...merged];
  }

  private attribute(keyNode: YamlNode, valueNode: YamlNode | null): RawAttribute {
    if (!isScalar(keyNode) || typeof keyNode.value !== 'string' || keyNode.value === '') {
      return this.fail(keyNode, `an attribute name must be a name such as "port", got ${this.describe(keyNode)}`);
    }
    this.checkJsonScalar(keyNode);
    const line = this.lineOf(keyNode);
    this.attributeLine = line;
    const value = valueNode === null ? null : this.value(valueNode, 1);
    this.attributeLine = undefined;
    return { name: keyNode.value, value, line };
  }

  private value(node: YamlNode, depth: number): RawValue {
    if (depth > MAX_VALUE_NESTING_DEPTH) this.fail(node, `values nest more than ${MAX_VALUE_NESTING_DEPTH} levels deep`);
    const resolved = this.resolve(node);
    if (isScalar(resolved)) {
      this.checkJsonScalar(resolved);
      const value: unknown = resolved.value;
      if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
      if (typeof value === 'number') {
        if (!Number.isFinite(value)) this.fail(resolved, `${quote(resolved.source)} is not a finite number`);
        return value;
      }
      return this.fail(resolved, `unsupported value ${this.describe(resolved)}; use a string, number or boolean`);
    }
    if (isSeq(resolved)) return resolved.items.map((item) => this.value(item as YamlNode, depth + 1));
    if (isMap(resolved)) {
      const entries: { [key: string]: RawValue } = {};
      for (const pair of resolved.items) {
        const key = this.resolve(pair.key as YamlNode);
        if (!isScalar(key) || (typeof key.value !== 'string' && typeof key.value !== 'number')) {
          return this.fail(key, `map keys must be strings, got ${this.describe(key)}`);
        }
        this.checkJsonScalar(key);
        const name = String(key.value);
        if (Object.prototype.hasOwnProperty.call(entries, name)) this.fail(key, `key ${quote(name)} is set twice in this map`);
        entries[name] = pair.value === null ? null : this.value(pair.value as YamlNode, depth + 1);
      }
      return entries;
    }
    return this.fail(resolved, `unsupported value ${this.describe(resolved)}`);
  }

  /** Follows aliases, counting visits so that alias fan-out cannot take unbounded time and memory. */
  private resolve(node: YamlNode): YamlNode {
    let current: YamlNode | undefined = node;
    for (let hops = 0; isAlias(current); hops++) {
      const target: YamlNode | undefined = current.resolve(this.document);
      if (target === undefined || hops > 100) return this.fail(current, `alias *${current.source} refers to no anchor`);
      current = target;
    }
    if (++this.nodeVisits > MAX_NODE_VISITS) {
      throw new ConfigError(
        'ERR_CONFIG_TOO_LARGE',
        this.file,
        this.attributeLine ?? this.lineOf(node),
        `aliases expand to more than ${MAX_NODE_VISITS} values; the configuration is too large`,
      );
    }
    return current;
  }

  /** In a .json file a string must be double-quoted: YAML's plain and single-quoted forms are not JSON. */
  private checkJsonScalar(scalar: Scalar): void {
    if (this.syntax !== 'json') return;
    const isString = typeof scalar.value === 'string';
    if ((isString && scalar.type !== 'QUOTE_DOUBLE') || (!isString && scalar.type !== 'PLAIN')) {
      this.fail(scalar, `${this.sourceText(scalar)} is not a JSON value; JSON strings are written in double quotes`);
    }
  }

  /** The node as written, for messages. */
  private sourceText(node: YamlNode): string {
    const range = (node as ParsedNode).range;
    const written = range === undefined || range === null ? String(node) : this.source.slice(range[0], range[1]);
    return written.length > 80 ? written.slice(0, 77) + '...' : written;
  }

  private lineOf(node: YamlNode | undefined): number {
    const range = (node as ParsedNode | undefined)?.range;
    return range === undefined || range === null ? 1 : this.lineAt(range[0]);
  }

  private describe(node: YamlNode): string {
    if (isScalar(node)) return node.value === null ? 'nothing' : quote(node.value instanceof Uint8Array ? '<binary>' : node.value);
    if (isSeq(node)) return 'a list';
    if (isMap(node)) return 'a map';
    return 'an unsupported node';
  }

  private fail(node: YamlNode | undefined, reason: string): never {
    throw new ConfigError('ERR_CONFIG_SYNTAX', this.file, this.lineOf(node), reason);
  }
}
