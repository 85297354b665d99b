// Values for the fuzzer, derived from a JSON schema of the OpenAPI document:
// a valid value (to build requests that reach the route's handler) and the
// hostile values of the schema's type — the inputs that break services in
// practice, not polite random text:
// - strings: U+0000, lone and reversed surrogates, control characters, past
//   the length limits, blank;
// - ids (format uuid): the spellings a UUID parser or a JSON Schema format
//   accepts but the database may not (urn:uuid:, braces, no dashes, spaces);
// - cursors: well-formed base64url holding dates no database stores (year 0,
//   year −271821, +275760), impossible dates, foreign ids;
// - numbers: the edges of every number type, non-finite and non-numeric text;
// - objects: tens of thousands of properties, deep nesting, prototype keys;
// - arrays: huge, nested, of the wrong type.
// Nothing here knows which routes exist: a new route is fuzzed as declared.

export interface Schema {
  type?: string | string[]
  format?: string
  pattern?: string
  enum?: unknown[]
  anyOf?: Schema[]
  oneOf?: Schema[]
  properties?: Record<string, Schema>
  required?: string[]
  items?: Schema
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  default?: unknown
  example?: unknown
  examples?: unknown[]
  minProperties?: number
  additionalProperties?: boolean | Schema
}

export interface Hostile {
  /** What the value is, for the failure message. */
  label: string
  value: unknown
  /** For a whole body: its JSON text as sent, when it is not a value's JSON (nesting deeper than JSON.stringify goes). */
  raw?: string
}

/**
 * Percent-encodes text as a hostile client would: a lone surrogate as the three
 * bytes it would take if UTF-8 allowed it (`encodeURIComponent` throws on it,
 * and URLSearchParams quietly turns it into U+FFFD, which is fine text).
 */
export function percentEncode(text: string): string {
  let encoded = ''
  for (const character of text) {
    const unit = character.charCodeAt(0)
    if (character.length === 1 && unit >= 0xd800 && unit <= 0xdfff) {
      encoded += [0xe0 | (unit >> 12), 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)].map((byte) => `%${byte.toString(16).toUpperCase()}`).join('')
    } else {
      encoded += encodeURIComponent(character)
    }
  }
  return encoded
}

const UUID_SAMPLE = '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f'

const cursorOf = (text: string) => Buffer.from(text).toString('base64url')

/** The type of a schema: its `type`, or that of its literal alternatives. */
export function typeOf(schema: Schema): string | undefined {
  if (typeof schema.type === 'string') return schema.type
  if (Array.isArray(schema.type)) return schema.type.find((type) => type !== 'null')
  const alternatives = schema.anyOf ?? schema.oneOf
  if (alternatives?.length) return typeOf(alternatives[0] as Schema)
  if (schema.properties) return 'object'
  return undefined
}

/** Literal values a schema admits (enum or a union of single-value enums), if it is such a schema. */
export function literalsOf(schema: Schema): unknown[] | undefined {
  if (schema.enum) return schema.enum
  const alternatives = schema.anyOf ?? schema.oneOf
  if (alternatives?.every((alternative) => alternative.enum?.length === 1)) return alternatives.map((alternative) => alternative.enum?.[0])
  return undefined
}

export const isId = (schema: Schema) => schema.format === 'uuid'
export const isCursor = (name: string) => name === 'cursor'

/** Strings that no text column should ever receive, and some that must be handled but are fine. */
function hostileText(schema: Schema): Hostile[] {
  const max = schema.maxLength ?? 1000
  return [
    { label: 'U+0000 inside', value: 'before\u0000after' },
    { label: 'only U+0000', value: '\u0000' },
    { label: 'a lone high surrogate', value: 'x\uD800y' },
    { label: 'a lone low surrogate', value: 'x\uDC00y' },
    { label: 'a reversed surrogate pair', value: '\uDE00\uD83D' },
    { label: 'a trailing lone surrogate', value: `${'a'.repeat(Math.max(0, Math.min(max, 50) - 1))}\uD83D` },
    { label: 'control characters', value: '\u0001\u0007\u001b[2J\u007f' },
    { label: 'U+FFFF and U+FFFE', value: '\uFFFF\uFFFE' },
    { label: 'right-to-left override', value: '\u202Eevil' },
    { label: 'empty', value: '' },
    { label: 'blank', value: ' \t\n ' },
    { label: 'one past the length limit', value: 'a'.repeat(max + 1) },
    { label: 'a hundred thousand characters', value: 'é'.repeat(100_000) },
    { label: 'SQL', value: "' OR 1=1; --" },
    { label: 'a percent sequence', value: '%00%FF%C3%28' }
  ]
}

function hostileId(): Hostile[] {
  return [
    { label: 'urn:uuid: spelling', value: `urn:uuid:${UUID_SAMPLE}` },
    { label: 'braced', value: `{${UUID_SAMPLE}}` },
    { label: 'without dashes', value: UUID_SAMPLE.replace(/-/g, '') },
    { label: 'with a leading space', value: ` ${UUID_SAMPLE}` },
    { label: 'with a trailing U+0000', value: `${UUID_SAMPLE}\u0000` },
    { label: 'a non-hex digit', value: `${UUID_SAMPLE.slice(0, -1)}g` },
    { label: 'the nil UUID', value: '00000000-0000-0000-0000-000000000000' },
    { label: 'the max UUID', value: 'ffffffff-ffff-ffff-ffff-ffffffffffff' },
    { label: 'a number', value: '42' },
    { label: 'a path', value: '../../etc/passwd' }
  ]
}

