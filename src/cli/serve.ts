/**
 * `sketchgpu serve`: the search service over HTTP (src/server, docs/server.md). Opens the index (an .sgi file or a
 * LanceDB table) and its weights once, answers queries until Ctrl-C / SIGTERM, then lets the queued ones finish.
 */
import { Command } from 'commander';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { SketchError } from '../core/errors.ts';
import { checkIndexModel } from '../retrieval/index-format.ts';
import { SearchService } from '../server/service.ts';
import { DEFAULT_MAX_BODY, startSearchServer } from '../server/http.ts';
import { loadModel } from './engine.ts';
import { modelOption, posInt, precisionOption } from './retrieval.ts';
import { addAnnOptions, openGalleryForSearch } from './store.ts';

const port = (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new SketchError('BAD_ARGUMENT', `--port must be an integer from 0 to 65535, not "${v}"`, 'e.g. --port 8090 (0 picks a free one).');
  return n;
};
const nonNegInt = (name: string) => (v: string) => {
  if (!/^\d{1,9}$/.test(v)) throw new SketchError('BAD_ARGUMENT', `${name} must be a non-negative integer, not "${v}"`, `e.g. ${name} 256.`);
  return Number(v);
};

/** The token of --token-file: the file's first line, trimmed (at most 4 KiB read). */
function readToken(file: string): string {
  let text: string;
  try {
    if (statSync(file).size > 4096) throw new SketchError('BAD_ARGUMENT', `${file} is larger than a token file (4 KiB)`, 'Put only the token in it.');
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof SketchError) throw e;
    throw new SketchError('IO', `cannot read the token file ${file}: ${(e as Error).message}`, 'Pass a file that holds the token, e.g. made with `openssl rand -hex 24 > token.txt`.');
  }
  return text.split(/\r?\n/)[0]!.trim();
}

