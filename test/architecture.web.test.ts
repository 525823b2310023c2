// The page is an app of the embedding API (issue 17: "the page is rebuilt on it, no second path into the
// internals"): web/*.ts import from the library only `sketchgpu/browser`'s entry (src/browser.ts), and from it only
// what src/api declares (SketchGPU, its options and results) and the error type every caller needs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from './paths.ts';

const WEB = resolve(REPO_ROOT, 'web');
const API = resolve(REPO_ROOT, 'src', 'api');

/** The names src/api exports (classes, functions, constants, interfaces and types). */
function apiNames(): Set<string> {
  const names = new Set<string>();
  for (const f of readdirSync(API).filter((x) => x.endsWith('.ts'))) {
    for (const m of readFileSync(join(API, f), 'utf8').matchAll(/^export\s+(?:declare\s+)?(?:async\s+)?(?:class|interface|type|function|const|let)\s+([A-Za-z_$][\w$]*)/gm)) names.add(m[1]!);
  }
  return names;
}

test('web/*.ts reach the library only through the API of src/browser.ts', () => {
  const allowed = apiNames();
  for (const n of ['SketchError', 'isSketchError', 'ErrorCode']) allowed.add(n);
  assert.ok(allowed.has('SketchGPU') && allowed.has('ModelInput'), `api names: ${[...allowed].join(', ')}`);
  const wrong: string[] = [];
  let imports = 0;
  for (const f of readdirSync(WEB).filter((x) => x.endsWith('.ts'))) {
    const text = readFileSync(join(WEB, f), 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s+(type\s+)?(?:\{([^}]*)\}|[\w*\s]+)\s*from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const from = m[3] ?? m[4]!;
      if (!from.includes('src/')) continue;
      imports++;
      if (from !== '../src/browser.ts') {
        wrong.push(`${f}: imports ${from} (only ../src/browser.ts, the API)`);
        continue;
      }
      if (m[2] === undefined) {
        wrong.push(`${f}: imports ${from} without naming what (name the API symbols)`);
        continue;
      }
      for (const spec of m[2].split(',').map((x) => x.trim()).filter(Boolean)) {
        const name = spec.replace(/^type\s+/, '').split(/\s+as\s+/)[0]!.trim();
        if (!allowed.has(name)) wrong.push(`${f}: imports ${name}, which is not part of the API (src/api)`);
      }
    }
  }
  assert.ok(imports >= 5, `only ${imports} imports of the library found in web/`);
  assert.equal(wrong, [], wrong.join('\n'));
});

test.run();
