// The API reference (issue 17): every symbol src/api exports, and every public method of the model, carries a doc
// comment with an @example; `npm run docs` (typedoc) builds the reference with the SketchGPU pages and those examples.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from './paths.ts';

const API = resolve(REPO_ROOT, 'src', 'api');

function jsDoc(node: ts.Node): { text: string; tags: string[] } | null {
  const docs = (node as { jsDoc?: ts.JSDoc[] }).jsDoc;
  if (!docs?.length) return null;
  const d = docs[docs.length - 1]!;
  return { text: ts.getTextOfJSDocComment(d.comment) ?? '', tags: (d.tags ?? []).map((t) => t.tagName.text) };
}
const exported = (n: ts.Node) => ts.canHaveModifiers(n) && (ts.getModifiers(n) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
const hidden = (n: ts.Node) => ts.canHaveModifiers(n) && (ts.getModifiers(n) ?? []).some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword);

test('every export of src/api and every public method of the model has a doc comment with an @example', () => {
  const missing: string[] = [];
  let checked = 0;
  for (const f of readdirSync(API).filter((x) => x.endsWith('.ts'))) {
    const src = ts.createSourceFile(f, readFileSync(join(API, f), 'utf8'), ts.ScriptTarget.ES2022, true);
    for (const st of src.statements) {
      if (!exported(st)) continue;
      const name = ts.isVariableStatement(st) ? st.declarationList.declarations.map((d) => d.name.getText()).join(',') : (st as ts.DeclarationStatement).name?.getText() ?? '?';
      const doc = jsDoc(st);
      if (doc?.tags.includes('internal')) continue;
      checked++;
      if (!doc || !doc.tags.includes('example')) missing.push(`${f}: ${name}${doc ? ' (no @example)' : ' (no doc comment)'}`);
      if (!ts.isClassDeclaration(st)) continue;
      for (const m of st.members) {
        if (hidden(m) || !(ts.isMethodDeclaration(m) || ts.isGetAccessor(m))) continue;
        if (m.name.getText().startsWith('#')) continue;
        const md = jsDoc(m);
        if (md?.tags.includes('internal')) continue;
        checked++;
        // The model's calls need an example; small helpers (Embeddings.rows) a comment.
        const needExample = name === 'SketchGPUModel' || name === 'SketchGPU';
        if (!md || (needExample && !md.tags.includes('example'))) missing.push(`${f}: ${name}.${m.name.getText()}${md ? ' (no @example)' : ' (no doc comment)'}`);
      }
    }
  }
  assert.ok(checked >= 20, `only ${checked} symbols checked`);
  assert.equal(missing, [], `undocumented:\n${missing.join('\n')}`);
});

test('npm run docs builds the API reference (typedoc) with SketchGPU and its examples', () => {
  const out = mkdtempSync(join(tmpdir(), 'sketchgpu-docs-'));
  const r = spawnSync(process.execPath, [resolve(REPO_ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--out', out], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 300_000 });
  assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.not.match(r.stdout + r.stderr, /\[error\]/);
  for (const page of ['sketchgpu.SketchGPU.html', 'sketchgpu_browser.SketchGPU.html']) {
    assert.ok(existsSync(join(out, 'classes', page)), `${page} missing`);
  }
  const html = readFileSync(join(out, 'classes', 'sketchgpu.SketchGPU.html'), 'utf8');
  for (const name of ['load', 'embedSketch', 'embedPhoto', 'index', 'search', 'explain', 'dispose']) assert.match(html, new RegExp(`id="${name.toLowerCase()}"`, 'i'), `${name} not documented`);
  const code = [...html.matchAll(/<pre><code class="ts">([\s\S]*?)<\/code>/g)].map((m) => m[1]!.replace(/<[^>]+>/g, ''));
  assert.ok(code.length >= 8, `${code.length} code examples in the SketchGPU page`);
  assert.ok(code.some((c) => c.includes('await m.search(')), 'the search example is in the page');
});

test.run();
