// Rank photos by how well they match a sketch, with the bundled ZSE-SBIR weights.
//   node rank.mjs sketch.png photos/            (a folder, searched recursively)
//   node rank.mjs sketch.png a.jpg b.jpg c.png  (files)
// Prints the ranking as JSON: [{ rank, id, score }, ...].
import { SketchGPU } from 'sketchgpu';

const [sketch, ...photos] = process.argv.slice(2);
if (!sketch || photos.length === 0) {
  console.error('usage: node rank.mjs <sketch.png> <photo folder | photos...>');
  process.exit(2);
}
const m = await SketchGPU.load();
try {
  await m.index(photos.length === 1 && !/\.(png|jpe?g)$/i.test(photos[0]) ? photos[0] : photos);
  const hits = await m.search(sketch, { k: 10 });
  console.log(JSON.stringify(hits.map((h) => ({ rank: h.rank, id: h.id, score: h.score }))));
} finally {
  await m.dispose();
}
