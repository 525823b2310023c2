// Honesty guard of the training tools: no file of the 21 unseen classes enters any training, caching or selection
// step. The lists the tools read come from tools/training/splits.py (through eval_zse.load_split, whose `purpose` argument
// makes splits.check_purpose refuse an unseen class unless the step is a final measurement); here they are checked
// against ../shared/data/splits/test_class_sketchy21.txt, every load_split call of tools/ is checked to name its
// purpose, and any teacher feature cache present is checked file by file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { REPO_ROOT, SHARED_DATA, hasSharedData } from './paths.ts';

const PY = '/usr/bin/python3';
const hasNumpy = existsSync(PY) && spawnSync(PY, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
const unseen = (): string[] =>
  readFileSync(resolve(SHARED_DATA, 'splits', 'test_class_sketchy21.txt'), 'utf8').split('\n').map((s) => s.trim()).filter(Boolean).sort();
const classOf = (f: string): string => f.split('/')[1];

function pyFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (e === 'node_modules' || e === '__pycache__') continue;
    if (statSync(p).isDirectory()) out.push(...pyFiles(p));
    else if (e.endsWith('.py')) out.push(p);
  }
  return out;
}

const data = hasSharedData() && hasNumpy;
const maybe = data ? test : test.skip;

maybe('the training and selection lists hold no unseen class, and together they are the 104 seen ones', () => {
  const s = JSON.parse(execFileSync(PY, [join(REPO_ROOT, 'tools', 'training', 'splits.py'), '--json'], { encoding: 'utf8', maxBuffer: 64 << 20 }));
  const u = unseen();
  assert.equal(u.length, 21);
  assert.equal(s.unseen, u);
  const bad = new Set(u);
  assert.equal(s.seen.length, 104);
  assert.equal(s.train.length + s.val.length, 104);
  assert.equal([...s.train, ...s.val].sort(), [...s.seen].sort());
  for (const c of [...s.seen, ...s.train, ...s.val]) assert.not.ok(bad.has(c), `unseen class ${c} in a training list`);
  assert.equal(s.train_files.length, 2 * 25 * s.train.length);
  for (const f of [...s.train_files, ...s.val_files]) assert.not.ok(bad.has(classOf(f)), `unseen file ${f}`);
  const val = new Set(s.val);
  for (const f of s.train_files) assert.not.ok(val.has(classOf(f)), `selection class ${f} in the training files`);
});

maybe('the guard refuses an unseen class for training, selection and caching (and an unknown purpose)', () => {
  const r = JSON.parse(execFileSync(PY, [join(REPO_ROOT, 'tools', 'training', 'splits.py'), '--self-test'], { encoding: 'utf8' }));
  assert.equal(r.refused, ['train', 'select', 'cache', 'eval']);
});

test('every image list a training tool loads names its purpose; only final measurements read the unseen folder', () => {
  const calls: string[] = [];
  for (const f of pyFiles(join(REPO_ROOT, 'tools'))) {
    const src = readFileSync(f, 'utf8');
    for (const m of src.matchAll(/load_split\(([^\n]*)\)/g)) {
      if (/^\s*def /.test(src.slice(src.lastIndexOf('\n', m.index) + 1, m.index))) continue;
      const where = `${relative(REPO_ROOT, f)}: ${m[0]}`;
      calls.push(where);
      const purpose = /purpose='([a-z-]+)'/.exec(m[1])?.[1];
      assert.ok(purpose, `no purpose: ${where}`);
      const readsUnseen = /UNSEEN256|unseen_classes\(\)/.test(m[1]);
      if (readsUnseen) assert.is(purpose, 'final-eval', where);
      else assert.ok(['train', 'select', 'cache'].includes(purpose!), where);
    }
    // Nothing else in tools/ may list the unseen photos or sketches for training (make_preprocess_fixtures.py
    // reads them for the preprocessing parity fixtures only; eval_zse.py, teacher/eval_teacher.py and
    // training/modality_gap.py measure).
    if (/unseen21-256|UNSEEN256/.test(src)) {
      assert.ok(
        ['tools/training/splits.py', 'tools/training/eval_zse.py', 'tools/training/train_zse.py', 'tools/training/train_caan.py',
          'tools/fixtures/make_preprocess_fixtures.py', 'tools/teacher/eval_teacher.py', 'tools/training/modality_gap.py']
          .includes(relative(REPO_ROOT, f)),
        `${relative(REPO_ROOT, f)} names the unseen folder`,
      );
    }
  }
  assert.ok(calls.length >= 8, `found only ${calls.length} load_split calls`);
});

test('a teacher feature cache, where one was made, holds only seen-class training images', () => {
  const dir = join(REPO_ROOT, '.cache', 'teacher');
  const metas = existsSync(dir) ? readdirSync(dir).filter((f) => /^feat-.*\.json$/.test(f)) : [];
  if (!metas.length || !hasSharedData()) return; // nothing cached on this machine: nothing can have leaked
  const bad = new Set(unseen());
  for (const m of metas) {
    const meta = JSON.parse(readFileSync(join(dir, m), 'utf8'));
    for (const f of meta.files as string[]) assert.not.ok(bad.has(classOf(f)), `${m}: unseen file ${f}`);
    for (const c of meta.classes as string[]) assert.not.ok(bad.has(c), `${m}: unseen class ${c}`);
  }
});

(data && spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0 ? test : test.skip)('the front-variant trainer refuses a teacher cache that holds an unseen class (tools/training/train_front.py load_cache)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sketchgpu-honesty-'));
  try {
    const cache = join(dir, 'feat-test.npy');
    // A cache of two maps: a seen class's sketch and one of an unseen class (the first of the split's list).
    const seen = 'airplane', bad = unseen()[0]!;
    writeFileSync(cache.replace(/\.npy$/, '.json'), JSON.stringify({ files: [`sketch/${seen}/a.png`, `sketch/${bad}/b.png`], modality: ['sketch', 'sketch'], layer: 'mixed7', bf16: false }));
    const code = `import sys, numpy as np; sys.path.insert(0, ${JSON.stringify(join(REPO_ROOT, 'tools', 'training'))}); np.save(${JSON.stringify(cache)}, np.zeros((2, 4, 1, 1), np.float16)); import train_front
try:
    train_front.load_cache(${JSON.stringify(cache)}, 10, 0)
except AssertionError as e:
    print('refused:', e); sys.exit(3)
sys.exit(0)`;
    const r = spawnSync(PY, ['-c', code], { encoding: 'utf8' });
    assert.is(r.status, 3, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /refused: the teacher cache holds an unseen class/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
