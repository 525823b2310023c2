#!/usr/bin/env node
// Runs the bundled CLI; builds it first if `npm install` did not (e.g. install scripts were skipped).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = resolve(root, 'dist', 'node', 'cli.js');
if (!existsSync(cli)) {
  const r = spawnSync(process.execPath, [resolve(root, 'tools', 'build.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const { main } = await import(cli);
process.exitCode = await main(process.argv);
