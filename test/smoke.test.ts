import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { f32ToF16, f16ToF32 } from '../src/io/tensor.ts';

test('f16 round trip of representable values', () => {
  for (const v of [0, 1, -2, 0.5, 65504, 2 ** -24, -0.333251953125]) assert.is(f16ToF32(f32ToF16(v)), v);
});
test.run();
