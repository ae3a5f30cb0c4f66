// `livemig image fetch` and `livemig image info`: the PC machine's guest image (a Debian i386
// kernel, a busybox initramfs, SeaBIOS) in the per-user cache. Progress goes to stderr (a bar
// per download on a TTY, one line per step otherwise); the result goes to stdout.

import type { SingleBar } from 'cli-progress';
import { join } from 'node:path';
import Table from 'cli-table3';
import { checkSuite, DEFAULT_MIRROR, DEFAULT_SUITE } from '../image/archive.js';
import {
  describeGuestImage,
  imageDirFor,
  fetchGuestImage,
  type FetchProgress,
  type GuestImage,
} from '../image/guest-image.js';
import type { ImagePart } from '../image/manifest.js';
import { formatBytes } from '../util/size.js';
import { NO_RULES } from '../util/table.js';
import { progressBar } from './progress-bar.js';

export { DEFAULT_MIRROR, DEFAULT_SUITE };

export interface ImageCliOptions {
  mirror?: string;
  suite?: string;
  cacheDir?: string;
  force?: boolean;
  update?: boolean;
  json?: boolean;
}

function imageDirOf(o: ImageCliOptions): string {
  return imageDirFor(checkSuite(o.suite ?? DEFAULT_SUITE), o.cacheDir);
}

export async function imageFetchCommand(o: ImageCliOptions): Promise<number> {
  const t0 = performance.now();
  const view = fetchProgressPrinter();
  let image: GuestImage;
  try {
    image = await fetchGuestImage({
      dir: imageDirOf(o),
      mirror: o.mirror,
      suite: o.suite,
      force: o.force,
      update: o.update,
      onProgress: view.update,
    });
  } finally {
    view.stop();
  }
  process.stderr.write(`image ready in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write((o.json ? JSON.stringify(imageJson(image)) : formatImage(image)) + '\n');
  return 0;
}

export function imageInfoCommand(o: ImageCliOptions): number {
  const dir = imageDirOf(o);
  const r = describeGuestImage(dir);
  if (!r.image) {
    const why = r.problems.length ? ` (${r.problems.join('; ')})` : '';
    process.stderr.write(
      `livemig: no ${r.problems.length ? 'complete ' : ''}guest image in ${dir}${why}: ` +
        'run `livemig image fetch`\n',
    );
    return 1;
  }
  process.stdout.write((o.json ? JSON.stringify(imageJson(r.image)) : formatImage(r.image)) + '\n');
  return 0;
}

/** The image as one JSON object: the paths, then the manifest. */
export function imageJson(image: GuestImage): Record<string, unknown> {
  return {
    dir: image.dir,
    kernel: image.kernel,
    initrd: image.initrd,
    bios: image.bios,
    vgaBios: image.vgaBios,
    busybox: partPath(image, image.manifest.parts.busybox),
    manifest: image.manifest,
  };
}

function partPath(image: GuestImage, part: ImagePart): string {
  return part.file ? join(image.dir, part.file) : part.path!;
}

/** Where everything is, for a person. */
export function formatImage(image: GuestImage): string {
  const m = image.manifest;
  const p = m.parts;
  const from = (part: ImagePart | null) =>
    !part
      ? ''
      : part.source === 'system'
        ? `the system's${part.package ? ` ${part.package} ${part.version}` : ''}, `
        : part.package
          ? `${part.package} ${part.version}, `
          : '';
  const rows: [string, string, string][] = [
    ['kernel', image.kernel, `${from(p.kernel)}sha256 ${p.kernel.sha256}`],
    [
      'initrd',
      image.initrd,
      `busybox and livemig's /init (/init sha256 ${p.initrd.initSha256}), sha256 ${p.initrd.sha256}`,
    ],
    ['bios', image.bios, biosLine(image.bios, p.bios)],
    ['vga bios', image.vgaBios ?? 'none', image.vgaBios ? biosLine(image.vgaBios, p.vgaBios) : ''],
    ['busybox', partPath(image, p.busybox), `${from(p.busybox)}sha256 ${p.busybox.sha256}`],
  ];
  // A table without rules: the part's name, then its path with what it is below.
  const t = new Table({
    chars: { ...NO_RULES, left: '  ', middle: ' ' },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const [name, path, detail] of rows) t.push([name, detail ? `${path}\n${detail}` : path]);
  t.push(['archive', `${m.mirror} (${m.signature})`]);
  const head = `Guest image in ${image.dir} (Debian ${m.suite} ${m.architecture}, kernel ${m.kernelRelease})`;
  return [
    head,
    ...t
      .toString()
      .split('\n')
      .map((l) => l.trimEnd()),
  ].join('\n');

  function biosLine(path: string, part: ImagePart | null): string {
    if (part && (part.file ? join(image.dir, part.file) : part.path) === path) {
      return `${from(part)}sha256 ${part.sha256}`;
    }
    return "the system's SeaBIOS";
  }
}

/**
 * Renders FetchProgress on `out`: on a TTY a cli-progress bar per download (bytes, rate);
 * otherwise, and for the other steps, one line per finished step. `update` is the onProgress
 * callback; `stop` ends a bar left running by an error.
 */
export function fetchProgressPrinter(out: NodeJS.WriteStream = process.stderr): {
  update: (p: FetchProgress) => void;
  stop: () => void;
} {
  let bar: SingleBar | null = null;
  let started = 0;
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  const update = (p: FetchProgress) => {
    if (p.step === 'download') {
      const secs = (performance.now() - started) / 1000;
      const values = {
        text: p.text,
        got: formatBytes(p.done),
        size: p.total === null ? '?' : formatBytes(p.total),
        rate: secs > 0 && p.done > 0 ? `${formatBytes(p.done / secs)}/s` : '-',
      };
      if (p.phase === 'start') {
        started = performance.now();
        stop();
        bar = progressBar(' {text} |{bar}| {percentage}% | {got} / {size} | {rate}', { out });
        bar?.start(p.total ?? 1, 0, values);
        return;
      }
      bar?.setTotal(p.total ?? Math.max(p.done, 1));
      bar?.update(p.done, values);
      if (p.phase === 'end') {
        if (bar)
          stop(); // the finished bar stays on screen as the step's line
        else
          out.write(
            `downloaded ${p.text}: ${values.got} in ${secs.toFixed(1)} s, ${values.rate}\n`,
          );
      }
      return;
    }
    if (p.phase !== 'end') return;
    stop();
    const done = { index: '', extract: 'extracted ', initrd: 'built ', note: '' }[p.step];
    out.write(`${done}${p.text}\n`);
  };
  return { update, stop };
}
