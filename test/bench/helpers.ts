// Helpers for the bench tests (not a test file itself).

import assert from 'node:assert/strict';

/** Minimal XML check: tags balance and nest; returns the element names in document order. */
export function parseTags(xml: string): { name: string; attrs: string; depth: number }[] {
  const out: { name: string; attrs: string; depth: number }[] = [];
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z][\w:-]*)([^>]*?)(\/?)>/g;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(xml)) !== null) {
    const between = xml.slice(last, m.index);
    assert.ok(!/[<>]/.test(between), `stray angle bracket in text: ${between}`);
    assert.ok(!/&(?!amp;|lt;|gt;|quot;|apos;)/.test(between), `bad entity in ${between}`);
    last = re.lastIndex;
    const [, close, name, attrs, selfClose] = m;
    if (close) {
      assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    } else {
      out.push({ name, attrs, depth: stack.length });
      if (!selfClose) stack.push(name);
    }
  }
  assert.deepEqual(stack, [], 'every element is closed');
  assert.equal(xml.slice(last).trim(), '', 'nothing after the root element');
  return out;
}
