// Row-wise top-k, best first, ordered by (value descending, index ascending): ties go to the lower index, so the
// result is deterministic. NaN and -inf count as the lowest finite f32.
// One workgroup takes one chunk of CH candidates of one row, sorts it with a bitonic network in workgroup memory
// and writes its best k as (value, index) pairs to [rows, chunks, k]. The host repeats the pass over those
// candidates (hasIdx = 1) until one chunk is left, so any row length reduces in a few passes (k <= CH/2).
// Slots past the row's end are (LOWEST, 0xffffffff) and sort after every real candidate.

struct Params { rows: u32, n: u32, k: u32, chunks: u32, hasIdx: u32, ldv: u32 }

@group(0) @binding(0) var<storage, read> V: array<f32>;       // [rows, ldv] values (first n used)
@group(0) @binding(1) var<storage, read> I: array<u32>;       // [rows, ldv] indices when hasIdx, else unused
@group(0) @binding(2) var<storage, read_write> OV: array<f32>; // [rows, chunks, k]
@group(0) @binding(3) var<storage, read_write> OI: array<u32>; // [rows, chunks, k]
@group(0) @binding(4) var<uniform> p: Params;

const CH = 2048u;
const WG = 256u;
const LOWEST = -3.402823466e+38; // NaN and -inf are read as this
const NO_INDEX = 0xffffffffu;

var<workgroup> sv: array<f32, CH>;
var<workgroup> si: array<u32, CH>;

// a ranks before b
fn better(av: f32, ai: u32, bv: f32, bi: u32) -> bool {
  return av > bv || (av == bv && ai < bi);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let chunk = wg.x;
  let row = wg.y;
  let base = chunk * CH;
  for (var t = li; t < CH; t += WG) {
    let e = base + t;
    var v = LOWEST;
    var ix = NO_INDEX;
    if (row < p.rows && e < p.n) {
      v = V[row * p.ldv + e];
      if (!(v >= LOWEST)) { v = LOWEST; }
      ix = select(e, I[row * p.ldv + e], p.hasIdx != 0u);
    }
    sv[t] = v;
    si[t] = ix;
  }
  workgroupBarrier();
  for (var size = 2u; size <= CH; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var t = li; t < CH / 2u; t += WG) {
        let lo = 2u * stride * (t / stride) + (t % stride);
        let hi = lo + stride;
        let firstBetter = better(sv[lo], si[lo], sv[hi], si[hi]);
        // Blocks alternate direction; with size == CH the whole array ends best-first.
        if (firstBetter == ((lo & size) != 0u)) {
          let tv = sv[lo]; sv[lo] = sv[hi]; sv[hi] = tv;
          let ti = si[lo]; si[lo] = si[hi]; si[hi] = ti;
        }
      }
      workgroupBarrier();
    }
  }
  if (row >= p.rows) { return; }
  for (var t = li; t < p.k; t += WG) {
    let o = (row * p.chunks + chunk) * p.k + t;
    OV[o] = sv[t];
    OI[o] = si[t];
  }
}
