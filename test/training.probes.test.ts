// tools/training/probes.py, the weights card's diagnostics: the checkpoint reader rebuilds a student with its own head
// counts (the probes once hard-coded 8 heads for the 4-head students and misreported run L's numbers), and a
// missing checkpoint is an `error:` + `hint:` with exit 2 before any data is read; the same for tools/training/stem_fit.py;
// tools/training/eval_zse.py's selftest (its RN scores against the reference, and `--prescale`, the form of the demo
// weights' training images, behind the card's side check; --within, the per-modality diagnostic). Needs /usr/bin/python3 with torch.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.ts';

const PY = '/usr/bin/python3';
const SCRIPT = join(REPO_ROOT, 'tools', 'training', 'probes.py');
const hasTorch = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
const maybe = hasTorch ? test : test.skip;
const env = { ...process.env, OMP_NUM_THREADS: '1' };

maybe('a last.pt and an official .pth come back with their own head counts and identical SA outputs', () => {
  const out = execFileSync(PY, [SCRIPT, 'selftest'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
  const r = JSON.parse(out.trim().split('\n').pop()!);
  for (const name of ['last.pt', 'best.pth']) {
    assert.equal([r[name].sa_heads, r[name].ca_heads], [4, 4], name);
    // the same float32 weights through the same ops: equal to the bit
    assert.equal(r[name].max_abs_diff, 0, name);
  }
  // the check can fail: the same weights read with 2 heads attend differently
  assert.ok(r.two_heads_max_abs_diff > 1e-5, `2-head diff ${r.two_heads_max_abs_diff}`);
});

maybe('eval_zse.py --selftest: RN scores equal the reference, --prescale gives the 128 px files\' form, --within ranks each modality without the query', () => {
  const out = execFileSync(PY, [join(REPO_ROOT, 'tools', 'training', 'eval_zse.py'), '--selftest'],
    { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
  // the script asserts each; the printed flags are read back so a silently skipped check shows here
  assert.match(out, /prescale sketch == bilinear-128 file: True; photo: True; 128 px untouched: True; differs from the reference path at 256 px: True/);
  assert.match(out, /selftest: within_metrics .* == query-by-query .*; perfect clusters -> \{'map_all': 1\.0, 'precision_10': 1\.0\}/);
  assert.match(out, /selftest: a \.safetensors through load_pth: 4 SA heads, SA max \|diff\| vs the float16-rounded model \d\.\de[-+]\d\d/);
});

maybe('a missing checkpoint: error and hint, exit 2, no stack trace', () => {
  const r = spawnSync(PY, [SCRIPT, 'space', join(REPO_ROOT, 'no-such-run', 'last.pt')], { encoding: 'utf8', env });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^error: .*no-such-run.* does not exist\nhint: /m);
  assert.not.match(r.stderr, /Traceback/);
});

maybe('stem_fit.py (the stem graft of run O): a missing teacher cache is an error with a hint, exit 2', () => {
  const script = join(REPO_ROOT, 'tools', 'training', 'stem_fit.py');
  const r = spawnSync(PY, [script, '--teacher', join(REPO_ROOT, 'no-such-cache.npy')], { encoding: 'utf8', env });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^error: .*no-such-cache\.npy does not exist\nhint: .*features\.py --layer mixed2/m);
  assert.not.match(r.stderr, /Traceback/);
  const help = spawnSync(PY, [script, '--help'], { encoding: 'utf8', env });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--stem-graft/);
});

maybe('modality_gap.py (the card\'s diagnosis): metrics on made-up features; a missing checkpoint is an error with a hint', () => {
  const script = join(REPO_ROOT, 'tools', 'training', 'modality_gap.py');
  const out = execFileSync(PY, [script, '--selftest'], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(JSON.parse(out.trim()), { perfect_all_one: true, ten_classes_is_all: true });
  const r = spawnSync(PY, [script, join(REPO_ROOT, 'no-such-run.pth')], { encoding: 'utf8', env });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^error: .*no-such-run\.pth does not exist\nhint: /m);
  assert.not.match(r.stderr, /Traceback/);
});

test.run();
