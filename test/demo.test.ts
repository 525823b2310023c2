// The quick-start demo (`npm start`) end to end on the bundled sample gallery: it must run without ../shared.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from './paths.ts';

test('demo --json: 21 sketch queries against the 84-photo sample, metrics, HTML sheet', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'sketchgpu-demo-')), 'demo.html');
  const r = spawnSync(process.execPath, [resolve(REPO_ROOT, 'bin', 'sketchgpu.js'), 'demo', '--json', '-k', '3', '--out', out], {
    cwd: REPO_ROOT, encoding: 'utf8', timeout: 600_000, env: { ...process.env, SKETCHGPU_SHARED: '/nonexistent' },
  });
  assert.is(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.is(j.gallery, 84);
  assert.is(j.results.length, 21);
  for (const q of j.results) {
    assert.is(q.hits.length, 3);
    for (const h of q.hits) assert.ok(existsSync(join(REPO_ROOT, 'web', 'sample', 'photo', h.path)), h.path);
    for (let i = 1; i < q.hits.length; i++) assert.ok(q.hits[i - 1].score >= q.hits[i].score);
  }
  for (const m of Object.values(j.ret) as number[]) assert.ok(m >= 0 && m <= 1);
  assert.ok(j.top1_class_accuracy >= 0 && j.top1_class_accuracy <= 1);
  assert.match(readFileSync(out, 'utf8'), /<img src="data:image\/png;base64,/);
});

test.run();
