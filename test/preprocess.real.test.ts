// The reference preprocessing on the real Sketchy images in ../shared/data (read in place): every unseen21
// photo and sketch at S=224, the first 5 per class at 112 and 64, and 10 classes of all125-128 at 224, against
// the sha256 of the reference uint8 HWC arrays (tools/fixtures/make_preprocess_fixtures.py). Skipped, and counted as
// skipped, when the shared data folder is absent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decodeImage } from '../src/io/image.ts';
import { preprocessPhotoUint8, preprocessSketchUint8 } from '../src/preprocess/index.ts';
import { hasSharedData, SHARED_DATA } from './paths.ts';
import { expected, sha256 } from './preprocess.fixtures.ts';

const shared = hasSharedData();
if (!shared) console.log(`NOTE: ${SHARED_DATA}/sketchy not found: skipping the real-data preprocessing checks (counted as skipped)`);

for (const kind of ['photo', 'sketch'] as const) {
  for (const [size, hashes] of Object.entries(expected.real[kind])) {
    const entries = Object.entries(hashes);
    (shared ? test : test.skip)(`${kind}s at S=${size}: ${entries.length} images byte-identical to the reference`, () => {
      const fn = kind === 'photo' ? preprocessPhotoUint8 : preprocessSketchUint8;
      const bad: string[] = [];
      for (const [rel, want] of entries) {
        const img = decodeImage(new Uint8Array(readFileSync(resolve(SHARED_DATA, rel))), rel);
        if (sha256(fn(img, Number(size))) !== want) bad.push(rel);
      }
      console.log(`  ${kind} S=${size}: ${entries.length - bad.length}/${entries.length} byte-identical`);
      assert.equal(bad.slice(0, 10), [], `${bad.length} of ${entries.length} differ`);
    });
  }
}

test.run();
