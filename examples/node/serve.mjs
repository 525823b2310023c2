// Sketch search over HTTP for a folder of photos, with the bundled ZSE-SBIR weights, in a few lines of an app:
//   node serve.mjs photos/ [port]      then open the printed URL (the search page), or POST a sketch to /search
// Prints {"url": ...} when it listens; Ctrl-C answers the queued queries and stops. (`sketchgpu serve` does the same
// for an index file, with every option: docs/server.md.)
import { SketchGPU, SearchService, startSearchServer, parseIndex } from 'sketchgpu';

const [folder, port = '8090'] = process.argv.slice(2);
if (!folder) {
  console.error('usage: node serve.mjs <photo folder> [port]');
  process.exit(2);
}
const m = await SketchGPU.load();
await m.index(folder);
// The in-memory index as the service takes it (the same bytes `sketchgpu index` would write).
const service = new SearchService({ model: m, index: parseIndex(m.saveIndex(), folder) });
const server = await startSearchServer(service, { port: Number(port) });
console.log(JSON.stringify({ url: server.url }));
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => void server.close());
