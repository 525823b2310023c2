#!/usr/bin/env node
// Runs the CLI on the bad inputs of issue 15 under /usr/bin/time -v and prints a markdown table of each one's outcome,
// exit code, wall time and peak RSS (docs/reliability.md). Every file is generated into a temp dir.
// Usage: node --import tsx tools/fuzz/bad-inputs.mjs [--keep]   (needs /usr/bin/time: apt-get install time)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { unzipSync, zipSync } from 'fflate';
import { PNG } from 'pngjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'sketchgpu.js');
const W = join(ROOT, 'test/fixtures/zse/tiny64.weights.safetensors');
const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-bad-'));
const f = (name) => join(tmp, name);
const enc = new TextEncoder();

// ---- a minimal pickle writer, as in test/io.checkpoint.test.ts -------------------------------------------------------
class Pickle {
  b = [];
  raw(...xs) { for (const x of xs) this.b.push(x); return this; }
  str(s) { const u = enc.encode(s); return this.raw(0x58, u.length & 0xff, (u.length >> 8) & 0xff, 0, 0, ...u); }
  int(n) { return this.raw(0x4a, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff); }
  global(m, n) { return this.raw(0x63, ...enc.encode(`${m}\n${n}\n`)); }
  tensor(key, numel, size, stride) {
    this.global('torch._utils', '_rebuild_tensor_v2').raw(0x28);
    this.raw(0x28).str('storage').global('torch', 'FloatStorage').str(key).str('cpu').int(numel).raw(0x74, 0x51);
    this.int(0).raw(0x28);
    for (const s of size) this.int(s);
    this.raw(0x74, 0x28);
    for (const s of stride) this.int(s);
    return this.raw(0x74, 0x89).global('collections', 'OrderedDict').raw(0x28, 0x74, 0x52, 0x74, 0x52);
  }
  bytes() { return new Uint8Array(this.b); }
}
const expandDict = (n, size) => {
  const p = new Pickle().raw(0x80, 2, 0x7d, 0x28);
  for (let i = 0; i < n; i++) p.str(`t${i}`).tensor('0', 1, size, size.map(() => 0));
  return p.raw(0x75, 0x2e).bytes();
};
const archive = (pkl, extra = {}) => zipSync({ 'archive/data.pkl': [pkl, { level: 0 }], ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [`archive/${k}`, [v, { level: 0 }]])), 'archive/version': [enc.encode('3\n'), { level: 0 }] });

/** A zip of `count` deflated entries of `size` zero bytes each, written by hand so the zeros are deflated once. */
function zipBomb(count, size) {
  const pkl = new Pickle().raw(0x80, 2).tensor('0', 1, [1], [1]).raw(0x2e).bytes();
  const z = zlib.deflateRawSync(Buffer.alloc(size), { level: 9 });
  const zcrc = zlib.crc32(Buffer.alloc(size));
  const entries = [['archive/data.pkl', Buffer.from(pkl), 0, zlib.crc32(pkl), pkl.length], ['archive/data/0', Buffer.alloc(4), 0, zlib.crc32(Buffer.alloc(4)), 4]];
  for (let i = 0; i < count; i++) entries.push([`archive/data/x${i}`, z, 8, zcrc, size]);
  const locals = [], central = [];
  let off = 0;
  for (const [name, data, method, crc, usize] of entries) {
    const n = Buffer.from(name);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4); lh.writeUInt16LE(method, 8);
    lh.writeUInt32LE(crc, 14); lh.writeUInt32LE(data.length, 18); lh.writeUInt32LE(usize, 22); lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0); ch.writeUInt16LE(20, 4); ch.writeUInt16LE(20, 6); ch.writeUInt16LE(method, 10);
    ch.writeUInt32LE(crc, 16); ch.writeUInt32LE(data.length, 20); ch.writeUInt32LE(usize, 24); ch.writeUInt16LE(n.length, 28); ch.writeUInt32LE(off, 42);
    locals.push(lh, n, data);
    central.push(ch, n);
    off += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0); eocd.writeUInt16LE(entries.length, 8); eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12); eocd.writeUInt32LE(off, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

function pngHeader(width, height, depth, colorType) {
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4); ihdr[8] = depth; ihdr[9] = colorType;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]);
}

