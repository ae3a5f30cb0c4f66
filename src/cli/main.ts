#!/usr/bin/env -S node --v8-pool-size=2
// The `livemig` command, run with the Node options of node-flags.ts (the line above).
//
// Before any of livemig loads, V8 is told to compile every function as its script loads
// (--no-lazy) instead of at its first call: a migration's setup and switchover otherwise run
// most of their code for the first time in the process, each function compiled on the spot, on
// a host whose cores the guest is using. Measured on a 256 MiB PC, idle, 6 runs each: setup
// 21 -> 16 ms and total 158 -> 144 ms (medians; docs/benchmarks.md). The cost is paid once, at
// start: more bytecode in memory, and threads that take longer to start (they are started ahead
// of a migration).

import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-lazy');
await import('./commands.js');
