// The import-direction check of docs/architecture.md: every relative import in src/ points down the layer map (or
// stays inside its own folder), and no file imports itself back through a cycle. The map is LAYERS below; the
// picture in docs/architecture.md draws the same table.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { REPO_ROOT } from './paths.ts';

const SRC = resolve(REPO_ROOT, 'src');

/** Each module of src/ and the modules it may import (its own folder always may). Entry points may import all. */
const LAYERS: Record<string, string[]> = {
  core: [],
  io: ['core'],
  gpu: ['core'],
  text: ['core', 'io'],
  preprocess: ['core', 'io'],
  graph: ['core', 'gpu'],
  models: ['core', 'io', 'gpu', 'graph', 'text', 'preprocess'],
  retrieval: ['core', 'io', 'gpu', 'graph', 'text', 'preprocess', 'models'],
  explain: ['core', 'io', 'gpu', 'graph', 'preprocess', 'models', 'retrieval'],
  api: ['core', 'io', 'gpu', 'graph', 'text', 'preprocess', 'models', 'retrieval', 'explain'],
  server: ['core', 'io', 'gpu', 'graph', 'text', 'preprocess', 'models', 'retrieval', 'explain', 'api'],
  cli: ['core', 'io', 'gpu', 'graph', 'text', 'preprocess', 'models', 'retrieval', 'explain', 'api', 'server'],
};
/** The files src/ may hold at its root: entry points only. */
const ENTRY_POINTS = ['index.ts', 'browser.ts'];

const SPEC = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string, ext = '.ts'): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p, ext));
    else if (e.name.endsWith(ext)) out.push(p);
  }
  return out;
}

/** Relative imports of a file, resolved to repo paths ('src/io/zip.ts', 'shaders/topk.wgsl', ...). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(SPEC)) out.push(relative(REPO_ROOT, resolve(dirname(file), m[1] ?? m[2]!)).split('\\').join('/'));
  return out;
}

const moduleOf = (repoPath: string): string | null => {
  const parts = repoPath.split('/');
  if (parts[0] !== 'src') return null;
  return parts.length === 2 ? '' : parts[1]!;
};

const files = sourceFiles(SRC).map((f) => relative(REPO_ROOT, f).split('\\').join('/'));
const graph = new Map(files.map((f) => [f, importsOf(resolve(REPO_ROOT, f))]));

test('src/ holds only the modules of the layer map, and entry points at its root', () => {
  for (const f of files) {
    const m = moduleOf(f)!;
    if (m === '') assert.ok(ENTRY_POINTS.includes(f.slice(4)), `${f}: src/ holds entry points only (${ENTRY_POINTS.join(', ')}); put it in a module`);
    else assert.ok(m in LAYERS, `${f}: module src/${m} is not in the layer map (test/architecture.layers.test.ts, docs/architecture.md)`);
  }
});

test('every import in src/ points down the layer map', () => {
  const wrong: string[] = [];
  for (const [f, deps] of graph) {
    const from = moduleOf(f)!;
    for (const d of deps) {
      const to = moduleOf(d);
      if (to === null) {
        if (!d.startsWith('shaders/')) wrong.push(`${f} -> ${d} (outside src/ and shaders/)`);
        else if (!f.startsWith('src/graph/ops/')) wrong.push(`${f} -> ${d} (only src/graph/ops reads WGSL)`);
        continue;
      }
      if (from === '' || to === from) continue;
      if (to === '') wrong.push(`${f} -> ${d} (an entry point)`);
      else if (!LAYERS[from]!.includes(to)) wrong.push(`${f} -> ${d} (${from} may import ${LAYERS[from]!.join(', ') || 'nothing'})`);
    }
  }
  assert.equal(wrong, [], `imports against the layer map:\n${wrong.join('\n')}`);
});

test('an op is one unit: src/graph/ops/<op>.ts reads shaders/<op>.wgsl or shaders/<op>/*.wgsl (and shaders/lib/), and every shader has its op', () => {
  const wrong: string[] = [];
  const used = new Set<string>();
  for (const [f, deps] of graph) {
    const op = /^src\/graph\/ops\/([\w-]+)\.ts$/.exec(f)?.[1];
    for (const d of deps.filter((x) => x.endsWith('.wgsl'))) {
      used.add(d);
      if (op === undefined) continue; // reported by the layer test
      if (d !== `shaders/${op}.wgsl` && !d.startsWith(`shaders/${op}/`) && !d.startsWith('shaders/lib/')) wrong.push(`${f} -> ${d}`);
    }
  }
  const shaders = sourceFiles(resolve(REPO_ROOT, 'shaders'), '.wgsl').map((f) => relative(REPO_ROOT, f).split('\\').join('/'));
  for (const s of shaders) {
    if (!used.has(s)) wrong.push(`${s} is read by no op`);
    if (/^\s*override\s/m.test(readFileSync(resolve(REPO_ROOT, s), 'utf8'))) wrong.push(`${s} declares an override: ops specialise WGSL through src/graph/wgsl.ts slots only`);
  }
  assert.equal(wrong, [], `ops and shaders out of pairs:\n${wrong.join('\n')}`);
});

test('no import cycles between files of src/', () => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const d of graph.get(f) ?? []) if (graph.has(d)) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of files) visit(f, []);
  assert.equal(cycles, [], `import cycles:\n${cycles.join('\n')}`);
});

test.run();
