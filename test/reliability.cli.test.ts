// Issue 15, "Untrusted files cannot hurt": the CLI's refusals of hostile or broken inputs (docs/reliability.md).
// Every bad file is generated here, in a temp dir; memory bombs must be refused before anything is allocated, so
// these tests are cheap.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as zlib from 'node:zlib';
import { writeNpy } from '../src/io/npy.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { toFloat32, type HostTensor } from '../src/core/tensor.ts';
import { parseIndex, serializeIndex } from '../src/retrieval/index-format.ts';
import { FIXTURES } from './paths.ts';
import { assertCleanError, BIN, cli, png } from './cli-util.ts';

const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-reliability-'));
const W = resolve(FIXTURES, 'zse', 'tiny64.weights.safetensors');
const sketch = join(tmp, 'sketch.png');
png(sketch, 64, 64, 1, 'sketch');

test('usage errors exit 2 with error: and hint: lines', () => {
  for (const args of [['embed', '--modality', 'sketch', sketch], ['embed', '--bogus'], ['nosuch'], [], ['query', '--index']]) {
    const r = cli(args);
    assertCleanError(r, /--help/);
  }
  assert.is(cli(['--version']).code, 0);
  assert.is(cli(['embed', '--help']).code, 0);
});

test('an unknown adapter is refused, listing the adapters found', () => {
  const r = cli(['info', '--adapter', 'no-such-adapter-zzz']);
  assertCleanError(r, /no GPU adapter matches "no-such-adapter-zzz".*the adapters found: \S/);
});

test('only regular files are read: a device, a FIFO and a directory are refused before reading', () => {
  const fifo = join(tmp, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const dir = join(tmp, 'dir.png');
  mkdirSync(dir);
  for (const f of ['/dev/zero', fifo, dir]) {
    const what = f === fifo ? /named pipe/ : f === dir ? /directory/ : /character device/;
    assertCleanError(cli(['embed', '--weights', f, '--modality', 'sketch', sketch]), what);
    assertCleanError(cli(['embed', '--weights', W, '--modality', 'sketch', f]), what);
    assertCleanError(cli(['preprocess', '--modality', 'sketch', f, '-o', join(tmp, 'x.npy')]), what);
    assertCleanError(cli(['query', sketch, '--index', f]), what);
  }
});


test('a safetensors file with a bad header length gets a safetensors error, not "not a PyTorch checkpoint"', () => {
  const good = readFileSync(W);
  const bad = Buffer.from(good);
  bad.writeBigUInt64LE(BigInt(good.length) * 4n, 0);
  const f = join(tmp, 'badlen.safetensors');
  writeFileSync(f, bad);
  const r = cli(['embed', '--weights', f, '--modality', 'sketch', sketch]);
  assertCleanError(r, /safetensors header length field says \d+ bytes/);
  assert.not.match(r.err, /PyTorch/);
});


/** A PNG with only the IHDR of the given size and an empty IDAT: a few dozen bytes that claim a huge image. */
function pngHeader(width: number, height: number, depth: number, colorType: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(16))), chunk('IEND', Buffer.alloc(0))]);
}

test('images are bounded by decoded bytes (bit depth and channels included) and by each side, before decoding', () => {
  const cases: [string, Buffer, RegExp][] = [
    ['rgba16.png', pngHeader(13000, 13000, 16, 6), /13000x13000 pixels, 4 channels of 16 bits, decodes to 1289 MiB/],
    ['gray16.png', pngHeader(6000, 6000, 16, 0), /unused/],
    ['long.png', pngHeader(1, 50_000_000, 8, 0), /1x50000000 pixels is larger than sketchgpu decodes \(at most 32768 pixels a side\)/],
    // SOI, then a baseline SOF0 of 12000x12000 RGB: 412 MiB decoded.
    ['huge.jpg', Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0x2e, 0xe0, 0x2e, 0xe0, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]), /12000x12000 pixels, 3 channels of 8 bits, decodes to 412 MiB/],
  ];
  for (const [name, bytes, msg] of cases) {
    const f = join(tmp, name);
    writeFileSync(f, bytes);
    if (name === 'gray16.png') {
      // 6000x6000 16-bit gray is 69 MiB decoded: within the bound, so it is read (and found to lack its data).
      assertCleanError(cli(['preprocess', '--modality', 'photo', f, '-o', join(tmp, 'x.npy')]), /cut short|corrupt/);
      continue;
    }
    const t0 = performance.now();
    const r = cli(['preprocess', '--modality', 'photo', f, '-o', join(tmp, 'x.npy')]);
    assertCleanError(r, msg);
    assert.match(r.err, /hint: Downscale it first/);
    assert.ok(performance.now() - t0 < 10_000);
  }
});


