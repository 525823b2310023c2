// The quick-start demo (`npm start`) end to end on the bundled sample gallery: it must run without ../shared.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from './paths.ts';

test('demo --json: 21 sketch queries against the 84-photo sample, metrics, HTML sheet in ./out of the working directory', () => {
  // Run from another folder (as `npx sketchgpu demo` in an app): the sheet lands in that folder's out/.
  const cwd = mkdtempSync(join(tmpdir(), 'sketchgpu-demo-'));
  const out = join(cwd, 'out', 'demo.html');
  const r = spawnSync(process.execPath, [resolve(REPO_ROOT, 'bin', 'sketchgpu.js'), 'demo', '--json', '-k', '3'], {
    cwd, encoding: 'utf8', timeout: 600_000, env: { ...process.env, SKETCHGPU_SHARED: '/nonexistent', XDG_CACHE_HOME: join(cwd, 'cache') },
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
  const html = readFileSync(out, 'utf8');
  assert.match(html, /<img src="data:image\/png;base64,/);
  // Each sketch's class is named, same-class hits are marked (exactly those of the JSON), both scores are labelled,
  // and no number can break across lines.
  const sections = html.split('<section>').slice(1);
  assert.is(sections.length, 21);
  sections.forEach((sec, i) => {
    const want = j.results[i].sketch.split('/').at(-2);
    assert.match(sec, new RegExp(`<div class="cls">${want}</div>`));
    const marked = (sec.match(/same class<\/span>/g) ?? []).length;
    assert.is(marked, j.results[i].hits.filter((h: { path: string }) => h.path.split('/')[0] === want).length, `${want}: marks`);
    assert.is((sec.match(/<span class="num">RN \d\.\d{4}<\/span>/g) ?? []).length, 3);
    assert.is((sec.match(/<span class="num">cos -?\d\.\d{4}<\/span>/g) ?? []).length, 3);
  });
  assert.not.match(html, /break-all/);
  assert.match(html, /\.num\{white-space:nowrap\}/);
});

test.run();
