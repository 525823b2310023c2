// A GEMM input operand stored as binary16, two per u32 word, element 2j in the low half (prepended by ops/gemm.ts
// like operand_f32.wgsl, for A or B): weights of the f16 option (rounded to nearest even on upload,
// src/gpu/weights.ts) and activations a GEMM wrote with storeC4 of gemm/store_f16.wgsl. The values are binary16
// already, so loading them needs no rounding and gives what the f32-stored operand with rounding on load gives.
// unpack2x16float is core WGSL: no shader-f16 feature is needed.
@group(0) @binding(@BINDING@) var<storage, read> @X@: array<vec2<u32>>; // 4 halves per element
fn load@X@(i: u32) -> f32 { return unpack2x16float(@X@[i >> 2u][(i >> 1u) & 1u])[i & 1u]; }
fn load@X@4(i: u32) -> vec4<f32> {
  let w = @X@[i];
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}
