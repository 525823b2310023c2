// A software stand-in for WGSL subgroup matrices, so that shaders/gemm/smat.wgsl's own staging, tile offsets and
// epilogue run on adapters without them (lavapipe, SwiftShader). Every invocation computes its subgroup's whole
// 16x16 matrices redundantly in private arrays and all of them store the same values, which is what the real
// builtins compute (as ../shared/docs/platform.md and Dawn's tests give their meaning: element (row r, column c)
// of a loaded matrix is at offset + r·stride + c, or offset + c·stride + r when column-major; left is M x K, right
// K x N, result M x N). What it cannot check is the hardware's own reading of those conventions: the real kernel
// is tested where an adapter offers it (kernel.gemm-smat.test.ts), and src/graph/smat.ts checks it before use.
import type { Kernel } from '../src/graph/kernel.ts';

const EMULATION = `
fn emuLoad(m: ptr<workgroup, array<f16, 2048>>, off: u32, colMajor: bool, stride: u32) -> array<f32, 256> {
  var x: array<f32, 256>;
  for (var r = 0u; r < 16u; r++) {
    for (var c = 0u; c < 16u; c++) {
      x[r * 16u + c] = f32((*m)[select(off + r * stride + c, off + c * stride + r, colMajor)]);
    }
  }
  return x;
}
fn emuMma(a: array<f32, 256>, b: array<f32, 256>, acc: array<f32, 256>) -> array<f32, 256> {
  var y = acc;
  for (var r = 0u; r < 16u; r++) {
    for (var c = 0u; c < 16u; c++) {
      var s = y[r * 16u + c];
      for (var k = 0u; k < 16u; k++) { s = fma(a[r * 16u + k], b[k * 16u + c], s); }
      y[r * 16u + c] = s;
    }
  }
  return y;
}
fn emuStore(m: ptr<workgroup, array<f32, 4096>>, off: u32, v: array<f32, 256>, colMajor: bool, stride: u32) {
  for (var r = 0u; r < 16u; r++) {
    for (var c = 0u; c < 16u; c++) {
      (*m)[select(off + r * stride + c, off + c * stride + r, colMajor)] = v[r * 16u + c];
    }
  }
}
fn emuLoadRow(m: ptr<workgroup, array<f16, 2048>>, off: u32, stride: u32) -> array<f32, 256> { return emuLoad(m, off, false, stride); }
fn emuLoadCol(m: ptr<workgroup, array<f16, 2048>>, off: u32, stride: u32) -> array<f32, 256> { return emuLoad(m, off, true, stride); }
fn emuStoreRow(m: ptr<workgroup, array<f32, 4096>>, off: u32, v: array<f32, 256>, stride: u32) { emuStore(m, off, v, false, stride); }
fn emuStoreCol(m: ptr<workgroup, array<f32, 4096>>, off: u32, v: array<f32, 256>, stride: u32) { emuStore(m, off, v, true, stride); }
`;

/** The kernel with subgroup matrices replaced by the emulation (needs shader-f16 only). */
export function emulateSubgroupMatrices(k: Kernel): Kernel {
  let s = k.wgsl.replace('enable chromium_experimental_subgroup_matrix;\n', '');
  s = s.replace(/alias (Left|Right|Acc) = subgroup_matrix_\w+<f(16|32), 16, 16>;/g, 'alias $1 = array<f32, 256>;');
  s = s.replace(/subgroupMatrixLoad<\w+, (row|col)_major>\(/g, (_, m) => `emuLoad${m === 'col' ? 'Col' : 'Row'}(`)
    .replace(/subgroupMatrixStore<(row|col)_major>\(/g, (_, m) => `emuStore${m === 'col' ? 'Col' : 'Row'}(`)
    .replaceAll('subgroupMatrixMultiplyAccumulate(', 'emuMma(');
  if (/subgroup_matrix|subgroupMatrix/.test(s.replace(/\/\/.*$/gm, ''))) throw new Error('the emulation left a subgroup-matrix construct in the kernel');
  return { ...k, name: `${k.name}/emulated`, wgsl: s + EMULATION };
}
