// The JSON Schema (draft 2020-12 subset) of the file `livemig bench --json FILE` writes, and a
// small validator for the subset it uses: type, enum, const, required, properties,
// additionalProperties, items, minimum, $ref to #/$defs. docs/bench-schema.md shows the same
// schema (a test checks that they are equal) and explains every field.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonSchema = { [k: string]: Json };

const num = { type: 'number' };
const nonNeg = { type: 'number', minimum: 0 };
const int = { type: 'integer', minimum: 0 };
const str = { type: 'string' };
const nullableNum = { type: ['number', 'null'] };
const nullableStr = { type: ['string', 'null'] };
const obj = { type: 'object' };

function object(props: { [k: string]: Json }, optional: string[] = []): JsonSchema {
  return {
    type: 'object',
    required: Object.keys(props).filter((k) => !optional.includes(k)),
    properties: props,
    additionalProperties: false,
  };
}

const stat = { $ref: '#/$defs/stat' };
const scenario = { enum: ['A', 'B', 'idle', 'busy', 'lossless'] };
const check = { enum: ['ok', 'failed', 'not-checked'] };
const mode = { enum: ['baseline', 'offload', 'legacy', 'none'] };
const peer = { enum: ['livemig', 'qemu'] };
const verify = object({
  method: { enum: ['digest', 'x-verify-ram', 'byte-compare', 'none'] },
  result: { enum: ['ok', 'mismatch', 'not-checked'] },
});

export const RESULTS_SCHEMA: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:livemig:bench-results:1',
  title: 'livemig bench results',
  ...object(
    {
      schema: { const: 'livemig-bench/1' },
      createdAt: str,
      command: str,
      machine: object({
        cpuModel: str,
        cores: int,
        memoryBytes: int,
        node: str,
        platform: str,
        kernel: str,
        livemig: str,
        gitCommit: nullableStr,
        dsaDevices: { type: 'array', items: str },
      }),
      config: object(
        {
          machine: { enum: ['synthetic', 'pc'] },
          pc: {
            oneOf: [
              { type: 'null' },
              object({
                kernel: str,
                initrd: str,
                append: str,
                busyWorkload: str,
                losslessDowntimeLimitMs: int,
              }),
            ],
          },
          ram: str,
          ramBytes: int,
          channels: int,
          runs: int,
          scenarios: { type: 'array', items: scenario },
          running: { type: 'boolean' },
          modes: { type: 'array', items: mode },
          workload: str,
          accelPath: { type: 'array', items: str },
          to: nullableStr,
          toQmp: nullableStr,
          peers: { type: 'array', items: peer },
          qemuPath: nullableStr,
          verify: { type: 'boolean' },
          dirtyRatesMBps: { type: 'array', items: nonNeg },
          maxBandwidthBytesPerSec: int,
          downtimeLimitMs: int,
          convergeTimeoutMs: int,
        },
        ['machine', 'pc'],
      ),
      qemu: {
        oneOf: [{ type: 'null' }, object({ path: str, version: str, zeroPageDetection: str })],
      },
      runs: { type: 'array', items: { $ref: '#/$defs/run' } },
      summary: { type: 'array', items: { $ref: '#/$defs/summary' } },
      running: { type: 'array', items: { $ref: '#/$defs/running' } },
      skipped: {
        type: 'array',
        items: object({
          severity: { enum: ['not-applicable', 'unavailable'] },
          peer,
          mode: { enum: ['baseline', 'offload', 'legacy', 'none', null] },
          scenario: { enum: ['A', 'B', 'idle', 'busy', 'lossless', 'running', null] },
          reason: str,
        }),
      },
      pc: { $ref: '#/$defs/pcResults' },
    },
    ['pc'],
  ),
  $defs: {
    stat: object({ median: num, min: num, max: num }),
    thread: object({
      name: str,
      role: {
        enum: [
          'migration',
          'channel',
          'accel-completion',
          'emulated-engine',
          'main',
          'vcpu',
          'other',
        ],
      },
      ms: nonNeg,
    }),
    side: object({
      processMs: nullableNum,
      threads: { type: 'array', items: { $ref: '#/$defs/thread' } },
      threadSource: { enum: ['query-migrate', 'proc-sampled', 'none'] },
    }),
    run: object(
      {
        scenario,
        normalPageRatio: { type: ['number', 'null'], minimum: 0 },
        peer,
        peerVersion: str,
        mode,
        zeroPageDetection: str,
        run: int,
        status: str,
        error: nullableStr,
        totalTimeMs: nonNeg,
        endToEndMs: nonNeg,
        downtimeMs: nullableNum,
        setupTimeMs: nullableNum,
        throughputMbps: nonNeg,
        transferredBytes: int,
        totalRamBytes: int,
        normalPages: int,
        zeroPages: int,
        passes: int,
        cpu: object({ source: { $ref: '#/$defs/side' }, destination: { $ref: '#/$defs/side' } }),
        peakRssKiB: object({ source: nullableNum, destination: nullableNum }),
        verify,
        accel: { type: ['object', 'null'] },
        raw: object({ source: obj, destination: obj }),
        pc: { $ref: '#/$defs/pcRun' },
      },
      ['pc'],
    ),
    pcRun: object({
      downtimeLimitMs: int,
      dirtySync: {
        oneOf: [
          { type: 'null' },
          object({ count: int, totalMs: nonNeg, meanMs: nonNeg, maxMs: nonNeg, pagesFound: int }),
        ],
      },
      guestPausedMs: nullableNum,
      verifyPauseMs: nullableNum,
      shell: check,
      file: check,
      checkError: nullableStr,
      progress: {
        oneOf: [
          { type: 'null' },
          object(
            {
              beforeCopies: int,
              beforeMs: nonNeg,
              beforeRate: nonNeg,
              duringCopies: int,
              windowMs: nonNeg,
              excludedMs: nonNeg,
              duringRate: nonNeg,
              ratio: nonNeg,
              precopyMs: nonNeg,
              precopyCopies: int,
              precopyRatio: nonNeg,
            },
            ['precopyMs', 'precopyCopies', 'precopyRatio'],
          ),
        ],
      },
      differingPages: { type: ['integer', 'null'], minimum: 0 },
      zeroShare: nonNeg,
    }),
    pcResults: object({
      boots: {
        type: 'array',
        items: object({ peer, scenario: { enum: ['idle', 'busy', 'lossless'] }, ms: nonNeg }),
      },
      freshZeroShare: {
        type: 'array',
        items: object({
          peer,
          zeroPages: int,
          normalPages: int,
          extraPages: int,
          share: nonNeg,
        }),
      },
    }),
    summary: object({
      scenario,
      peer,
      mode,
      label: str,
      completedRuns: int,
      threads: { type: 'array', items: { $ref: '#/$defs/thread' } },
      seedTotalMs: stat,
      totalWithEnginesMs: stat,
      totalTimeMs: stat,
      endToEndMs: stat,
      downtimeMs: { oneOf: [{ type: 'null' }, stat] },
      throughputMbps: stat,
      transferredBytes: stat,
      totalRamBytes: int,
      sourceCpuMs: { oneOf: [{ type: 'null' }, stat] },
      destinationCpuMs: { oneOf: [{ type: 'null' }, stat] },
      bothCpuMs: { oneOf: [{ type: 'null' }, stat] },
      peakRssKiB: object({ source: nullableNum, destination: nullableNum }),
      verified: str,
    }),
    running: object({
      dirtyRateMBps: nonNeg,
      measuredDirtyRateMBps: nonNeg,
      maxBandwidthBytesPerSec: int,
      downtimeLimitMs: int,
      timeCapMs: int,
      ramBytes: int,
      converged: { type: 'boolean' },
      status: str,
      error: nullableStr,
      passes: int,
      expectedDowntimeMs: nullableNum,
      expectedDowntimeSource: { enum: ['observed', 'derived', 'none'] },
      downtimeMs: nullableNum,
      totalTimeMs: nonNeg,
      transferredBytes: int,
      verify,
    }),
  },
};

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(want: string, v: unknown): boolean {
  const t = typeOf(v);
  return want === t || (want === 'number' && t === 'integer');
}