/** tiny64's weights with `edit` applied to a copy of every tensor (as f32). */
function editedWeights(name: string, edit: (key: string, x: Float32Array) => void): string {
  const st = readSafetensors(readFileSync(W));
  const out = new Map<string, HostTensor>();
  for (const [k, t] of st.tensors) {
    const x = Float32Array.from(toFloat32(t));
    edit(k, x);
    out.set(k, { dtype: 'f32', shape: t.shape, data: x });
  }
  const f = join(tmp, name);
  writeFileSync(f, writeSafetensors(out, st.metadata));
  return f;
}

test('NaN/Inf weights are refused on load, naming the tensor; all-zero weights give an error, not a zero "unit" vector', () => {
  const nan = editedWeights('nan.safetensors', (k, x) => { if (k === 'sa.model.transformer.layers.0.0.mlp.net.0.weight') x[5] = NaN; });
  assertCleanError(cli(['embed', '--weights', nan, '--modality', 'sketch', sketch]), /nan\.safetensors: tensor sa\.model\.transformer\.layers\.0\.0\.mlp\.net\.0\.weight holds NaN \(element 5 of/);
  const inf = editedWeights('inf.safetensors', (k, x) => { if (k === 'sa.model.transformer.encoder_norm.weight') x[0] = -Infinity; });
  assertCleanError(cli(['convert', inf, '-o', join(tmp, 'x.safetensors')]), /tensor sa\.model\.transformer\.encoder_norm\.weight holds -Infinity/);
  const zero = editedWeights('zero.safetensors', (_k, x) => x.fill(0));
  const r = cli(['embed', '--weights', zero, '--modality', 'sketch', '--json', sketch]);
  assertCleanError(r, /the embedding of image 1 of 1 has norm 0/);
  assert.is(r.out, '', 'nothing printed');
});

test('.npy inputs with NaN, Inf or values far outside [-1, 1] are refused', () => {
  for (const [v, msg] of [[NaN, /holds NaN/], [Infinity, /holds Infinity/], [1e30, /holds 1\.0*\d*e\+30 .*far outside the \[-1, 1\]/], [255, /holds 255/]] as const) {
    const x = new Float32Array(3 * 64 * 64).fill(0.5);
    x[100] = v;
    const f = join(tmp, `bad-${v}.npy`);
    writeFileSync(f, writeNpy({ dtype: 'f32', shape: [3, 64, 64], data: x }));
    assertCleanError(cli(['embed', '--weights', W, '--modality', 'sketch', f]), msg);
  }
});


// ---- the index: integrity, confinement, the lock --------------------------------------------------------------------
const gallery = join(tmp, 'gallery');
mkdirSync(join(gallery, 'cls'), { recursive: true });
png(join(gallery, 'cls', 'p0.png'), 70, 60, 11, 'photo');
png(join(gallery, 'cls', 'p1.png'), 70, 60, 12, 'photo');
const indexFile = join(tmp, 'g.sgi');

test('index builds; a flipped bit in it is refused by query, naming the file and the command that rebuilds it', () => {
  const r = cli(['index', gallery, '-o', indexFile, '--weights', W, '--json']);
  assert.is(r.code, 0, r.err);
  const bytes = readFileSync(indexFile);
  const bad = Buffer.from(bytes);
  bad[bytes.length - 5] ^= 0x10; // inside the last tensor's data
  const f = join(tmp, 'flipped.sgi');
  writeFileSync(f, bad);
  const q = cli(['query', sketch, '--index', f, '--json']);
  assertCleanError(q, /flipped\.sgi is damaged: the CRC-32 of its \S+ tensor does not match/);
  assert.match(q.err, /hint: .*sketchgpu index <photo dir> -o .*flipped\.sgi --weights <weights> --force/);
});

test('a crafted index whose photo escapes its root through a symlink is refused by query --html; absolute paths on open', () => {
  const ix = parseIndex(readFileSync(indexFile), indexFile);
  const root = join(tmp, 'crafted-root');
  mkdirSync(root, { recursive: true });
  symlinkSync('/etc/passwd', join(root, 'evil.png'));
  png(join(root, 'ok.png'), 70, 60, 13, 'photo');
  const crafted = join(tmp, 'crafted.sgi');
  writeFileSync(crafted, serializeIndex({ ...ix, root, paths: ['evil.png', 'ok.png'] }));
  const html = join(tmp, 'sheet.html');
  const r = cli(['query', sketch, '--index', crafted, '--html', html]);
  assertCleanError(r, /the photo "evil\.png" resolves \(through a symbolic link\) to \/etc\/passwd, outside the index's root/);
  assert.not.ok(existsSync(html) && readFileSync(html, 'utf8').includes(Buffer.from(readFileSync('/etc/passwd')).toString('base64').slice(0, 40)));
  for (const p of ['/etc/passwd', '../../../proc/self/environ']) {
    writeFileSync(crafted, serializeIndex({ ...ix, root, paths: [p, 'ok.png'] }));
    assertCleanError(cli(['query', sketch, '--index', crafted, '--html', html]), /not a relative image path inside its root/);
  }
});

test('a second index run on the same output is refused while the first lives (lock naming its pid); a stale lock is taken over', () => {
  const out = join(tmp, 'locked.sgi');
  const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
  try {
    writeFileSync(`${out}.lock`, `${holder.pid}\n`);
    const r = cli(['index', gallery, '-o', out, '--weights', W]);
    assertCleanError(r, new RegExp(`being built by another sketchgpu index run \\(pid ${holder.pid}, lock file .*locked\\.sgi\\.lock\\)`));
    assert.not.ok(existsSync(out));
  } finally {
    holder.kill();
  }
  // A dead pid's lock: taken over, and removed when done.
  const dead = spawnSync('true').pid!;
  writeFileSync(`${out}.lock`, `${dead}\n`);
  const r = cli(['index', gallery, '-o', out, '--weights', W]);
  assert.is(r.code, 0, r.err);
  assert.ok(existsSync(out));
  assert.not.ok(existsSync(`${out}.lock`), 'lock released');
});

test('a sketch with transparent pixels gets a warning (alpha is dropped, as the reference does)', () => {
  const img = new PNG({ width: 64, height: 64 });
  for (let i = 0; i < 64 * 64; i++) {
    const ink = i % 64 > 20 && i % 64 < 24;
    img.data.set(ink ? [0, 0, 0, 255] : [0, 0, 0, 0], 4 * i); // a transparent black background
  }
  const f = join(tmp, 'transparent.png');
  writeFileSync(f, PNG.sync.write(img));
  const r = cli(['preprocess', '--modality', 'sketch', f, '-o', join(tmp, 't.npy')]);
  assert.is(r.code, 0, r.err);
  assert.match(r.err, /warning: .*transparent\.png: 9\d\.\d% of the sketch's pixels are \(partly\) transparent; .*dropped.*-flatten/);
  assert.not.match(cli(['preprocess', '--modality', 'sketch', sketch, '-o', join(tmp, 't.npy')]).err, /warning/);
  assert.not.match(cli(['preprocess', '--modality', 'photo', f, '-o', join(tmp, 't.npy')]).err, /warning/);
});


test('a large file that is plainly not weights or an index is refused from its first bytes, in little memory', () => {
  const big = join(tmp, 'zeros.pth');
  writeFileSync(big, '');
  truncateSync(big, 600 * 2 ** 20); // sparse: 600 MiB of zeros, below the bounds
  const time = existsSync('/usr/bin/time');
  for (const [args, msg] of [[['embed', '--weights', big, '--modality', 'sketch', sketch], /zeros\.pth is not a PyTorch checkpoint: it is unrecognized binary data/],
    [['query', sketch, '--index', big], /zeros\.pth is not a sketchgpu gallery index: it does not start as a safetensors file/]] as const) {
    if (!time) {
      assertCleanError(cli([...args]), msg);
      continue;
    }
    const r = spawnSync('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, BIN, ...args], { encoding: 'utf8' });
    assertCleanError({ code: r.status, out: r.stdout, err: r.stderr.split('\n').filter((l) => !l.startsWith('maxrss_kb=')).join('\n') }, msg);
    const kb = Number(/maxrss_kb=(\d+)/.exec(r.stderr)?.[1]);
    assert.ok(kb < 300 * 1024, `peak RSS ${kb} KiB: the file was read whole`);
  }
  truncateSync(big, 1300 * 2 ** 20);
  assertCleanError(cli(['embed', '--weights', big, '--modality', 'sketch', sketch]), /zeros\.pth is 1300\.0 MiB, more than any weights file sketchgpu reads \(1280 MiB\)/);
});

test.run();
