// QEMU's MigrationStatus values that livemig uses.
export type MigrationStatus =
  | 'none'
  | 'setup'
  | 'active'
  | 'pre-switchover'
  | 'device'
  | 'cancelling'
  | 'cancelled'
  | 'completed'
  | 'failed';