export function addServeCommand(program: Command, common: (c: Command) => Command): void {
  common(addAnnOptions(program.command('serve')
    .description('answer sketch (and CAAN text) queries over HTTP with one model and index kept open: a search page at /, POST /search, GET /info, /health, /photos/<id> (docs/server.md)')
    .requiredOption('--index <file>', 'the gallery: an .sgi file made by `sketchgpu index`, or lancedb:<folder or URI>')
    .option('--weights <file>', 'weights (default: the file the index was built with); must be the same weights')
    .addOption(modelOption())
    .addOption(precisionOption())
    .option('--host <addr>', 'address to bind (127.0.0.1: this machine only; 0.0.0.0: every interface, and then put it behind a proxy that authenticates)', '127.0.0.1')
    .option('--port <n>', 'port (0 picks a free one)', port, 8090)
    .option('--max-batch <n>', 'queries that run together on the GPU', posInt('--max-batch'), 16)
    .option('--max-queue <n>', 'queries that may wait; beyond, a query is refused with 503', nonNegInt('--max-queue'), 256)
    .option('--decode-threads <n>', 'threads that decode and preprocess the sketches (default: the CPU cores less one, at most 8; 0: on the main thread)', nonNegInt('--decode-threads'))
    .option('--max-body <MiB>', 'largest request body in MiB', posInt('--max-body'), DEFAULT_MAX_BODY / 2 ** 20)
    .option('--cors <origin>', 'let pages of this origin call the server from a browser (Access-Control-Allow-Origin), e.g. https://app.example.org')
    .option('--no-photos', 'do not serve the gallery\'s photos at /photos/<id>')
    .option('--token-file <file>', 'require "Authorization: Bearer <token>" on every request but the page and /health, the token read from this file (or from SKETCHGPU_SERVE_TOKEN); the page takes it as /#token=<token>')
    .option('--log', 'print one JSON line per request on stdout')
    .option('--json', 'print the startup line as JSON (with the port, for scripts)')
    .addHelpText('after', '\nSIGHUP opens the index again (after `sketchgpu index --update`, a rebuild or more shards) and searches it from the\nnext batch on; SIGINT / SIGTERM stop after answering the queued queries.')))
    .action(async (o) => {
      const token = o.tokenFile ? readToken(o.tokenFile) : process.env.SKETCHGPU_SERVE_TOKEN || undefined;
      const gallery = await openGalleryForSearch(o.index, o);
      const { index, ann } = gallery;
      const weightsPath: string | undefined = o.weights ?? index.weightsPath;
      if (!weightsPath) throw new SketchError('BAD_ARGUMENT', 'the index does not name its weights', 'Pass --weights <file>.');
      if (!o.weights && !existsSync(weightsPath)) {
        gallery.store.close();
        throw new SketchError('IO', `the index was built with ${weightsPath}, which no longer exists`, 'Pass the same weights with --weights <file>.');
      }
      const load = () => loadModel(weightsPath, o);
      let m;
      try {
        m = await load();
        checkIndexModel(index, m.info.weightsSha256, o.index, weightsPath, m.info.model);
      } catch (e) {
        await m?.dispose();
        gallery.store.close();
        throw e;
      }
      let fatal: Error | undefined;
      let stop: () => void = () => undefined;
      const stopped = new Promise<void>((r) => { stop = r; });
      const service = new SearchService({
        model: m, index, ann, maxBatch: o.maxBatch, maxQueue: o.maxQueue, reload: load,
        decodeThreads: o.decodeThreads ?? Math.min(8, Math.max(0, availableParallelism() - 1)), onWarning: (w) => console.error(`warning: ${w}`),
        onEvent: (e) => {
          if (e.type === 'device-lost') console.error(`warning: the GPU device was lost (${e.reason}: ${e.message}); loading the model again`);
          else if (e.type === 'reloaded') console.error(`the model is loaded again (${(e.ms / 1000).toFixed(1)} s); serving`);
          else {
            fatal = e.error;
            stop();
          }
        },
      });
      let running;
      try {
        running = await startSearchServer(service, {
          host: o.host, port: o.port, maxBodyBytes: o.maxBody * 2 ** 20, cors: o.cors, photos: o.photos && !ann, token,
          log: o.log ? (l) => console.log(JSON.stringify(l)) : undefined,
          onError: (e) => console.error(`error: ${(e as Error)?.stack ?? e}`),
        });
      } catch (e) {
        await service.close();
        gallery.store.close();
        throw e;
      }
      const photos = gallery.count;
      if (o.json) {
        console.log(JSON.stringify({ url: running.url, host: o.host, port: running.port, index: o.index, photos, weights: weightsPath, model: m.info.model, adapter: m.info.adapter, ann: !!ann, token: !!token }));
      } else {
        console.log(`serving ${photos} photos of ${o.index} (${m.info.label} weights ${basename(weightsPath)}${ann ? ', ANN' : ''}) on ${m.info.adapter}`);
        console.log(`  ${running.url}/   the search page (draw a sketch); API: POST /search (a sketch image, or JSON), GET /info, /health${o.photos && !ann ? ', /photos/<id>' : ''}   (Ctrl-C stops)`);
        if (token) console.log(`  a token is required: open the page as ${running.url}/#token=<token>; API calls send "Authorization: Bearer <token>"`);
      }
      const onSignal = () => stop();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      // SIGHUP: open the index again (rebuilt, or grown by `index --update` / more shards) and search it from the next
      // batch on; a failure keeps the gallery being served.
      let store = gallery.store;
      let reloads = Promise.resolve();
      const reload = async () => {
        try {
          const g = await openGalleryForSearch(o.index, o);
          try {
            await service.replaceGallery(g.index, g.ann);
          } catch (e) {
            g.store.close();
            throw e;
          }
          const old = store;
          store = g.store;
          old.close();
          console.error(`reloaded ${o.index}: ${g.count} photos`);
        } catch (e) {
          console.error(`warning: reloading ${o.index} failed, so the previous gallery is still served: ${(e as Error)?.message ?? e}`);
        }
      };
      const onHup = () => { reloads = reloads.then(reload); };
      process.on('SIGHUP', onHup);
      await stopped;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('SIGHUP', onHup);
      if (!o.json && !fatal) console.error('stopping: finishing the queued queries');
      await reloads;
      await running.close();
      store.close();
      if (fatal) throw fatal;
    });
}
