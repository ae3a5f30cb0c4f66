// The Node.js options every `livemig` process runs with. The command's first line passes them
// (`#!/usr/bin/env -S node ...`: a test keeps the two the same), and the local-migration harness
// passes them when it starts `livemig run` itself, so `livemig demo`, the benchmarks and the tests
// run the processes a user's script would.
//
// --v8-pool-size=2: V8's background threads, which Node starts 4 of whatever the host. A PC
// guest's emulator generates WebAssembly that V8's optimizing compiler recompiles on those
// threads, up to ~37 MiB of compiler memory per function; glibc gives each thread a malloc arena
// of its own and keeps what was freed in it (~45-59 MiB in each of 4 arenas, 3 MiB of it in use).
// With 2 threads a PC source (256 MiB, busy, migrated) peaked at 705-751 MiB, against 767-836
// MiB with 4 (5 benches each, alternated, on a 2-core host; docs/benchmarks.md), and its
// migrations were no slower. Two is one per core there, and never more than Node's default.

export const LIVEMIG_NODE_FLAGS: readonly string[] = ['--v8-pool-size=2'];
