// Issue 15, "Untrusted files cannot hurt": the CLI's refusals of hostile or broken inputs (docs/reliability.md).
// Every bad file is generated here, in a temp dir; memory bombs must be refused before anything is allocated, so
// these tests are cheap.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as zlib from 'node:zlib';
import { writeNpy } from '../src/io/npy.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { toFloat32, type HostTensor } from '../src/io/tensor.ts';
import { FIXTURES } from './paths.ts';
import { assertCleanError, cli, png } from './cli-util.ts';

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
    ['gray16.png', pngHeader(8000, 8000, 16, 0), /decodes to 122 MiB|decodes to/],
    ['long.png', pngHeader(1, 50_000_000, 8, 0), /1x50000000 pixels is larger than sketchgpu decodes \(at most 32768 pixels a side\)/],
    // SOI, then a baseline SOF0 of 12000x12000 RGB: 412 MiB decoded.
    ['huge.jpg', Buffer.from([0xff, 0xd8, 0xff, 0xc0, 0, 17, 8, 0x2e, 0xe0, 0x2e, 0xe0, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]), /12000x12000 pixels, 3 channels of 8 bits, decodes to 412 MiB/],
  ];
  for (const [name, bytes, msg] of cases) {
    const f = join(tmp, name);
    writeFileSync(f, bytes);
    if (name === 'gray16.png') {
      // 8000x8000 16-bit gray is 122 MiB decoded: within the bound, so it is read (and found to lack its data).
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

test.run();
