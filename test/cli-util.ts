// Helpers for tests that run the built CLI (bin/sketchgpu.js) as a user would: spawn it, parse its JSON, check that
// a refusal is a clean "error:/hint:" message with exit code 2 and no stack trace; and synthetic test images.
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { REPO_ROOT } from './paths.ts';
import { rand } from './util.ts';

export const BIN = resolve(REPO_ROOT, 'bin', 'sketchgpu.js');

/** Runs the CLI; stderr without Dawn's "Warning:" lines and Vulkan's success-check frames. */
export function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr.split('\n').filter((l) => !l.startsWith('Warning:') && !l.startsWith('    at CheckVkSuccessImpl')).join('\n') };
}

/** Runs the CLI, expects exit 0, returns its stdout parsed as JSON. */
export function json(args: string[], env: Record<string, string> = {}) {
  const r = cli(args, env);
  assert.is(r.code, 0, `${args.join(' ')}: ${r.err}`);
  return JSON.parse(r.out);
}

export function assertCleanError(r: ReturnType<typeof cli>, msg: RegExp) {
  assert.is(r.code, 2, `expected exit 2, got ${r.code}: ${r.err}`);
  assert.match(r.err, /^error: /m);
  assert.match(r.err, /^hint: /m);
  assert.match(r.err, msg);
  assert.not.match(r.err, /\n\s+at .*\.(ts|js):\d+/, 'a stack trace was printed');
}

/** A deterministic synthetic image: a coloured background with shapes ("photo") or black strokes on white ("sketch"). */
export function png(file: string, w: number, h: number, seed: number, kind: 'photo' | 'sketch') {
  const img = new PNG({ width: w, height: h });
  const r = rand(16, seed, 0, 1);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = 4 * (y * w + x);
    let v: number[];
    if (kind === 'photo') {
      const inside = (x - r[0]! * w) ** 2 + (y - r[1]! * h) ** 2 < (r[2]! * w) ** 2;
      v = inside ? [255 * r[3]!, 255 * r[4]!, 255 * r[5]!] : [255 * r[6]!, 128 * r[7]! + 64 * (x / w), 255 * r[8]! * (y / h)];
    } else {
      const onLine = Math.abs((y - h / 2) - (r[9]! - 0.5) * 2 * (x - w / 2)) < 2 || Math.abs(x - r[10]! * w) < 2;
      v = onLine && x > 8 && y > 8 && x < w - 8 && y < h - 8 ? [0, 0, 0] : [255, 255, 255];
    }
    img.data[i] = v[0]!; img.data[i + 1] = v[1]!; img.data[i + 2] = v[2]!; img.data[i + 3] = 255;
  }
  writeFileSync(file, PNG.sync.write(img));
}

/**
 * The small test gallery of the CLI and API suites: 3 classes (apple, boat, cat) x 3 photos in class folders under
 * `dir`, plus one corrupt JPEG (boat/broken.jpg) that indexing must skip.
 */
export function smallGallery(dir: string): { gallery: string; classes: string[] } {
  const classes = ['apple', 'boat', 'cat'];
  classes.forEach((c, ci) => {
    mkdirSync(join(dir, c), { recursive: true });
    for (let k = 0; k < 3; k++) png(join(dir, c, `p${k}.png`), 70 + 7 * k, 60 + 5 * ci, 1000 + 10 * ci + k, 'photo');
  });
  writeFileSync(join(dir, 'boat', 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2, 3]));
  return { gallery: dir, classes };
}
