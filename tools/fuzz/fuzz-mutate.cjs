// The fallback engine of tools/fuzz/fuzz.mjs where Jazzer.js cannot load (its prebuilt addon needs glibc >= 2.38): a
// plain mutation fuzzer, NOT coverage-guided. Mutates the corpus files (bit flips, random bytes, chunk insert/delete/
// duplicate, truncation, splices of two inputs) and runs the target on each; an input is kept as a crash when the
// target throws anything (fuzz/targets.ts rethrows all but SketchError), takes over 10 s, or leaves RSS above 1 GiB.
// Usage: node tools/fuzz/fuzz-mutate.cjs <bundle.cjs> <corpus dir> <seconds> <crash dir>; prints {"executions", "crashes"}.
const { createHash } = require('node:crypto');
const { readdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const [bundle, corpus, seconds, crashes] = process.argv.slice(2);
const { fuzz } = require(bundle);
const seeds = readdirSync(corpus).map((n) => readFileSync(join(corpus, n))).filter((b) => b.length <= 1 << 20);
if (seeds.length === 0) seeds.push(Buffer.alloc(0));
let s = 0x9e3779b9;
const rnd = (n) => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) % Math.max(1, n));
const interesting = [0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0xffffffff];

function mutate(src) {
  let b = Buffer.from(src);
  for (let k = 1 + rnd(4); k > 0; k--) {
    switch (rnd(7)) {
      case 0: if (b.length) b[rnd(b.length)] ^= 1 << rnd(8); break;
      case 1: if (b.length) b[rnd(b.length)] = rnd(256); break;
      case 2: if (b.length >= 4) b.writeUInt32LE(interesting[rnd(interesting.length)] >>> 0, rnd(b.length - 3)); break;
      case 3: { const at = rnd(b.length + 1); b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + rnd(16) }, () => rnd(256))), b.subarray(at)]); break; }
      case 4: { const at = rnd(b.length); b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rnd(64))]); break; }
      case 5: b = b.subarray(0, rnd(b.length + 1)); break;
      case 6: { const o = seeds[rnd(seeds.length)]; const at = rnd(b.length + 1); b = Buffer.concat([b.subarray(0, at), o.subarray(rnd(o.length + 1))]); break; }
    }
  }
  return b;
}

const end = Date.now() + Number(seconds) * 1000;
let executions = 0, found = 0;
const keep = (input, why) => {
  found++;
  writeFileSync(join(crashes, `${why}-${createHash('sha1').update(input).digest('hex')}`), input);
};
while (Date.now() < end) {
  const input = mutate(seeds[rnd(seeds.length)]);
  const t0 = performance.now();
  try {
    fuzz(input);
  } catch (e) {
    keep(input, 'crash');
    process.stderr.write(`crash: ${(e && e.stack) || e}\n`);
  }
  executions++;
  if (performance.now() - t0 > 10_000) keep(input, 'slow');
  if (process.memoryUsage().rss > 2 ** 30) keep(input, 'oom');
  // Inputs that ran through whole (no refusal) are worth mutating further: a crude corpus growth.
  if (seeds.length < 5000 && rnd(64) === 0) seeds.push(input);
}
console.log(JSON.stringify({ executions, crashes: found }));