function hostileCursor(): Hostile[] {
  return [
    { label: 'a cursor of year 0', value: cursorOf(`0000-01-01T00:00:00.000Z|${UUID_SAMPLE}`) },
    { label: 'a cursor of year -271821', value: cursorOf(`-271821-04-20T00:00:00.000Z|${UUID_SAMPLE}`) },
    { label: 'a cursor of year +275760', value: cursorOf(`+275760-09-13T00:00:00.000Z|${UUID_SAMPLE}`) },
    { label: 'a cursor of 4713 BC', value: cursorOf(`-004713-11-24T00:00:00.000Z|${UUID_SAMPLE}`) },
    { label: 'a cursor of February 30th', value: cursorOf(`2026-02-30T00:00:00.000Z|${UUID_SAMPLE}`) },
    { label: 'a cursor of a date only', value: cursorOf(`2026-01-01|${UUID_SAMPLE}`) },
    { label: 'a cursor of a number', value: cursorOf(`8640000000000000|${UUID_SAMPLE}`) },
    { label: 'a cursor with a urn:uuid id', value: cursorOf(`2026-01-01T00:00:00.000Z|urn:uuid:${UUID_SAMPLE}`) },
    { label: 'a cursor with three parts', value: cursorOf(`2026-01-01T00:00:00.000Z|${UUID_SAMPLE}|x`) },
    { label: 'a cursor of U+0000', value: cursorOf('\u0000') },
    { label: 'a cursor of invalid UTF-8', value: Buffer.from([0xff, 0xfe, 0x7c]).toString('base64url') }
  ]
}

function hostileNumber(): Hostile[] {
  return [
    { label: '-1', value: -1 },
    { label: '0', value: 0 },
    { label: '-0', value: -0 },
    { label: '1.5', value: 1.5 },
    { label: '2^31', value: 2 ** 31 },
    { label: '2^53 + 2', value: 2 ** 53 + 2 },
    { label: '1e308', value: 1e308 },
    { label: '-1e308', value: -1e308 },
    { label: 'the text 1e309', value: '1e309' },
    { label: 'the text NaN', value: 'NaN' },
    { label: 'the text Infinity', value: 'Infinity' },
    { label: 'the text 0x10', value: '0x10' },
    { label: 'a numeric string', value: '5' },
    { label: 'null', value: null }
  ]
}

function hostileBoolean(): Hostile[] {
  return [
    { label: 'the text true', value: 'true' },
    { label: '1', value: 1 },
    { label: 'null', value: null }
  ]
}

/** The JSON text of `valid` with a property nested `depth` objects deep. */
function nested(valid: Record<string, unknown>, depth: number): string {
  const inner = `${'{"a":'.repeat(depth)}"bottom"${'}'.repeat(depth)}`
  const rest = JSON.stringify(valid).slice(1)
  return `{"extra":${inner}${rest === '}' ? '' : ','}${rest}`
}

/** An object with `count` unknown properties. */
function wide(count: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${i}`, i]))
}

/** Hostile values for a whole object (a body). */
export function hostileObject(valid: Record<string, unknown>): Hostile[] {
  return [
    { label: '15,000 unknown properties', value: { ...valid, ...wide(15_000) } },
    { label: 'nesting 2,500 deep', value: undefined, raw: nested(valid, 2_500) },
    { label: 'nesting 40,000 deep', value: undefined, raw: nested(valid, 40_000) },
    { label: 'a __proto__ property', value: undefined, raw: `{"__proto__": {"isAdmin": true}${Object.keys(valid).length > 0 ? `, ${JSON.stringify(valid).slice(1)}` : '}'}` },
    { label: 'a constructor.prototype property', value: { ...valid, constructor: { prototype: { isAdmin: true } } } },
    { label: 'an array', value: [valid] },
    { label: 'null', value: null },
    { label: 'a string', value: 'body' },
    { label: 'an empty object', value: {} }
  ]
}

function hostileArray(): Hostile[] {
  return [
    { label: '100,000 elements', value: Array.from({ length: 100_000 }, () => 'users:read') },
    { label: 'nested arrays', value: [[['users:read']]] },
    { label: 'numbers', value: [1, 2, 3] },
    { label: 'U+0000 elements', value: ['\u0000'] },
    { label: 'not an array', value: 'users:read' }
  ]
}

/** The hostile values of a field, by its schema (and name, for cursors). */
export function hostileValues(schema: Schema, name: string): Hostile[] {
  if (isCursor(name)) return [...hostileCursor(), ...hostileText(schema)]
  if (isId(schema)) return [...hostileId(), ...hostileText(schema).slice(0, 3)]
  switch (typeOf(schema)) {
    case 'string':
      return literalsOf(schema) ? [...hostileText(schema).slice(0, 5), { label: 'an unknown literal', value: 'no-such-value' }] : hostileText(schema)
    case 'integer':
    case 'number':
      return hostileNumber()
    case 'boolean':
      return hostileBoolean()
    case 'array':
      return hostileArray()
    case 'object':
      return hostileObject({})
    default:
      return hostileText(schema).slice(0, 3)
  }
}