/** Validate `value` against `schema` (within `root` for $refs); returns the errors, [] if valid. */
export function validate(
  value: unknown,
  schema: JsonSchema = RESULTS_SCHEMA,
  root: JsonSchema = schema,
  path = '$',
): string[] {
  const errs: string[] = [];
  if (typeof schema.$ref === 'string') {
    const m = /^#\/\$defs\/(.+)$/.exec(schema.$ref);
    const defs = root.$defs as { [k: string]: JsonSchema } | undefined;
    const target = m && defs ? defs[m[1]] : undefined;
    if (!target) return [`${path}: unresolvable $ref ${schema.$ref}`];
    return validate(value, target, root, path);
  }
  if (Array.isArray(schema.oneOf)) {
    const ok = (schema.oneOf as JsonSchema[]).filter(
      (s) => validate(value, s, root, path).length === 0,
    );
    if (ok.length !== 1) errs.push(`${path}: matches ${ok.length} of oneOf's schemas, not 1`);
    return errs;
  }
  if ('const' in schema && value !== schema.const) {
    errs.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  }
  if (Array.isArray(schema.enum) && !schema.enum.includes(value as Json)) {
    errs.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => typeMatches(String(t), value))) {
      errs.push(`${path}: expected ${types.join(' or ')}, got ${typeOf(value)}`);
      return errs;
    }
  }
  if (typeof schema.minimum === 'number' && typeof value === 'number' && value < schema.minimum) {
    errs.push(`${path}: ${value} is below the minimum ${schema.minimum}`);
  }
  if (typeOf(value) === 'object') {
    const o = value as Record<string, unknown>;
    for (const k of (schema.required as string[] | undefined) ?? []) {
      if (!(k in o)) errs.push(`${path}: missing required property '${k}'`);
    }
    const props = (schema.properties as { [k: string]: JsonSchema } | undefined) ?? {};
    for (const [k, v] of Object.entries(o)) {
      if (k in props) errs.push(...validate(v, props[k], root, `${path}.${k}`));
      else if (schema.additionalProperties === false)
        errs.push(`${path}: unexpected property '${k}'`);
    }
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    value.forEach((v, i) =>
      errs.push(...validate(v, schema.items as JsonSchema, root, `${path}[${i}]`)),
    );
  }
  return errs;
}
