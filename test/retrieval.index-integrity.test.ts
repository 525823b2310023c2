// Issue 15: the index file's checksums (every flipped bit refused, naming the file and how to rebuild), format 1
// refused with a rebuild hint, and photo paths confined to the index root (docs/reliability.md).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SketchError } from '../src/core/errors.ts';
import { listGallery } from '../src/retrieval/gallery.ts';
import { isConfinedRelativePath, parseIndex, serializeIndex, type GalleryIndex } from '../src/retrieval/index-format.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';

function small(paths = ['a/p0.png', 'a/p1.jpg', 'b/p2.jpeg']): GalleryIndex {
  const D = 4, N = paths.length;
  const embeddings = new Float32Array(N * D);
  for (let r = 0; r < N; r++) embeddings[r * D + (r % D)] = 1;
  return {
    model: { family: 'zse-sbir', weights_sha256: 'ab'.repeat(32), config: { dim: D } as never },
    weightsPath: '/w.safetensors', root: '/photos', paths, dim: D, dtype: 'f32', embeddings, skipped: [], created: '2026-12-04T00:00:00Z',
  };
}

function refusal(fn: () => unknown): SketchError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SketchError) return e;
    throw new Error(`a raw ${(e as Error)?.stack ?? e}`);
  }
  throw new Error('accepted');
}

test('round trip, and every single flipped bit of an index file is refused, naming the file and how to rebuild', () => {
  for (const dtype of ['f32', 'f16'] as const) {
    const bytes = serializeIndex({ ...small(), dtype });
    const back = parseIndex(bytes, 'g.sgi');
    assert.equal(back.paths, small().paths);
    let refused = 0;
    for (let i = 0; i < bytes.length * 8; i++) {
      const bad = bytes.slice();
      bad[i >> 3] ^= 1 << (i & 7);
      const e = refusal(() => parseIndex(bad, 'g.sgi'));
      assert.is(e.code, 'BAD_INDEX', `bit ${i}: ${e.message}`);
      assert.ok(e.message.includes('g.sgi'), e.message);
      assert.ok(e.hint.includes('sketchgpu index') && e.hint.includes('-o g.sgi'), e.hint);
      refused++;
    }
    assert.is(refused, bytes.length * 8);
  }
});

test('a format-1 index (no checksums) is refused with a rebuild hint', () => {
  const st = readSafetensors(serializeIndex(small()));
  const meta = { ...st.metadata, 'sketchgpu.index': '1' };
  delete (meta as Record<string, string>)['sketchgpu.index.crc32'];
  const e = refusal(() => parseIndex(writeSafetensors(st.tensors, meta), 'old.sgi'));
  assert.match(e.message, /old\.sgi is a gallery index of format 1, which carries no checksums/);
  assert.match(e.hint, /sketchgpu index <photo dir> -o old\.sgi --weights <weights> --force/);
});

test('a crafted index (valid checksums) naming paths outside its root is refused on open', () => {
  for (const p of ['/etc/passwd', '../../etc/passwd', 'a/../../x.png', '/proc/self/environ', 'a/./b.png', 'a//b.png', 'x.txt', 'C:/x.png', 'a\\..\\b.png']) {
    assert.not.ok(isConfinedRelativePath(p), p);
    const e = refusal(() => parseIndex(serializeIndex(small(['a/p0.png', p, 'b/p2.jpeg'])), 'crafted.sgi'));
    assert.is(e.code, 'BAD_INDEX');
    assert.match(e.message, /crafted\.sgi names the photo .* which is not a relative image path inside its root/);
  }
  for (const p of ['x.png', 'a/b/c.JPG', 'a b/c.jpeg', '..x.png']) assert.ok(isConfinedRelativePath(p), p);
});

test('an index whose embeddings are not unit vectors (NaN, zero) is refused', () => {
  const ix = small();
  ix.embeddings[5] = NaN;
  assert.match(refusal(() => parseIndex(serializeIndex(ix), 'nan.sgi')).message, /nan\.sgi .*has norm NaN/);
  const z = small();
  z.embeddings.fill(0, 0, 4);
  assert.match(refusal(() => parseIndex(serializeIndex(z), 'z.sgi')).message, /row 0\) has norm 0/);
});


test('a list file naming photos outside its folder gets the folder holding them all as root (no ".." path is indexed)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-list-'));
  mkdirSync(join(tmp, 'lists'));
  mkdirSync(join(tmp, 'photos', 'x'), { recursive: true });
  for (const p of ['photos/x/a.png', 'photos/b.jpg']) writeFileSync(join(tmp, p), '');
  writeFileSync(join(tmp, 'lists', 'l.txt'), `../photos/x/a.png\n${join(tmp, 'photos', 'b.jpg')}\n`);
  const g = listGallery(join(tmp, 'lists', 'l.txt'));
  assert.is(g.root, tmp);
  assert.equal(g.paths, ['photos/b.jpg', 'photos/x/a.png']);
  assert.ok(g.paths.every(isConfinedRelativePath));
  // A listed symlink to a photo outside the list's folder is indexed under the photo's real path.
  mkdirSync(join(tmp, 'links'));
  symlinkSync(join(tmp, 'photos', 'b.jpg'), join(tmp, 'links', 'b-link.jpg'));
  writeFileSync(join(tmp, 'links', 'l.txt'), 'b-link.jpg\n');
  assert.equal(listGallery(join(tmp, 'links', 'l.txt')), { root: tmp, paths: ['photos/b.jpg'] });
  // Inside its own folder, the root stays the list's folder.
  writeFileSync(join(tmp, 'photos', 'l2.txt'), 'x/a.png\nb.jpg\n');
  assert.equal(listGallery(join(tmp, 'photos', 'l2.txt')), { root: join(tmp, 'photos'), paths: ['b.jpg', 'x/a.png'] });
});

test.run();
