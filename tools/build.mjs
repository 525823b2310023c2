// Bundles the CLI and library for Node (dist/node). WGSL files are inlined as text.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  absWorkingDir: root,
  entryPoints: { cli: 'src/cli/main.ts', index: 'src/index.ts', 'decode-worker': 'src/server/decode-worker.ts' },
  outdir: 'dist/node',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  loader: { '.wgsl': 'text' },
  sourcemap: true,
  logLevel: 'warning',
});

// The browser bundle: one ESM file with the WGSL and its dependencies inside.
await build({
  absWorkingDir: root,
  entryPoints: { sketchgpu: 'src/browser.ts' },
  outdir: 'dist/browser',
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  loader: { '.wgsl': 'text' },
  sourcemap: true,
  logLevel: 'warning',
});

// The web page (web/): its bundle and the sample gallery's file lists, in dist/web.
await (await import('../web/build.mjs')).buildWeb(root);

// `require('sketchgpu')`: the package is ESM-only; say so plainly instead of ERR_PACKAGE_PATH_NOT_EXPORTED.
const { writeFileSync } = await import('node:fs');
writeFileSync(resolve(root, 'dist', 'require.cjs'), `// The "require" condition of package.json: sketchgpu is an ES module.
throw Object.assign(new Error(
  'sketchgpu is an ES module and cannot be loaded with require(). Use import instead:\\n' +
  "  import { SketchGPU } from 'sketchgpu';            // in an ES module (.mjs, or \\"type\\": \\"module\\")\\n" +
  "  const { SketchGPU } = await import('sketchgpu');  // in CommonJS"), { code: 'ERR_REQUIRE_ESM' });
`);
