// Replays the inputs that fuzzing (npm run fuzz, tools/fuzz/fuzz.mjs) found to crash a reader, kept in
// test/fixtures/fuzz/<target>/: each must now be read or refused with a SketchError (fuzz/targets.ts), within the
// bounds of docs/reliability.md.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TARGETS, tokenizerAvailable } from '../fuzz/targets.ts';
import { FIXTURES } from './paths.ts';

const DIR = join(FIXTURES, 'fuzz');

test('every target accepts arbitrary small inputs (a smoke run of the fuzz targets)', () => {
  let s = 7;
  for (const [name, run] of Object.entries(TARGETS)) {
    for (let k = 0; k < 200; k++) {
      const d = new Uint8Array(k % 64);
      for (let i = 0; i < d.length; i++) d[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
      run(d); // throws only on a bug
    }
    assert.ok(name);
  }
});

test('the tokenizer target has the CLIP vocabulary where ../shared has it (else it would fuzz nothing)', () => {
  if (existsSync(join(FIXTURES, '..', '..', '..', 'shared', 'data', 'clip'))) assert.ok(tokenizerAvailable());
});

test('the kept crash inputs are read or refused cleanly', () => {
  const targets = existsSync(DIR) ? readdirSync(DIR) : [];
  for (const t of targets) {
    const run = TARGETS[t];
    assert.ok(run, `test/fixtures/fuzz/${t}: no such fuzz target`);
    for (const f of readdirSync(join(DIR, t))) {
      const t0 = performance.now();
      run!(readFileSync(join(DIR, t, f)));
      assert.ok(performance.now() - t0 < 10_000, `${t}/${f} took over 10 s`);
    }
  }
});

test.run();
