#!/usr/bin/env node
// Runs the bundled CLI (dist/node/cli.js, prebuilt in the npm package). In a checkout where it was not built yet,
// builds it first (`npm run build`).
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = resolve(root, 'dist', 'node', 'cli.js');
if (!existsSync(cli)) {
  const build = resolve(root, 'tools', 'build.mjs');
  if (!existsSync(build)) {
    console.error(`error: the sketchgpu CLI bundle ${cli} is missing`);
    console.error('hint: reinstall the package (npm install sketchgpu); the published package ships it prebuilt.');
    process.exit(2);
  }
  const r = spawnSync(process.execPath, [build], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const { main } = await import(cli);
process.exitCode = await main(process.argv);
