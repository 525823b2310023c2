// Rank photos by how well they match a sketch, in TypeScript (the types ship in the package).
//   npx tsc && node rank.js sketch.png a.jpg b.jpg
import { SketchGPU, type Hit } from 'sketchgpu';

async function rank(sketch: string, photos: string[]): Promise<Hit[]> {
  const m = await SketchGPU.load();
  try {
    const r = await m.index(photos, { onProgress: (done, total) => console.error(`indexed ${done}/${total}`) });
    if (r.skipped.length) console.error(`skipped: ${r.skipped.map((s) => `${s.id} (${s.reason})`).join(', ')}`);
    const e = await m.embedSketch(sketch);
    const [n, dim]: readonly [number, number] = e.shape;
    console.error(`sketch embedding: ${n} x ${dim}, on ${m.info.adapter}`);
    return await m.search(sketch, { k: 10 });
  } finally {
    await m.dispose();
  }
}

const [sketch, ...photos] = process.argv.slice(2);
if (sketch === undefined || photos.length === 0) throw new Error('usage: node rank.js <sketch.png> <photos...>');
const hits = await rank(sketch, photos);
console.log(JSON.stringify(hits.map((h) => ({ rank: h.rank, id: h.id, score: h.score }))));
