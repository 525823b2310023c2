// GEMM operand B stored as binary16, two per u32 word, element 2j in the low half (prepended by ops/gemm.ts,
// after gemm_epilogue.wgsl): the weights of the f16 precision option, rounded to nearest even on upload
// (src/gpu/weights.ts), so they need no rounding here and the product is the one the f32-stored B with operand
// rounding gives. unpack2x16float is core WGSL: no shader-f16 feature is needed.
@group(0) @binding(1) var<storage, read> B: array<vec2<u32>>; // 4 halves per element
fn loadB(i: u32) -> f32 { return unpack2x16float(B[i >> 2u][(i >> 1u) & 1u])[i & 1u]; }
fn loadB4(i: u32) -> vec4<f32> {
  let w = B[i];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