async function safetensorsWith(edit) {
  const { readSafetensors, writeSafetensors } = await import(join(ROOT, 'src/io/safetensors.ts'));
  const st = readSafetensors(readFileSync(W));
  const out = new Map();
  for (const [k, t] of st.tensors) {
    const x = Float32Array.from(t.data);
    edit(k, x);
    out.set(k, { dtype: 'f32', shape: t.shape, data: x });
  }
  return writeSafetensors(out, st.metadata);
}

// ---- the files ---------------------------------------------------------------------------------------------------
const sketch = f('sketch.png');
{
  const img = new PNG({ width: 64, height: 64 });
  for (let i = 0; i < 64 * 64; i++) img.data.set(i % 64 > 20 && i % 64 < 24 ? [0, 0, 0, 255] : [255, 255, 255, 255], 4 * i);
  writeFileSync(sketch, PNG.sync.write(img));
}
writeFileSync(f('stride0.pth'), archive(expandDict(1, [32768, 32768]), { 'data/0': new Uint8Array(4) }));
writeFileSync(f('stride0-2000.pth'), archive(expandDict(2000, [16384, 16384]), { 'data/0': new Uint8Array(4) }));
writeFileSync(f('zipbomb.pth'), zipBomb(150, 60 * 2 ** 20));
execFileSync('mkfifo', [f('fifo.png')]);
writeFileSync(f('rgba16-13000.png'), pngHeader(13000, 13000, 16, 6));
writeFileSync(f('gray-1x50M.png'), pngHeader(1, 50_000_000, 8, 0));
{
  const files = unzipSync(readFileSync(join(ROOT, 'test/fixtures/ckpt/zse_tiny.pth')));
  const zip = Buffer.from(zipSync(Object.fromEntries(Object.entries(files).map(([n, b]) => [n, [b, { level: 0 }]]))));
  const key = Object.keys(files).find((k) => /\/data\/\d+$/.test(k) && files[k].length >= 64);
  const at = zip.indexOf(Buffer.from(files[key].subarray(0, 64)));
  for (let i = 0; i < 64; i++) zip[at + i] ^= 0x5a;
  writeFileSync(f('crc.pth'), zip);
}
writeFileSync(f('nan.safetensors'), await safetensorsWith((k, x) => { if (k === 'sa.model.transformer.layers.0.0.mlp.net.0.weight') x[5] = NaN; }));
writeFileSync(f('zero.safetensors'), await safetensorsWith((_k, x) => x.fill(0)));
{
  const b = Buffer.from(readFileSync(W));
  b.writeBigUInt64LE(BigInt(b.length) * 4n, 0);
  writeFileSync(f('badlen.safetensors'), b);
}
const { writeNpy } = await import(join(ROOT, 'src/io/npy.ts'));
for (const [name, v] of [['nan.npy', NaN], ['big.npy', 1e30]]) {
  const x = new Float32Array(3 * 64 * 64).fill(0.5);
  x[100] = v;
  writeFileSync(f(name), writeNpy({ dtype: 'f32', shape: [3, 64, 64], data: x }));
}
mkdirSync(f('gallery/cls'), { recursive: true });
for (let k = 0; k < 2; k++) {
  const img = new PNG({ width: 64, height: 64 });
  for (let i = 0; i < 64 * 64; i++) img.data.set([(i * (k + 3)) & 255, 128, 200, 255], 4 * i);
  writeFileSync(f(`gallery/cls/p${k}.png`), PNG.sync.write(img));
}
execFileSync(process.execPath, [BIN, 'index', f('gallery'), '-o', f('g.sgi'), '--weights', W], { stdio: 'ignore' });
{
  const b = readFileSync(f('g.sgi'));
  b[b.length - 5] ^= 0x10;
  writeFileSync(f('flipped.sgi'), b);
  const { parseIndex, serializeIndex } = await import(join(ROOT, 'src/retrieval/index-format.ts'));
  const ix = parseIndex(readFileSync(f('g.sgi')), 'g.sgi');
  symlinkSync('/etc/passwd', f('gallery/cls/evil.png'));
  writeFileSync(f('crafted-abs.sgi'), serializeIndex({ ...ix, paths: ['/etc/passwd', 'cls/p1.png'] }));
  writeFileSync(f('crafted-link.sgi'), serializeIndex({ ...ix, paths: ['cls/evil.png', 'cls/p1.png'] }));
}
// The largest images accepted (96 MiB decoded): an RGB JPEG (jpeg-js writes 3 components), an RGBA PNG, a 16-bit RGB PNG.
const { default: jpeg } = await import('jpeg-js');
const big = [];
for (const [name, w, h, kind] of [['jpeg-rgb-5800x5780.jpg', 5800, 5780, 'rgb'], ['png-rgba-5000x5000.png', 5000, 5000, 'rgba'], ['png-rgb16-4090x4090.png', 4090, 4090, 'rgb16']]) {
  const px = (x, y) => [x & 255, y & 255, (x ^ y) & 255];
  if (kind === 'rgb') {
    const data = Buffer.alloc(w * h * 4);
    for (let y = 0, i = 0; y < h; y++) for (let x = 0; x < w; x++, i += 4) { const [r, g, b] = px(x, y); data[i] = r; data[i + 1] = g; data[i + 2] = b; data[i + 3] = 255; }
    writeFileSync(f(name), jpeg.encode({ data, width: w, height: h }, 85).data);
  } else {
    const img = new PNG({ width: w, height: h, ...(kind === 'rgb16' ? { bitDepth: 16, colorType: 2, inputColorType: 2, inputHasAlpha: false } : {}) });
    if (kind === 'rgb16') {
      const d = Buffer.alloc(w * h * 6);
      for (let y = 0, i = 0; y < h; y++) for (let x = 0; x < w; x++, i += 6) { d.writeUInt16BE((x * 16) & 0xffff, i); d.writeUInt16BE((y * 16) & 0xffff, i + 2); d.writeUInt16BE(((x ^ y) * 16) & 0xffff, i + 4); }
      img.data = d;
    } else {
      for (let y = 0, i = 0; y < h; y++) for (let x = 0; x < w; x++, i += 4) { const [r, g, b] = px(x, y); img.data[i] = r; img.data[i + 1] = g; img.data[i + 2] = b; img.data[i + 3] = 255; }
    }
    writeFileSync(f(name), PNG.sync.write(img, { deflateLevel: 1, ...(kind === 'rgb16' ? { bitDepth: 16, colorType: 2, inputColorType: 2, inputHasAlpha: false } : {}) }));
  }
  big.push(name);
}
/** A ZSE-SBIR checkpoint of tiny64's tensors, each its own storage, with `view(key)` = [size, stride] replacing some. */
async function zseCheckpoint(view) {
  const { readSafetensors } = await import(join(ROOT, 'src/io/safetensors.ts'));
  const st = readSafetensors(readFileSync(W));
  const p = new Pickle().raw(0x80, 2, 0x7d).str('model').raw(0x7d, 0x28);
  const storages = {};
  let i = 0;
  for (const [k, t] of st.tensors) {
    const key = String(i++);
    const v = view(k);
    if (v) {
      storages[`data/${key}`] = new Uint8Array(4);
      p.str(k).tensor(key, 1, v[0], v[1]);
    } else {
      const strides = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
      storages[`data/${key}`] = new Uint8Array(Float32Array.from(t.data).buffer);
      p.str(k).tensor(key, t.data.length, t.shape, strides);
    }
  }
  return archive(p.raw(0x75, 0x73, 0x2e).bytes(), storages); // SETITEMS, SETITEM (root['model'] = ...), STOP
}
writeFileSync(f('zse-expand-huge.pth'), await zseCheckpoint((k) => (k === 'sa.model.pos_embedding' ? [[1, 65536, 65536], [0, 0, 0]] : null)));
writeFileSync(f('zse-expand-bias.pth'), await zseCheckpoint((k) => (k === 'sa.model.transformer.encoder_norm.bias' ? [[24], [0]] : null)));

