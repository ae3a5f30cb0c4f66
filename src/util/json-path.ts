// Where a JSON pointer (RFC 6901, as ajv's errors give it) leads, as a person reads it: the
// keys it goes through, and the JSONPath form '/runs/0/mode' -> '$.runs[0].mode'.

/** The keys of `pointer`, unescaped ('' is the root: no keys). */
export function pointerKeys(pointer: string): string[] {
  return pointer === ''
    ? []
    : pointer
        .split('/')
        .slice(1)
        .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** '$.runs[0].mode' for the keys ['runs', '0', 'mode']. */
export function jsonPath(keys: readonly string[]): string {
  return '$' + keys.map((k) => (/^\d+$/.test(k) ? `[${k}]` : `.${k}`)).join('');
}
