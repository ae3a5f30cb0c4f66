// One SVG chart per scenario: CPU per thread, stacked, one bar per (peer, mode). Hand-written
// (no dependency): each bar is a <g class="bar"> holding one <rect class="seg"> per thread.
// The emulated device's engines are hatched, since DSA hardware would not spend that CPU.

import { median } from './stats.js';
import { compareThreads } from './summary.js';
import type { GroupSummary, RunRecord, ThreadRole } from './types.js';

export interface Segment {
  side: 'source' | 'destination';
  name: string;
  role: ThreadRole;
  ms: number;
}

export interface ChartBar {
  label: string;
  segments: Segment[];
}

const SHOWN: readonly ThreadRole[] = [
  'migration',
  'channel',
  'accel-completion',
  'emulated-engine',
];

function segmentsOf(r: RunRecord): Segment[] {
  const out: Segment[] = [];
  for (const side of ['source', 'destination'] as const) {
    const c = r.cpu[side];
    const shown = c.threads.filter((t) => SHOWN.includes(t.role)).sort(compareThreads);
    for (const t of shown) out.push({ side, name: t.name, role: t.role, ms: t.ms });
    if (c.processMs !== null) {
      const rest = c.processMs - shown.reduce((s, t) => s + t.ms, 0);
      out.push({ side, name: 'other threads', role: 'other', ms: Math.max(0, rest) });
    }
  }
  return out;
}

/** Bars for one scenario's groups: per segment, the median over the group's completed runs. */
export function chartBars(groups: GroupSummary[], runs: RunRecord[]): ChartBar[] {
  return groups.map((g) => {
    const rs = runs.filter(
      (r) =>
        r.scenario === g.scenario &&
        r.peer === g.peer &&
        r.mode === g.mode &&
        r.status === 'completed',
    );
    const keys: Segment[] = [];
    for (const r of rs)
      for (const s of segmentsOf(r))
        if (!keys.some((k) => k.side === s.side && k.name === s.name)) keys.push({ ...s, ms: 0 });
    return {
      label: g.label,
      segments: keys.map((k) => ({
        ...k,
        ms: median(
          rs.map((r) => segmentsOf(r).find((s) => s.side === k.side && s.name === k.name)?.ms ?? 0),
        ),
      })),
    };
  });
}

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const SOURCE_CHANNEL = ['#2e75b6', '#5b9bd5', '#9dc3e6', '#1f6fb0', '#7fb2e0', '#bcd7f0'];
const DEST_CHANNEL = ['#548235', '#70ad47', '#a9d18e', '#3d6b22', '#8cc46a', '#c5e0b4'];

function channelIndex(name: string): number {
  const m = /(\d+)$/.exec(name);
  return m ? Number(m[1]) : 0;
}

function colour(s: Segment): string {
  if (s.role === 'emulated-engine') return 'url(#engine-hatch)';
  if (s.side === 'destination') {
    return s.role === 'channel'
      ? DEST_CHANNEL[channelIndex(s.name) % DEST_CHANNEL.length]
      : '#d9ead3';
  }
  switch (s.role) {
    case 'migration':
      return '#1f3864';
    case 'channel':
      return SOURCE_CHANNEL[channelIndex(s.name) % SOURCE_CHANNEL.length];
    case 'accel-completion':
      return '#c55a11';
    default:
      return '#bfbfbf';
  }
}

function legendName(s: Segment): string {
  const n = s.role === 'emulated-engine' ? `${s.name} (emulated device)` : s.name;
  return `${s.side} ${n}`;
}

