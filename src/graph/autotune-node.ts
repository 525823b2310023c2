/**
 * Node side of the GEMM autotuner: a JSON file of measured tables per adapter, and the rule for when tuning is on.
 * The file is a cache: a missing, unreadable or foreign file is ignored and rewritten, never an error.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { GpuContext } from '../gpu/device.ts';
import { GemmAutotune, type TuneStore, type TuneTable } from './autotune.ts';

const VERSION = 1;

/** SKETCHGPU_AUTOTUNE_FILE, else $XDG_CACHE_HOME/sketchgpu/autotune.json, else ~/.cache/sketchgpu/autotune.json. */
export function autotuneFile(): string {
  if (process.env.SKETCHGPU_AUTOTUNE_FILE) return process.env.SKETCHGPU_AUTOTUNE_FILE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sketchgpu', 'autotune.json');
}

export function fileTuneStore(path: string): TuneStore {
  const read = (): Record<string, TuneTable> => {
    try {
      const j = JSON.parse(readFileSync(path, 'utf8')) as { version?: number; adapters?: Record<string, TuneTable> };
      return j.version === VERSION && j.adapters && typeof j.adapters === 'object' ? j.adapters : {};
    } catch {
      return {};
    }
  };
  return {
    load: (key) => read()[key],
    save: (key, table) => {
      try {
        const all = { ...read(), [key]: table };
        mkdirSync(dirname(path), { recursive: true });
        const tmp = `${path}.${process.pid}.tmp`;
        writeFileSync(tmp, `${JSON.stringify({ version: VERSION, adapters: all }, null, 1)}\n`);
        renameSync(tmp, path);
      } catch {
        // A read-only home or a full disk only costs re-measuring next time.
      }
    },
  };
}

/**
 * Whether to tune on this context: SKETCHGPU_AUTOTUNE=1 always, =0 never; unset, on hardware adapters only (on CPU
 * drivers the built-in choice, rowdot, is the measured best and tuning the big shapes would take minutes).
 */
export function autotuneWanted(ctx: Pick<GpuContext, 'software'>, env = process.env.SKETCHGPU_AUTOTUNE): boolean {
  if (env === '1' || env === 'on') return true;
  if (env === '0' || env === 'off') return false;
  return !ctx.software;
}

/** Attaches a file-backed tuner to the context when autotuneWanted says so. */
export function attachNodeAutotune(ctx: GpuContext): void {
  if (!ctx.gemmTuner && autotuneWanted(ctx)) ctx.gemmTuner = new GemmAutotune(ctx, fileTuneStore(autotuneFile()));
}

/** What `sketchgpu info` reports of the autotuner on a context: its file and how many GEMM, convolution and attention shapes it has measured, or off. */
export function autotuneStatus(ctx: Pick<GpuContext, 'gemmTuner'>): { file: string; gemm_shapes_measured: number; conv_shapes_measured: number; attention_shapes_measured: number } | string {
  const tuned = ctx.gemmTuner instanceof GemmAutotune ? ctx.gemmTuner : undefined;
  const keys = tuned ? Object.keys(tuned.entries()) : [];
  const count = (prefix: string) => keys.filter((k) => k.startsWith(prefix)).length;
  return tuned ? { file: autotuneFile(), gemm_shapes_measured: keys.filter((k) => /^\d/.test(k)).length, conv_shapes_measured: count('conv:'), attention_shapes_measured: count('attention:') } : 'off (software adapter, or SKETCHGPU_AUTOTUNE=0)';
}
