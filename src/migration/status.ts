// QEMU's MigrationStatus values that livemig uses.
export type MigrationStatus =
  'none' | 'setup' | 'active' | 'device' | 'cancelling' | 'cancelled' | 'completed' | 'failed';
