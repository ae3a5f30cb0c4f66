// Shared by the chardev tests: temporary directories, chardevs opened from spec text, and
// promises for a chardev's events and input, so that tests order on what happened, not on time.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openChardev, parseChardevSpec, type Chardev } from '../../src/chardev/index.js';
import type { ChardevEvent } from '../../src/chardev/chardev.js';

export function makeTmpDir(): { dir: string; path(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-chardev-'));
  return {
    dir,
    path: (name) => join(dir, name),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function open(text: string): Promise<Chardev> {
  return openChardev(parseChardevSpec(text));
}

/** Records a chardev's events; `next(event)` resolves on the next one not yet awaited. */
export class EventLog {
  readonly seen: ChardevEvent[] = [];
  private readonly awaited: Record<ChardevEvent, number> = { opened: 0, closed: 0 };
  private readonly waiters: { event: ChardevEvent; count: number; resolve(): void }[] = [];

  constructor(dev: Chardev) {
    dev.onEvent((event) => {
      this.seen.push(event);
      this.wake();
    });
  }

  /** The first call for 'opened' resolves on the first 'opened', the second on the second... */
  next(event: ChardevEvent): Promise<void> {
    const count = ++this.awaited[event];
    return new Promise((resolve) => {
      this.waiters.push({ event, count, resolve });
      this.wake();
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) {
      if (this.seen.filter((e) => e === w.event).length >= w.count) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }
}

/** Collects a chardev's input; `until(text)` resolves once it has all arrived. */
export class InputLog {
  text = '';
  private readonly waiting: { text: string; resolve(): void }[] = [];

  constructor(dev: Chardev) {
    dev.onInput((data) => {
      this.text += data.toString('latin1');
      for (const w of [...this.waiting]) {
        if (this.text.includes(w.text)) {
          this.waiting.splice(this.waiting.indexOf(w), 1);
          w.resolve();
        }
      }
    });
  }

  until(text: string): Promise<void> {
    if (this.text.includes(text)) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ text, resolve }));
  }
}

/** A turn of the event loop: what could have happened by now without outside I/O has. */
export function turn(): Promise<'pending'> {
  return new Promise((resolve) => setImmediate(() => resolve('pending')));
}
