// Bundles what tools/device/run.sh runs on a GPU machine that has no Node toolchain: the GPU test suites and the
// bench, each one ESM file beside its source (so their import.meta paths still find test/fixtures and the repo),
// with WGSL inlined and every npm package inside except the native `webgpu` (and the optional ORT peer).
import { build } from 'esbuild';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tests = readdirSync(resolve(root, 'test')).filter((f) => /^(kernel\..*|model\.zse\.parity|graph\..*)\.test\.ts$/.test(f));
const entryPoints = Object.fromEntries([...tests.map((f) => [`test/${f.replace(/\.ts$/, '.device')}`, `test/${f}`]), ['bench/run.device', 'bench/run.ts'], ['bench/ort_peer.device', 'bench/ort_peer.ts'], ['bench/serve.device', 'bench/serve.ts'], ['bench/decode-worker', 'src/server/decode-worker.ts']]);
const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // LanceDB (an optional peer, native) is not carried: the device checks never open a LanceDB store.
  external: ['webgpu', 'onnxruntime-node', '@lancedb/lancedb', 'apache-arrow'],
  loader: { '.wgsl': 'text' },
  // CommonJS dependencies bundled into ESM still call require() for Node built-ins.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
};
await build({ ...common, entryPoints, outdir: '.', outExtension: { '.js': '.mjs' } });
// The CLI with its dependencies inside (bin/sketchgpu.js imports dist/node/cli.js, which keeps npm packages external).
await build({
  ...common,
  stdin: { contents: "import { main } from './src/cli/main.ts';\nprocess.exitCode = await main(process.argv);\n", resolveDir: root, loader: 'ts', sourcefile: 'device-cli.ts' },
  outfile: 'bin/sketchgpu.device.mjs',
});
console.log('bin/sketchgpu.device.mjs');
console.log(Object.keys(entryPoints).map((e) => `${e}.mjs`).join('\n'));
