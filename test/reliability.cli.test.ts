// Issue 15, "Untrusted files cannot hurt": the CLI's refusals of hostile or broken inputs (docs/reliability.md).
// Every bad file is generated here, in a temp dir; memory bombs must be refused before anything is allocated, so
// these tests are cheap.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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

test.run();
