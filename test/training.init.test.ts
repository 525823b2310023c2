// The training tools' two starts from weights of another shape (tools/training/check_init.py): `train_zse.py --init`
// at another `--size` (position embedding resized, RN head fresh) and `train_caan.py --init-towers` (both CAAN image
// towers embed as the ZSE file's SA encoder does), `--teacher-whiten`'s PooledTransform (K = 0: mean subtracted
// only; K > 0: K-wide, half-whitened, each modality centred) and `--init` from a narrower or shallower model (grown,
// the SA and CA outputs kept), CAAN's compact token table in the reference, `--init-heads` (a warm restart's
// projections), `--distill-mix`'s CutMix views and mixed teacher maps, `--stem-graft` (a fitted stem appended,
// the function kept) and `--edge-sketch`'s pseudo-sketches (ink on edges only, a flat picture blank). Needs
// /usr/bin/python3 with torch (skipped without).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.ts';

const PY = '/usr/bin/python3';
const hasTorch = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
const maybe = hasTorch ? test : test.skip;

maybe('--init across patch grids and widths, --init-towers from a ZSE file and --teacher-whiten do what they must', () => {
  const out = execFileSync(PY, [join(REPO_ROOT, 'tools', 'training', 'check_init.py')], {
    encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const r = JSON.parse(out.trim().split('\n').pop()!);
  assert.equal(r.fit_to_grid.grid, '4 -> 6');
  assert.equal(r.fit_to_grid.fresh_rn_tensors, 5); // RN weights and biases whose width follows the anchor count
  assert.ok(r.fit_to_grid.kept > 50, `kept ${r.fit_to_grid.kept}`);
  // Same weights, same float32 ops in the same order: the towers' cls equals the SA cls (the script asserts < 1e-5).
  assert.ok(r.init_towers.max_abs_diff < 1e-5, `max |diff| ${r.init_towers.max_abs_diff}`);
  // float32 transform of float64-fitted directions: 1e-4 relative leaves room for the cast, not for a wrong formula
  assert.equal(r.whiten.dim, 8);
  assert.ok(r.whiten.k0_max_diff < 1e-5 && r.whiten.centred < 1e-4, JSON.stringify(r.whiten));
  assert.ok(r.whiten.diag_rel_err < 1e-4 && r.whiten.offdiag_rel < 1e-4, JSON.stringify(r.whiten));
  // grow_: duplicated channels through the same float32 ops (sums in another order: 1e-5; the CA norm's eps: 1e-4)
  assert.equal(r.grow.width, '16 -> 32');
  assert.equal(r.grow.depth, '2 -> 4');
  assert.ok(r.grow.sa_max_abs_diff < 1e-5 && r.grow.ca_max_abs_diff < 1e-4, JSON.stringify(r.grow));
  assert.ok(r.grow.noisy_copy_diff > 1e-4, JSON.stringify(r.grow));
  // the compact token table: the same rows, so the same float32 ops give the same embedding bit for bit
  assert.equal(r.token_table.text_max_abs_diff, 0);
  assert.ok(r.token_table.zero_rows > 49000, JSON.stringify(r.token_table));
  // --init-heads: the projections and proxies of a last.pt back bit for bit; a file without them refused
  assert.equal(r.init_heads.max_abs_diff, 0);
  assert.equal(r.init_heads.refused_bare, true);
  // --distill-mix: views exact outside/inside their box (the script asserts it); targets' shares within float32 sums
  assert.equal(r.cutmix.views, 10);
  assert.ok(r.cutmix.max_abs_diff < 1e-5 && r.cutmix.area_blur < 0.05, JSON.stringify(r.cutmix));
  // --stem-graft: the grafted model computes what the original did (exact zeros added), the stride-8 map is the two
  // stems' maps side by side, and a --stem that is not the sum is refused with the right one in the hint
  assert.equal(r.graft.stem, '(4, 8, 12) + (3, 5, 6)');
  assert.ok(r.graft.sa_max_abs_diff < 1e-6, JSON.stringify(r.graft));
  assert.ok(r.graft.own_map_diff < 1e-6 && r.graft.grafted_map_diff < 1e-6, JSON.stringify(r.graft));
  // --edge-sketch: ink in the band around a drawn box's outline and nowhere else (exact zero off it), a sparse page,
  // and a flat picture stays a blank page (the script asserts each; these read its measurements back)
  assert.ok(r.edge.on_edge > 0.3 && r.edge.off_edge === 0, JSON.stringify(r.edge));
  assert.ok(r.edge.max_share < 0.2 && r.edge.flat_blank === true, JSON.stringify(r.edge));
});

test.run();
