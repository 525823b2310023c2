// The package's declarations (dist/types): tsc's declaration emit of src/index.ts and src/browser.ts
// (tsconfig.types.json), then each relative `.ts` import specifier rewritten to `.js`, so that the .d.ts files
// resolve under every moduleResolution a consumer may use (node16/nodenext, bundler) without
// allowImportingTsExtensions. The two entry declarations reference @webgpu/types (a dependency) for the GPU* types.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'types');
rmSync(out, { recursive: true, force: true });
const r = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.types.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

const files = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.d.ts') ? [join(dir, e.name)] : []));
let n = 0;
for (const f of files(out)) {
  let text = readFileSync(f, 'utf8').replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g, (_, a, p, b) => `${a}${p}.js${b}`);
  if (f === join(out, 'index.d.ts') || f === join(out, 'browser.d.ts')) text = `/// <reference types="@webgpu/types" />\n${text}`;
  writeFileSync(f, text);
  n++;
}
console.log(`dist/types: ${n} declaration files`);
