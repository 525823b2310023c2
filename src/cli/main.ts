import { autotuneStatus } from '../graph/autotune-node.ts';
import { probeSubgroupMatrixGemm } from '../graph/smat.ts';
import { Command, CommanderError, Option } from 'commander';
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { SketchError, isSketchError } from '../core/errors.ts';
import { nodeGpu } from '../graph/node-gpu.ts';
import { loadImageFile } from '../io/image-file.ts';
import { writeNpy } from '../io/npy.ts';
import { convertCheckpoint } from '../models/load-file.ts';
import { preprocessPhoto, preprocessSketch, sketchAlphaWarning } from '../preprocess/index.ts';
import { loadInputs, parseModality } from './inputs.ts';
import { runDemo } from './demo.ts';
import { ModelInput } from '../api/core.ts';
import { addRetrievalCommands, modelOption, precisionOption } from './retrieval.ts';
import { loadModel } from './engine.ts';
import { addExplainCommand } from './explain.ts';
import { addDescribeCommand } from './describe.ts';
import { addStoreCommands } from './store.ts';
import { addServeCommand } from './serve.ts';

const int = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new SketchError('BAD_ARGUMENT', `${name} must be a positive integer, not "${v}"`, `e.g. ${name} 1.`);
  return n;
};

export function buildCli(): Command {
  const program = new Command('sketchgpu')
    .description('WebGPU inference for zero-shot sketch-based image retrieval (ZSE-SBIR and CAAN).')
    .version('0.1.0')
    // Usage errors are thrown (CommanderError) rather than exiting, so main() prints them as every other refusal:
    // error: and hint: lines, exit code 2. Subcommands inherit both settings from here.
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  const common = (c: Command) =>
    c.option('--adapter <name>', 'pick the GPU adapter whose name contains this (also SKETCHGPU_ADAPTER)')
      .option('--sa-heads <n>', 'SA heads when the weights do not say (default 12)', int('--sa-heads'))
      .option('--ca-heads <n>', 'CA heads when the weights do not say (default 8)', int('--ca-heads'));

  program.command('info')
    .description('show the GPU adapter sketchgpu would use and its features')
    .option('--json', 'print JSON')
    .option('--adapter <name>', 'pick the GPU adapter whose name contains this')
    .action(async (o) => {
      const ctx = await nodeGpu({ adapter: o.adapter });
      const l = ctx.device.limits;
      const autotune = autotuneStatus(ctx);
      // The tensor-core GEMM of --precision f16: used only where it passes its check on this device.
      const smat = await probeSubgroupMatrixGemm(ctx);
      const info = { adapter: ctx.adapterName, features: ctx.features, maxStorageBufferBindingSize: l.maxStorageBufferBindingSize, maxBufferSize: l.maxBufferSize, maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize, autotune, subgroup_matrix_gemm: smat };
      if (o.json) console.log(JSON.stringify(info));
      else {
        console.log(`adapter   ${info.adapter}`);
        console.log(`features  ${Object.entries(info.features).filter(([, v]) => v).map(([k]) => k).join(', ') || 'none'}`);
        console.log(`max binding ${(info.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB, workgroup storage ${info.maxComputeWorkgroupStorageSize} B`);
        console.log(`autotune  ${typeof autotune === 'string' ? autotune : `on: ${autotune.gemm_shapes_measured} GEMM, ${autotune.conv_shapes_measured} convolution and ${autotune.attention_shapes_measured} attention shapes measured so far, in ${autotune.file}`}`);
        console.log(`f16 GEMM  ${smat.ok ? 'subgroup matrices (tensor cores)' : 'portable kernels'}: ${smat.reason}`);
      }
      ctx.destroy();
    });

  common(program.command('convert')
    .description('convert a ZSE-SBIR checkpoint (.pth or .safetensors) to safetensors, checking every tensor')
    .argument('<checkpoint>', 'the PyTorch checkpoint (e.g. best_checkpoint.pth) or a safetensors file')
    .requiredOption('-o, --out <file>', 'output .safetensors')
    .option('--fp16', 'store tensors as float16 (half the size)')
    .option('--json', 'print the report as JSON'))
    .action(async (input: string, o) => {
      const r = await convertCheckpoint(input, o.out, { fp16: !!o.fp16, saHeads: o.saHeads, caHeads: o.caHeads });
      if (o.json) console.log(JSON.stringify(r));
      else {
        console.log(`wrote ${r.output}: ${r.tensorsKept} tensors, ${r.params.toLocaleString('en-US')} parameters, ${r.dtype}, ${(r.bytes / 1e6).toFixed(1)} MB`);
        if (r.tensorsDropped) console.log(`dropped ${r.tensorsDropped} unused tensors (the dead ca.encoder.layers.0 clone)`);
        const c = r.config;
        console.log(`model: width ${c.dim}, depth ${c.depth}, ${c.saHeads}/${c.caHeads} heads, ${c.imageSize} px${c.hasHead ? '' : ', SA only (ret mode)'}`);
      }
    });

  program.command('preprocess')
    .description('preprocess an image exactly as the reference does and save the model input as .npy')
    .addOption(new Option('--modality <m>', 'sketch or photo').choices(['sketch', 'photo']).makeOptionMandatory())
    .argument('<image>', 'PNG or JPEG')
    .requiredOption('-o, --out <file>', 'output .npy (float32 [3,S,S] in [-1,1])')
    .option('--size <px>', 'output side (the model\'s image size)', int('--size'), 224)
    .action(async (image: string, o) => {
      const img = await loadImageFile(image);
      const warning = o.modality === 'sketch' ? sketchAlphaWarning(img) : null;
      if (warning) console.error(`warning: ${warning}`);
      const data = o.modality === 'sketch' ? preprocessSketch(img, o.size) : preprocessPhoto(img, o.size);
      await writeFile(o.out, writeNpy({ dtype: 'f32', shape: [3, o.size, o.size], data }));
      console.error(`wrote ${o.out}: float32 [3,${o.size},${o.size}]`);
    });

  common(program.command('embed')
    .description('L2-normalised global embeddings, one per input: ZSE-SBIR\'s SA cls token ("Ours-Ret"); CAAN\'s sketch, photo or text tower')
    .requiredOption('--weights <file>', 'weights (.safetensors or .pth): ZSE-SBIR or CAAN')
    .addOption(modelOption())
    .addOption(precisionOption())
    .addOption(new Option('--modality <m>', 'sketch, photo, or text (CAAN: each input is a text)').choices(['sketch', 'photo', 'text']).makeOptionMandatory())
    .option('--json', 'print {"embeddings": [[...], ...]}')
    .argument('<input...>', 'PNG/JPEG files or .npy float32 [3,S,S] / [N,3,S,S]; with --modality text, the texts'))
    .action(async (inputs: string[], o) => {
      const m = await loadModel(o.weights, o);
      try {
        let rows: number[][], names: string[];
        if (o.modality === 'text') {
          rows = (await m.embedText(inputs)).rows;
          names = inputs.map((t) => JSON.stringify(t));
        } else {
          const modality = parseModality(o.modality);
          const x = await loadInputs(m, inputs, modality);
          const input = ModelInput.fromTensor(x.data, modality, m.info.imageSize);
          rows = (await (modality === 'sketch' ? m.embedSketch(input) : m.embedPhoto(input))).rows;
          names = x.names;
        }
        if (o.json) console.log(JSON.stringify({ embeddings: rows }));
        else rows.forEach((r, i) => console.log(`${names[i]}\t${r.slice(0, 4).map((v) => v.toFixed(4)).join(' ')} … (${r.length}-d)`));
      } finally {
        await m.dispose();
      }
    });

  common(program.command('score')
    .description('score sketches against photos: cosine of embeddings (ret) or relation-network score (rn)')
    .requiredOption('--weights <file>', 'weights (.safetensors or .pth): ZSE-SBIR or CAAN')
    .addOption(modelOption())
    .addOption(precisionOption())
    .addOption(new Option('--mode <mode>', 'ret or rn').choices(['ret', 'rn']).default('ret'))
    .requiredOption('--sketch <input...>', 'sketch PNG/JPEG files or .npy')
    .requiredOption('--photo <input...>', 'photo PNG/JPEG files or .npy')
    .option('--json', 'print {"scores": [[...], ...]}: a row per sketch, a column per photo'))
    .action(async (o) => {
      const m = await loadModel(o.weights, o);
      try {
        const sk = await loadInputs(m, o.sketch, 'sketch');
        const im = await loadInputs(m, o.photo, 'photo');
        const S = m.info.imageSize;
        const rows = (await m.score(ModelInput.fromTensor(sk.data, 'sketch', S), ModelInput.fromTensor(im.data, 'photo', S), { relation: o.mode === 'rn' })).rows;
        if (o.json) console.log(JSON.stringify({ scores: rows }));
        else {
          console.log(['sketch \\ photo', ...im.names.map((n) => basename(n))].join('\t'));
          rows.forEach((r, i) => console.log([basename(sk.names[i]!), ...r.map((v) => v.toFixed(4))].join('\t')));
        }
      } finally {
        await m.dispose();
      }
    });

  addRetrievalCommands(program, common);
  addStoreCommands(program);
  addServeCommand(program, common);
  addExplainCommand(program, common);
  addDescribeCommand(program);

  program.command('demo')
    .description('the quick-start demo: index the bundled sample gallery, query it with the bundled sketches, show the results')
    .option('--weights <file>', 'weights to use instead of the bundled ones')
    .option('-k, --k <n>', 'results per sketch', (v) => int('-k')(v), 5)
    .option('--out <file>', 'HTML result sheet (default out/demo.html)')
    .option('--json', 'print JSON')
    .action(async (o) => runDemo({ json: !!o.json, weights: o.weights, out: o.out, k: o.k }));

  return program;
}

