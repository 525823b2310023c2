#!/usr/bin/env node
// Runs the bundled CLI (dist/node/cli.js, prebuilt in the npm package; in a checkout where it was not built yet, it
// is built first).
//
// Quiet by default: Dawn prints "Warning: max...PerPipelineLayout artificially reduced ..." on stderr from native
// code whenever it discovers an adapter reporting more dynamic buffers than it supports (Mesa's lavapipe does), whatever
// limits are requested, and no JavaScript hook sees it. So the CLI runs in a child process whose stderr passes
// through here with exactly those lines dropped (progress bars still drawn when stderr is a terminal). `--verbose`
// or SKETCHGPU_DEBUG=1 runs it directly instead: every Dawn message, and stacks with each error.
import { existsSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = resolve(root, 'dist', 'node', 'cli.js');
const DAWN_NOISE = /^Warning: max\w+PerPipelineLayout artificially reduced from \d+ to \d+[^\n]*\n?/gm;

const args = process.argv.slice(2);
if (args.includes('--verbose')) process.env.SKETCHGPU_DEBUG ||= '1';
const argv = [...process.argv.slice(0, 2), ...args.filter((a) => a !== '--verbose')];

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

if (process.env.SKETCHGPU_DEBUG || process.env.SKETCHGPU_CLI_CHILD) {
  if (process.env.SKETCHGPU_CLI_CHILD && process.channel) {
    // Started by the wrapper below: its IPC channel closes when the wrapper ends, however it ends (a SIGKILL it
    // cannot pass on included), and the CLI ends with it instead of running on as an orphan in its own process
    // group. Unref'd, so the channel alone does not keep the CLI alive. (Run with SKETCHGPU_CLI_CHILD=1 by hand,
    // there is no channel and no such watch.)
    process.channel.unref();
    process.on('disconnect', () => process.exit(129));
  }
  const { main } = await import(cli);
  process.exitCode = await main(argv);
} else {
  // Its own process group: a Ctrl-C at the terminal reaches this process only, and is passed on once (the index
  // command finishes its batch on the first). The 'ipc' channel is how the child sees this process go (above).
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...argv.slice(2)], {
    stdio: ['inherit', 'inherit', 'pipe', 'ipc'],
    detached: true,
    env: { ...process.env, SKETCHGPU_CLI_CHILD: '1', ...(process.stderr.isTTY ? { SKETCHGPU_STDERR_COLUMNS: String(process.stderr.columns || 80) } : {}) },
  });
  child.stderr.on('data', (chunk) => {
    const text = chunk.toString('utf8');
    process.stderr.write(text.includes('artificially reduced') ? text.replace(DAWN_NOISE, '') : chunk);
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('close', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
}
