// The x-migration-nice a PC starts with: its vCPU first where the host has no core to spare
// for the migration.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pcMigrationNice } from '../../src/machine/pc/pc-migration-nice.js';

test('a PC yields the CPU to its vCPU on hosts with fewer than three cores', () => {
  assert.equal(pcMigrationNice(1), 19);
  assert.equal(pcMigrationNice(2), 19);
  assert.equal(pcMigrationNice(3), 0, 'a third core: the migration has one of its own');
  assert.equal(pcMigrationNice(64), 0);
});
