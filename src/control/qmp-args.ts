// QAPI-style argument checking for QMP commands: a schema per command, and the error messages
// of QEMU's qobject-input visitor, so clients see the same words they would from QEMU.

import { genericError } from '../util/errors.js';

export type ArgType =
  | 'str'
  | 'int'
  | 'number'
  | 'bool'
  /** any JSON object */
  | 'dict'
  | 'any'
  | { readonly enum: readonly string[] }
  | { readonly list: ArgType }
  | { readonly struct: ArgSchema }
  /** the first alternative whose JSON type matches decides (QAPI alternates work that way) */
  | { readonly alternate: readonly ArgType[] };

export interface ArgSpec {
  readonly type: ArgType;
  readonly optional?: boolean;
}

export type ArgSchema = Readonly<Record<string, ArgSpec>>;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Throws a GenericError in QEMU's words for the first problem found. */
export function checkArguments(schema: ArgSchema, args: Record<string, unknown>): void {
  checkStruct(schema, args, '');
}

function checkStruct(schema: ArgSchema, value: Record<string, unknown>, prefix: string): void {
  // Members first, then leftovers: QEMU reports a missing member before an unexpected one.
  for (const [name, spec] of Object.entries(schema)) {
    const full = prefix + name;
    if (!Object.hasOwn(value, name)) {
      if (!spec.optional) throw genericError(`Parameter '${full}' is missing`);
      continue;
    }
    checkValue(spec.type, value[name], full);
  }
  for (const name of Object.keys(value)) {
    if (!Object.hasOwn(schema, name)) {
      throw genericError(`Parameter '${prefix + name}' is unexpected`);
    }
  }
}

function checkValue(type: ArgType, value: unknown, name: string): void {
  if (!matchesJsonType(type, value)) {
    throw genericError(`Invalid parameter type for '${name}', expected: ${expectedName(type)}`);
  }
  if (typeof type === 'string') return;
  if ('enum' in type) {
    if (!type.enum.includes(value as string)) {
      throw genericError(`Parameter '${name}' does not accept value '${String(value)}'`);
    }
  } else if ('list' in type) {
    (value as unknown[]).forEach((item, i) => checkValue(type.list, item, `${name}[${i}]`));
  } else if ('struct' in type) {
    checkStruct(type.struct, value as Record<string, unknown>, `${name}.`);
  } else {
    const alt = type.alternate.find((t) => matchesJsonType(t, value));
    if (alt) checkValue(alt, value, name);
  }
}

/** Only the JSON type: contents (enum values, members, items) are checked by checkValue. */
function matchesJsonType(type: ArgType, value: unknown): boolean {
  if (typeof type !== 'string') {
    if ('enum' in type) return typeof value === 'string';
    if ('list' in type) return Array.isArray(value);
    if ('struct' in type) return isPlainObject(value);
    return type.alternate.some((t) => matchesJsonType(t, value));
  }
  switch (type) {
    case 'str':
      return typeof value === 'string';
    case 'int':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'bool':
      return typeof value === 'boolean';
    case 'dict':
      return isPlainObject(value);
    case 'any':
      return true;
  }
}

function expectedName(type: ArgType): string {
  if (typeof type !== 'string') {
    if ('enum' in type) return 'string';
    if ('list' in type) return 'array';
    if ('struct' in type) return 'object';
    return type.alternate.map(expectedName).join(' or ');
  }
  const names = {
    str: 'string',
    int: 'integer',
    number: 'number',
    bool: 'boolean',
    dict: 'object',
    any: 'value',
  } as const;
  return names[type];
}
