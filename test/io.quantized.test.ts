import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dequantizeChannels } from '../src/io/quantized.ts';
import type { HostTensor } from '../src/core/tensor.ts';
import { SketchError } from '../src/core/errors.ts';

const f32 = (shape: number[], v: number[]): HostTensor => ({ dtype: 'f32', shape, data: Float32Array.from(v) });
const u8 = (shape: number[], v: number[]): HostTensor => ({ dtype: 'u8', shape, data: Uint8Array.from(v) });
const triple = (): Map<string, HostTensor> => new Map<string, HostTensor>([
  ['a.bias', f32([2], [0.5, -0.5])],
  ['a.weight_q', u8([2, 1, 1, 3], [0, 1, 255, 7, 128, 3])],
  ['a.weight_scale', f32([2], [0.1, 0.003])],
  ['a.weight_min', f32([2], [-1.3, 0.25])],
]);

test('uint8 + per-channel scale and min become float32(float32(q * s) + m), in place of the triple', () => {
  const { tensors, expanded } = dequantizeChannels(triple(), 'w.safetensors');
  assert.is(expanded, 1);
  assert.equal([...tensors.keys()], ['a.bias', 'a.weight']);
  const w = tensors.get('a.weight')!;
  assert.is(w.dtype, 'f32');
  assert.equal(w.shape, [2, 1, 1, 3]);
  const s = [0.1, 0.003].map(Math.fround), m = [-1.3, 0.25].map(Math.fround);
  const want = [0, 1, 255, 7, 128, 3].map((q, i) => Math.fround(Math.fround(q * s[Math.floor(i / 3)]!) + m[Math.floor(i / 3)]!));
  assert.equal([...(w.data as Float32Array)], want);
  assert.equal([...(tensors.get('a.bias')!.data as Float32Array)], [0.5, -0.5]);
});

test('a damaged triple is refused, naming the tensor', () => {
  const cases: [string, (t: Map<string, HostTensor>) => void, RegExp][] = [
    ['no scale', (t) => t.delete('a.weight_scale'), /a\.weight_q lacks a\.weight_scale/],
    ['no q', (t) => t.delete('a.weight_q'), /a\.weight_(scale|min) has no a\.weight_q/],
    ['q not u8', (t) => t.set('a.weight_q', f32([2, 1, 1, 3], [0, 1, 2, 3, 4, 5])), /a\.weight_q is f32, not u8/],
    ['scale mis-shaped', (t) => t.set('a.weight_scale', f32([3], [1, 1, 1])), /a\.weight_scale has shape \[3\], expected \[2\]/],
    ['non-finite min', (t) => t.set('a.weight_min', f32([2], [0, NaN])), /channel 1 is not a finite number/],
    ['float copy too', (t) => t.set('a.weight', f32([2, 1, 1, 3], [0, 0, 0, 0, 0, 0])), /a\.weight is stored both/],
  ];
  for (const [what, damage, re] of cases) {
    const t = triple();
    damage(t);
    try {
      dequantizeChannels(t, 'w.safetensors');
      assert.unreachable(what);
    } catch (e) {
      assert.instance(e, SketchError, what);
      assert.is((e as SketchError).code, 'BAD_WEIGHTS', what);
      assert.match((e as Error).message, re, what);
      assert.ok((e as SketchError).hint.length > 0, what);
    }
  }
});

test('the float32 it would take is bounded before anything is allocated', () => {
  assert.throws(() => dequantizeChannels(triple(), 'w.safetensors', 5), /6 quantised weights would take .* MiB as float32/);
  assert.is(dequantizeChannels(triple(), 'w.safetensors', 6).expanded, 1);
});

test.run();
