// What the opt-in full-size parity tests share: making their Python-generated fixtures (seeded random weights,
// inputs and a float64 reference, written by a tools/ script into a git-ignored .cache folder) and log helpers.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { REPO_ROOT } from '../paths.ts';

/** Debian's interpreter, which has torch 1.13 (the python3 on PATH may not). */
export const PYTHON = '/usr/bin/python3';
export const secs = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
export const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

/**
 * Runs `script --out dir`, which regenerates the fixtures only when dir's stamp does not match its version, seed
 * and size (else it returns at once), so stale files are never compared against. Without a usable torch, files
 * that exist are used as they are (with a warning); missing ones are an error that says what to install and run.
 */
export function ensureFixtures(o: { dir: string; files: readonly string[]; script: string; what: string; log: (s: string) => void }): void {
  const { dir, files, script, what, log } = o;
  const have = files.every((f) => existsSync(resolve(dir, f)));
  const shown = relative(REPO_ROOT, dir) || dir;
  const probe = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    if (have) {
      log(`python generation: ${PYTHON} with torch is not available; using the files in ${dir} as they are (they may be stale)`);
      return;
    }
    throw new Error(
      `the ${what} fixtures are missing and ${PYTHON} cannot make them: ` +
      `${probe.error ? probe.error.message : (probe.stderr.trim().split('\n').pop() ?? `exit ${probe.status}`)}.\n` +
      `Install Debian's torch and numpy for it: apt-get install python3-torch python3-numpy\n` +
      `then run: ${PYTHON} ${script} --out ${shown}`);
  }
  const t0 = performance.now();
  log(`python generation: ${PYTHON} ${script} --out ${shown} (a few minutes unless up to date)`);
  const r = spawnSync(PYTHON, [script, '--out', dir], { cwd: REPO_ROOT, stdio: 'inherit' });
  if (r.error || r.status !== 0) throw new Error(`${script} failed (${r.error?.message ?? `exit ${r.status}`})`);
  log(`python generation: ${secs(t0)}`);
}