// ---- the runs ----------------------------------------------------------------------------------------------------
const runs = [
  ['a sketch (baseline: a good input)', ['embed', '--weights', W, '--modality', 'sketch', sketch]],
  ['`.pth`: stride-0 view of [32768, 32768] over a 1-element storage (4 GiB if expanded)', ['convert', f('stride0.pth'), '-o', f('o.safetensors')]],
  ['`.pth`: 2,000 stride-0 views of 1 GiB each', ['convert', f('stride0-2000.pth'), '-o', f('o.safetensors')]],
  ['ZSE `.pth` whose pos_embedding is a stride-0 view of [1, 65536, 65536] (16 GiB)', ['convert', f('zse-expand-huge.pth'), '-o', f('o.safetensors')]],
  ['ZSE `.pth` whose encoder_norm.bias is a stride-0 view of [24] (a small expand: processed)', ['convert', f('zse-expand-bias.pth'), '-o', f('o.safetensors')]],
  ['`.pth`: zip bomb, 150 deflated entries of 60 MiB zeros (9 GiB)', ['convert', f('zipbomb.pth'), '-o', f('o.safetensors')]],
  ['`.pth`: 64 changed tensor bytes (CRC-32)', ['embed', '--weights', f('crc.pth'), '--modality', 'sketch', sketch]],
  ['`--weights /dev/zero`', ['embed', '--weights', '/dev/zero', '--modality', 'sketch', sketch]],
  ['safetensors with NaN in one tensor', ['embed', '--weights', f('nan.safetensors'), '--modality', 'sketch', sketch]],
  ['safetensors, all weights zero', ['embed', '--weights', f('zero.safetensors'), '--modality', 'sketch', sketch]],
  ['safetensors with a bad header length', ['embed', '--weights', f('badlen.safetensors'), '--modality', 'sketch', sketch]],
  ['`/dev/zero` as an image', ['preprocess', '--modality', 'photo', '/dev/zero', '-o', f('o.npy')]],
  ['a FIFO as an image', ['preprocess', '--modality', 'photo', f('fifo.png'), '-o', f('o.npy')]],
  ['PNG header: 13000x13000, 16-bit RGBA', ['preprocess', '--modality', 'photo', f('rgba16-13000.png'), '-o', f('o.npy')]],
  ['PNG header: 1x50,000,000', ['preprocess', '--modality', 'sketch', f('gray-1x50M.png'), '-o', f('o.npy')]],
  ...big.map((name) => [`${name} (at the 96 MiB decoded bound: accepted)`, ['preprocess', '--modality', 'photo', f(name), '-o', f('o.npy')]]),
  ['`.npy` input with a NaN', ['embed', '--weights', W, '--modality', 'sketch', f('nan.npy')]],
  ['`.npy` input with 1e30', ['embed', '--weights', W, '--modality', 'sketch', f('big.npy')]],
  ['index with one flipped bit', ['query', sketch, '--index', f('flipped.sgi')]],
  ['crafted index naming /etc/passwd', ['query', sketch, '--index', f('crafted-abs.sgi'), '--html', f('o.html')]],
  ['crafted index, photo symlinked to /etc/passwd', ['query', sketch, '--index', f('crafted-link.sgi'), '--html', f('o.html')]],
];
// CPU seconds (user + system) alongside wall time: on a shared machine the wall time depends on the load.
console.log('| input | command | outcome | exit | wall s | CPU s | peak RSS MiB |');
console.log('|---|---|---|---|---|---|---|');
for (const [what, args] of runs) {
  const r = spawnSync('/usr/bin/time', ['-v', process.execPath, BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  const err = r.stderr ?? '';
  const rss = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(err)?.[1] ?? NaN) / 1024;
  const wall = /Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+(?:\.\d+)?)$/m.exec(err);
  const secs = wall ? Number(wall[1] ?? 0) * 60 + Number(wall[2]) : NaN;
  const code = /Exit status: (\d+)/.exec(err)?.[1] ?? String(r.status);
  const cpu = Number(/User time \(seconds\): ([\d.]+)/.exec(err)?.[1] ?? NaN) + Number(/System time \(seconds\): ([\d.]+)/.exec(err)?.[1] ?? NaN);
  const line = err.split('\n').find((l) => l.startsWith('error: ') || l.startsWith('warning: '));
  const outcome = (line ?? (code === '0' ? 'ok' : 'no error line')).replace(tmp, '<tmp>').replace(/\|/g, '\\|').slice(0, 150);
  console.log(`| ${what} | \`${args[0]}\` | ${outcome} | ${code} | ${secs.toFixed(2)} | ${cpu.toFixed(2)} | ${rss.toFixed(0)} |`);
}
if (!process.argv.includes('--keep')) rmSync(tmp, { recursive: true, force: true });