/** The subcommand named on a command line, for the usage hint ("sketchgpu" when none is). */
function commandOf(argv: string[], program: Command): string {
  const names = new Set(program.commands.map((c) => c.name()));
  const sub = argv.slice(2).find((a) => names.has(a));
  return sub ? `sketchgpu ${sub}` : 'sketchgpu';
}

export async function main(argv: string[]): Promise<number> {
  // bin/sketchgpu.js runs the CLI in a child whose stderr it filters (Dawn's adapter warnings); the progress bars are
  // drawn when its own stderr is a terminal.
  const columns = Number(process.env.SKETCHGPU_STDERR_COLUMNS);
  if (columns > 0) Object.assign(process.stderr, { isTTY: true, columns });
  const program = buildCli();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end through here too, with exit code 0.
      if (e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      // commander.help: a command with subcommands but none named; commander has printed the help.
      console.error(`error: ${e.code === 'commander.help' ? 'no command given' : e.message.replace(/^error: /, '')}`);
      console.error(`hint: run \`${commandOf(argv, program)} --help\` for the usage`);
      return 2;
    }
    if (isSketchError(e)) {
      console.error(`error: ${e.message}`);
      if (e.hint) console.error(`hint: ${e.hint}`);
    } else {
      console.error(`error: ${(e as Error)?.message ?? String(e)}`);
      console.error('hint: this is unexpected; rerun with SKETCHGPU_DEBUG=1 for details and report it.');
    }
    if (process.env.SKETCHGPU_DEBUG) console.error(e);
    return isSketchError(e) ? 2 : 1;
  }
}