/** A step of 1, 2 or 5 times a power of ten giving about five gridlines. */
export function niceStep(max: number): number {
  if (!(max > 0)) return 1;
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

export function stackedBarSvg(title: string, bars: ChartBar[], note?: string): string {
  const left = 72;
  const top = 48;
  const plotH = 300;
  const barW = 64;
  const gap = 44;
  const plotW = Math.max(1, bars.length) * (barW + gap) + gap;
  const legend: Segment[] = [];
  for (const b of bars)
    for (const s of b.segments)
      if (!legend.some((l) => l.side === s.side && l.name === s.name)) legend.push(s);
  const sideOrder = (x: Segment): number => (x.side === 'source' ? 0 : 1);
  legend.sort((a, b) => sideOrder(a) - sideOrder(b) || compareThreads(a, b));
  const legendX = left + plotW + 24;
  const longest = Math.max(0, ...legend.map((l) => legendName(l).length));
  // Text widths are estimated (about 0.6 em per character): the SVG has no layout engine.
  const width = Math.ceil(Math.max(legendX + 30 + longest * 7.2, left + title.length * 9 + 20));
  const height = Math.max(top + plotH + 90, top + legend.length * 18 + 40);
  const totals = bars.map((b) => b.segments.reduce((s, x) => s + x.ms, 0));
  const step = niceStep(Math.max(1, ...totals));
  const yMax = Math.max(step, Math.ceil(Math.max(1, ...totals) / step) * step);
  const y = (ms: number): number => top + plotH - (ms / yMax) * plotH;
  const f = (x: number): string => x.toFixed(1);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
  );
  out.push(
    '<defs><pattern id="engine-hatch" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f2f2f2"/><line x1="0" y1="0" x2="0" y2="6" stroke="#7f7f7f" stroke-width="3"/></pattern></defs>',
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${left}" y="24" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);
  // Axis and gridlines.
  out.push('<g class="axis">');
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    out.push(
      `<line x1="${left}" y1="${f(y(v))}" x2="${left + plotW}" y2="${f(y(v))}" stroke="#e0e0e0"/>`,
      `<text x="${left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${v}</text>`,
    );
  }
  out.push(
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#000"/>`,
    `<text x="16" y="${top + plotH / 2}" transform="rotate(-90 16 ${top + plotH / 2})" text-anchor="middle">CPU (ms)</text>`,
  );
  out.push('</g>');
  bars.forEach((b, i) => {
    const x = left + gap + i * (barW + gap);
    out.push(`<g class="bar" data-label="${escapeXml(b.label)}">`);
    let acc = 0;
    for (const s of b.segments) {
      const y0 = y(acc + s.ms);
      const h = y(acc) - y0;
      out.push(
        `<rect class="seg" x="${x}" y="${f(y0)}" width="${barW}" height="${f(h)}" fill="${colour(s)}" stroke="#ffffff" stroke-width="0.5"><title>${escapeXml(`${legendName(s)}: ${s.ms.toFixed(1)} ms`)}</title></rect>`,
      );
      acc += s.ms;
    }
    out.push(
      `<text x="${x + barW / 2}" y="${f(y(acc) - 5)}" text-anchor="middle">${acc.toFixed(0)}</text>`,
    );
    const words = b.label.split(' ');
    const half = Math.ceil(words.length / 2);
    const lines = words.length > 2 ? [words.slice(0, half), words.slice(half)] : [words];
    lines.forEach((w, j) =>
      out.push(
        `<text x="${x + barW / 2}" y="${top + plotH + 18 + j * 14}" text-anchor="middle">${escapeXml(w.join(' '))}</text>`,
      ),
    );
    out.push('</g>');
  });
  out.push('<g class="legend">');
  legend.forEach((s, i) => {
    const ly = top + i * 18;
    out.push(
      `<rect x="${legendX}" y="${ly}" width="12" height="12" fill="${colour(s)}" stroke="#999"/>`,
      `<text x="${legendX + 18}" y="${ly + 10}">${escapeXml(legendName(s))}</text>`,
    );
  });
  out.push('</g>');
  if (note) {
    out.push(
      `<text x="${left}" y="${top + plotH + 62}" font-size="11" fill="#555">${escapeXml(note)}</text>`,
    );
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
