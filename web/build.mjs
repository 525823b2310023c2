// Builds the web page's bundle (dist/web/app.js: the app and the engine, WGSL inlined) and the sample gallery's
// file lists (dist/web/sample.json). Called by tools/build.mjs; `node web/build.mjs` runs it alone.
import { build } from 'esbuild';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const IMAGE_EXT = /\.(png|jpe?g)$/i;

/** Image files below dir, '/'-separated relative paths, sorted as `sketchgpu index` sorts them (hidden entries skipped). */
function listImages(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && IMAGE_EXT.test(e.name)) out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

export async function buildWeb(root = ROOT) {
  await build({
    absWorkingDir: root,
    entryPoints: { app: 'web/app.ts' },
    outdir: 'dist/web',
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    loader: { '.wgsl': 'text' },
    sourcemap: true,
    logLevel: 'warning',
  });
  const sample = join(root, 'web', 'sample');
  const manifest = { photos: listImages(join(sample, 'photo')), sketches: listImages(join(sample, 'sketch')) };
  mkdirSync(join(root, 'dist', 'web'), { recursive: true });
  writeFileSync(join(root, 'dist', 'web', 'sample.json'), JSON.stringify(manifest) + '\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await buildWeb();
