// The esbuild bundles: the Node CLI/library and the browser library (no Node built-ins inside).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { REPO_ROOT } from './paths.ts';

test('tools/build.mjs bundles the Node and browser entries', () => {
  const r = spawnSync(process.execPath, ['tools/build.mjs'], { cwd: REPO_ROOT, encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const browser = readFileSync(resolve(REPO_ROOT, 'dist/browser/sketchgpu.js'), 'utf8');
  assert.not.match(browser, /from ["']node:|require\(["']node:|from ["']webgpu["']/, 'the browser bundle imports Node modules');
  assert.match(browser, /@compute @workgroup_size/, 'WGSL is not inlined');
  assert.match(browser, /export \{/);
  const node = readFileSync(resolve(REPO_ROOT, 'dist/node/cli.js'), 'utf8');
  assert.match(node, /@compute @workgroup_size/);
});

test.run();
