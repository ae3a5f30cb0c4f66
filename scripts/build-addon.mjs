#!/usr/bin/env node
// Build livemig's optional native DSA addon (binding.gyp, native/livemig_dsa.c) with node-gyp.
// package.json runs this as the "install" script, so `npm ci` / `npm install` build it.
//
// It never fails the install: when the platform is not x86-64 Linux, node-gyp is missing, or the
// compiler fails, it prints why and exits 0. livemig then works as before (dsa-emu: paths), and
// dsa: paths report "hardware path unavailable" with the reason written here to
// build/addon-status.json. `--strict` (npm run build:addon) exits 1 on failure instead.
//
//   node scripts/build-addon.mjs [--strict] [PACKAGE_DIR]
//   LIVEMIG_SKIP_ADDON=1 npm ci     skip the build

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const strict = args.includes('--strict');
const dirArg = args.find((a) => !a.startsWith('--'));
const root = dirArg ? resolve(dirArg) : join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build', 'Release', 'livemig_dsa.node');
const say = (line) => process.stdout.write(`livemig: ${line}\n`);

function status(built, reason, log = []) {
  mkdirSync(join(root, 'build'), { recursive: true });
  const s = {
    built,
    reason,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
  if (log.length) s.log = log;
  writeFileSync(join(root, 'build', 'addon-status.json'), JSON.stringify(s, null, 2) + '\n');
}

function notBuilt(reason, log = []) {
  status(false, reason, log);
  say(`native DSA addon NOT built: ${reason}`);
  for (const l of log) say(`  | ${l}`);
  say(
    'livemig works without it: dsa-emu: work queues as before; dsa: (real DSA) paths report ' +
      '"hardware path unavailable". Rebuild with: npm run build:addon',
  );
  process.exit(strict ? 1 : 0);
}

/** node-gyp: npm's own (npm sets npm_config_node_gyp for scripts), next to node, or on PATH. */
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(dirname(process.execPath)),
      'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    ),
    join(dirname(process.execPath), 'node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  for (const c of candidates) if (c && existsSync(c)) return [process.execPath, c];
  const which = spawnSync('node-gyp', ['--version'], { encoding: 'utf8' });
  return which.status === 0 ? ['node-gyp'] : undefined;
}

if (process.env.LIVEMIG_SKIP_ADDON === '1') notBuilt('skipped (LIVEMIG_SKIP_ADDON=1)');
if (process.platform !== 'linux' || process.arch !== 'x64') {
  notBuilt(
    `the DSA hardware path needs x86-64 Linux (this is ${process.platform}-${process.arch})`,
  );
}
const gyp = findNodeGyp();
if (!gyp) notBuilt('node-gyp was not found (it comes with npm)');

// Node's headers: use an installed copy next to this node when there is one (no download).
const prefix = dirname(dirname(process.execPath));
const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h'))
  ? [`--nodedir=${prefix}`]
  : [];
say(
  `building the native DSA addon (node-gyp rebuild${nodedir.length ? `, headers ${prefix}/include/node` : ''})`,
);
const r = spawnSync(gyp[0], [...gyp.slice(1), 'rebuild', ...nodedir], {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, npm_config_loglevel: 'warn' },
});
const lines = `${r.stdout ?? ''}\n${r.stderr ?? ''}`
  .split('\n')
  .map((l) => l.trimEnd())
  .filter((l) => l && !/^gyp (info|http)/.test(l));
if (r.error) notBuilt(`node-gyp could not run: ${r.error.message}`);
if (r.status !== 0 || !existsSync(out)) {
  const why =
    lines.find((l) => /error|not found|No such/i.test(l)) ?? `node-gyp exited with ${r.status}`;
  notBuilt(why.replace(/^\S*:\s*/, '').slice(0, 300), lines.slice(-15));
}
for (const l of lines.filter((l) => /^\s+(CC|CXX|SOLINK_MODULE|COPY)\(|warning/.test(l))) {
  say(`  | ${l.trim()}`);
}
status(true, 'built', []);
say(`native DSA addon built: ${out}`);
