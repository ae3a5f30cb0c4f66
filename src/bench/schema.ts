// The JSON Schema (draft 2020-12) of the file `livemig bench --json FILE` writes, checked with
// ajv. docs/bench-schema.md shows the same schema (a test checks that they are equal) and
// explains every field.

import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { jsonPath, pointerKeys } from '../util/json-path.js';

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
const peer = { enum: ['livemig', 'qemu', 'floor'] };
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
      schema: { const: 'livemig-bench/2' },
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
              object(
                {
                  kernel: str,
                  initrd: str,
                  append: str,
                  busyWorkload: str,
                  losslessDowntimeLimitMs: int,
                  migrationNice: int,
                },
                ['migrationNice'],
              ),
            ],
          },
          ram: str,
          ramBytes: int,
          channels: int,
          runs: int,
          warmupRuns: int,
          atOnce: { type: 'boolean' },
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
        ['machine', 'pc', 'warmupRuns', 'atOnce'],
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
      threadSource: { enum: ['query-migrate', 'proc-sampled', 'thread-clock', 'none'] },
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
          object(
            {
              count: int,
              totalMs: nonNeg,
              meanMs: nonNeg,
              maxMs: nonNeg,
              meanCpuMs: nonNeg,
              maxCpuMs: nonNeg,
              pagesFound: int,
            },
            ['meanCpuMs', 'maxCpuMs'],
          ),
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
              precopyWork: nonNeg,
              precopyWorkMs: nonNeg,
            },
            ['precopyMs', 'precopyCopies', 'precopyRatio', 'precopyWork', 'precopyWorkMs'],
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
    summary: object(
      {
        scenario,
        peer,
        mode,
        label: str,
        completedRuns: int,
        threads: { type: 'array', items: { $ref: '#/$defs/thread' } },
        evaluationTotalMs: stat,
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
        toFloor: object({ totalTime: nullableNum, endToEnd: nullableNum, bothCpu: nullableNum }),
      },
      ['toFloor'],
    ),
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

const ajv = new Ajv2020({ allErrors: true, verbose: true, allowUnionTypes: true });
const checkResults = ajv.compile(RESULTS_SCHEMA);

function describe(e: ErrorObject): string {
  const where = jsonPath(pointerKeys(e.instancePath));
  switch (e.keyword) {
    case 'additionalProperties':
      return `${where}: unexpected property '${String(e.params.additionalProperty)}'`;
    case 'enum':
      return `${where}: ${JSON.stringify(e.data)} is not one of ${JSON.stringify(e.params.allowedValues)}`;
    case 'required':
      return `${where}: missing required property '${String(e.params.missingProperty)}'`;
    case 'type': {
      const got = e.data === null ? 'null' : Array.isArray(e.data) ? 'array' : typeof e.data;
      return `${where}: expected ${String(e.params.type).replace(/,/g, ' or ')}, got ${got}`;
    }
    case 'minimum':
      return `${where}: ${JSON.stringify(e.data)} is below the minimum ${String(e.params.limit)}`;
    case 'const':
      return `${where}: expected ${JSON.stringify(e.params.allowedValue)}`;
    default:
      return `${where}: ${e.message ?? e.keyword}`;
  }
}

/** Check a results object against the schema; returns the errors, [] if it follows it. */
export function validate(value: unknown): string[] {
  return checkResults(value) ? [] : (checkResults.errors ?? []).map(describe);
}
