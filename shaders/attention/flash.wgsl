// Multi-head scaled-dot-product attention, flash style: softmax(Q Kᵀ · scale) V with an online softmax (running
// max and sum), so any sequence length works and the [Tq, Tk] score matrix never exists.
//
// Work split. An invocation owns R query rows of one (head, batch); their queries and output accumulators stay in
// registers. For each key it reads the key row once and scores its R rows against it, updates each row's running
// max, rescales the row's sum and accumulator by the change, then reads the value row once and adds it with the
// row's exp weight. The invocations of a workgroup hold WG*R neighbouring rows of one head and batch and read the
// same key and value addresses in the same order: one broadcast load per warp on a GPU, served from L1.
// There is no workgroup memory and no barrier, on purpose: on llvmpipe every load costs per lane whether it
// reads workgroup memory or a buffer (so staging tiles saves nothing there), and a barrier turns the shader into
// a coroutine whose live values go through memory, which made each load several times slower. Re-reading a row
// for R query rows is what saves loads there, hence R.
// Nothing diverges: rows past Tq compute a clamped copy and skip only the store.
//
// This file is a template: ops/attention.ts fills its slots (src/graph/wgsl.ts fillSlots) for one head dim:
// OUTPUT (vec4 f32, or binary16 pairs with lib/f16.wgsl prepended), R, WG, KEYS_END, and PROLOGUE, STEP and
// EPILOGUE, writing the code over rows and vec4 columns out in full with one named register each (q{r}_{c},
// a{r}_{c}, m{r}, l{r}), so that registers are never indexed (a GPU would put indexed arrays in local memory). The
// buffers are read as vec4: every offset, stride and the head dim are multiples of 4 (attention/generic.wgsl takes
// the other cases).
//
// (rowOf, the batch an operand is read at, comes from attention/table_none.wgsl or attention/table_pairs.wgsl, which
// ops/attention.ts prepends; with a pair table O and the uniform block are bindings 4 and 5, else 3 and 4.)
//
// Q, K, V and O are [B, T, *] buffers addressed by (offset, batch stride, row stride); head h reads the
// features h*dh .. h*dh+dh-1 of a row. That covers SA's packed [q|k|v] rows (zse-sbir.md §11.6) and ZSE's
// cross-attention, where Q and V come from one modality and K from the other (§3.3): the caller just passes
// those tensors. Scores are dot*scale (SA: ×0.125) or dot/divisor (CA: /sqrt(96)), as the reference rounds (§11.5).
// A causal program (CLIP's text tower, docs/caan.md) scores a key j > row i as -3.4e38 (weight 0) and ends the
// key loop after the last row an invocation owns.
//
// The split program (GPUs; ops/attention.ts `flashSource(..., parts)`), for head dims where R is 1: P invocations
// share a query row, each scoring one contiguous P-th of the keys (a P-times shorter serial chain, P times the
// invocations), then the P partial results (running max, sum, accumulator) meet through workgroup memory after
// one barrier and the first invocation merges and stores them (DECLS, ROW_BASE, KEYS_BEGIN fill that in).

struct Params {
  B: u32, H: u32, Tq: u32, Tk: u32, dh: u32,
  qOff: u32, qSB: u32, qSR: u32,
  kOff: u32, kSB: u32, kSR: u32,
  vOff: u32, vSB: u32, vSR: u32,
  oOff: u32, oSB: u32, oSR: u32,
  divide: u32, scale: f32, causal: u32, // causal: read by attention/generic.wgsl only (this program is specialised)
  qCol: u32, kCol: u32, vCol: u32, // the pair-table column of each operand (rowOf), 2: none
  qN: u32, kN: u32, vN: u32, // and its batch count
}

@group(0) @binding(0) var<storage, read> Q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> K: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> V: array<vec4<f32>>;
@group(0) @binding(@O_BINDING@) var<storage, read_write> O: @OUTPUT@;
@group(0) @binding(@P_BINDING@) var<uniform> p: Params;

const R = @R@u;   // query rows per invocation
const WG = @WG@u; // invocations per workgroup
@DECLS@

// The score of a dot product given as four partial sums.
fn score(v: vec4<f32>) -> f32 {
  let dot = (v.x + v.y) + (v.z + v.w);
  return select(dot * p.scale, dot / p.scale, p.divide != 0u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let b = wg.z;
  let hd = wg.y * p.dh;
  let iBase = @ROW_BASE@; // this invocation's rows: iBase + r*WG, r < R
  // Row starts and strides in vec4s.
  let qRow = (p.qOff + rowOf(b, p.qCol, p.qN) * p.qSB + hd) / 4u;
  let kRow = (p.kOff + rowOf(b, p.kCol, p.kN) * p.kSB + hd) / 4u;
  let vRow = (p.vOff + rowOf(b, p.vCol, p.vN) * p.vSB + hd) / 4u;
  let oRow = (p.oOff + b * p.oSB + hd) / 4u;
  let qSR = p.qSR / 4u;
  let kSR = p.kSR / 4u;
  let vSR = p.vSR / 4u;
  let oSR = p.oSR / 4u;
@PROLOGUE@
  for (var j = @KEYS_BEGIN@; j < @KEYS_END@; j++) {
    let kr = kRow + j * kSR;
    let vr = vRow + j * vSR;
@STEP@
  }
@EPILOGUE@
}
