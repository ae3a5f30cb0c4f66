import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JsonStream, type JsonItem } from '../../src/control/json-stream.js';

function values(items: JsonItem[]): unknown[] {
  return items.map((i) => (i.ok ? i.value : { error: i.error }));
}

test('concatenated objects in one chunk are split', () => {
  const s = new JsonStream(1024);
  const { items } = s.push('{"a":1}{"b":[1,{"c":2}]}\n{"d":"}"}');
  assert.deepEqual(values(items), [{ a: 1 }, { b: [1, { c: 2 }] }, { d: '}' }]);
});

test('an object split at every possible point is reassembled', () => {
  const text = '{"execute": "migrate", "arguments": {"uri": "tcp:[::1]:4444 \\"{"}, "id": 7}';
  for (let cut = 1; cut < text.length; cut++) {
    const s = new JsonStream(1024);
    const first = s.push(text.slice(0, cut)).items;
    const second = s.push(text.slice(cut) + '\n').items;
    assert.equal(first.length, 0, `nothing complete after ${cut} chars`);
    assert.deepEqual(values(second), [JSON.parse(text)]);
  }
});

test('pretty-printed input spanning lines is one text', () => {
  const s = new JsonStream(1024);
  const { items } = s.push('{\n  "execute": "query-status",\n  "id": "x"\n}\n');
  assert.deepEqual(values(items), [{ execute: 'query-status', id: 'x' }]);
});

test('a malformed object is reported and the next one still parses', () => {
  const s = new JsonStream(1024);
  const { items } = s.push('{"execute": qmp}\n{"execute":"cont"}\n');
  assert.equal(items.length, 2);
  assert.equal(items[0].ok, false);
  assert.match((items[0] as { error: string }).error, /^JSON parse error, /);
  assert.deepEqual(items[1], { ok: true, value: { execute: 'cont' } });
});

test('a stray closing bracket is an error, not a hang', () => {
  const s = new JsonStream(1024);
  const { items } = s.push('}{"x":1}');
  assert.equal(items[0].ok, false);
  assert.deepEqual(items[1], { ok: true, value: { x: 1 } });
});

test('a newline inside a string ends a runaway string with an error', () => {
  const s = new JsonStream(1024);
  const { items } = s.push('{"execute": "oops\n{"execute":"stop"}\n');
  assert.equal(items[0].ok, false);
  assert.match((items[0] as { error: string }).error, /control character/);
  assert.deepEqual(items[1], { ok: true, value: { execute: 'stop' } });
});

test('top-level scalars are returned as values for the caller to reject', () => {
  const s = new JsonStream(1024);
  const { items } = s.push('42 "str" true\n');
  assert.deepEqual(values(items), [42, 'str', true]);
});

test('an unfinished text beyond the bound reports overflow', () => {
  const s = new JsonStream(16);
  assert.equal(s.push('{"a": "0123456').overflow, false);
  assert.equal(s.push('789abcdef"').overflow, true);
});

test('nesting deeper than the limit is an error', () => {
  const s = new JsonStream(1024, 4);
  const { items } = s.push('[[[[[1]]]]]');
  assert.equal(items[0].ok, false);
  assert.match((items[0] as { error: string }).error, /nesting/);
});
