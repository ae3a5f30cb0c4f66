// Tables as lines of text, drawn by cli-table3 as the project's other tables are: boxed, without
// colours, as in src/cli/migration-view.ts, with no rules between rows, which are many and
// short; or, for a list of names and long values, without rules at all, as in src/cli/image.ts.
// `livemig accel list` and the accelerator selftest's report use them.

import Table, { type HorizontalAlignment } from 'cli-table3';

/** Every rule character cli-table3 draws, as none. */
export const NO_RULES = Object.fromEntries(
  Object.keys(new Table().options.chars).map((k) => [k, '']),
);

/** The table of `rows` under `head` (none if empty), as lines that start with `indent`. */
export function tableLines(
  head: string[],
  rows: (string | number)[][],
  indent: string,
  colAligns: HorizontalAlignment[] = [],
): string[] {
  const t = new Table({ head, colAligns, style: { head: [], border: [], compact: true } });
  t.push(...rows);
  return indented(t, indent);
}

/** `rows` of a name and its value, in two columns without rules. */
export function listLines(rows: [string, string][], indent: string): string[] {
  const t = new Table({
    chars: { ...NO_RULES, middle: '  ' },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  t.push(...rows);
  return indented(t, indent);
}

function indented(t: Table.Table, indent: string): string[] {
  return t
    .toString()
    .split('\n')
    .map((line) => (indent + line).trimEnd());
}
