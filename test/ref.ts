// Plain TypeScript references for every kernel, in float64 accumulation. The GPU kernels are tested against
// these on odd shapes; the model as a whole is tested against the PyTorch reference in tools/.

export type Act = 'none' | 'relu' | 'gelu' | 'sigmoid' | 'quickgelu';

export function erf(x: number): number {
  // Abramowitz-Stegun 7.1.28 is too coarse; use a series / continued fraction pair accurate to ~1e-15.
  const z = Math.abs(x);
  let r: number;
  if (z < 2.5) {
    let sum = z, term = z;
    for (let n = 1; n < 100; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc continued fraction (Lentz), converges fast for z >= 2.5
    let f = z, C = z, D = 0;
    for (let n = 1; n < 200; n++) {
      const an = n / 2;
      D = z + an * D; D = 1 / D;
      C = z + an / C;
      const delta = C * D;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-z * z) / (f * Math.sqrt(Math.PI));
  }
  return x < 0 ? -r : r;
}

export function activate(v: number, act: Act): number {
  if (act === 'relu') return Math.max(v, 0);
  if (act === 'gelu') return 0.5 * v * (1 + erf(v / Math.SQRT2));
  if (act === 'sigmoid') return 1 / (1 + Math.exp(-v));
  if (act === 'quickgelu') return v / (1 + Math.exp(-1.702 * v));
  return v;
}

/** C[M,N] = act(alpha·A[M,K]·B[N,K]ᵀ + bias) + R */
export function gemmRef(A: ArrayLike<number>, B: ArrayLike<number>, M: number, N: number, K: number,
  o: { bias?: ArrayLike<number>; residual?: ArrayLike<number>; act?: Act; alpha?: number } = {}): Float64Array {
  const C = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += A[m * K + k]! * B[n * K + k]!;
      let v = (o.alpha ?? 1) * s + (o.bias ? o.bias[n]! : 0);
      v = activate(v, o.act ?? 'none');
      if (o.residual) v += o.residual[m * N + n]!;
      C[m * N + n] = v;
    }
  }
  return C;
}

/** Direct 2-D convolution, NCHW in and out, weight [Co,Ci,KH,KW]. */
export function conv2dRef(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null,
  N: number, Ci: number, H: number, W: number, Co: number, KH: number, KW: number, stride: number, pad: number, relu = false, padX = pad): { out: Float64Array; OH: number; OW: number } {
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1;
  const OW = Math.floor((W + 2 * padX - KW) / stride) + 1;
  const out = new Float64Array(N * Co * OH * OW);
  for (let n = 0; n < N; n++)
    for (let co = 0; co < Co; co++)
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          let s = bias ? bias[co]! : 0;
          for (let ci = 0; ci < Ci; ci++)
            for (let ky = 0; ky < KH; ky++) {
              const y = oy * stride - pad + ky;
              if (y < 0 || y >= H) continue;
              for (let kx = 0; kx < KW; kx++) {
                const xx = ox * stride - padX + kx;
                if (xx < 0 || xx >= W) continue;
                s += x[((n * Ci + ci) * H + y) * W + xx]! * w[((co * Ci + ci) * KH + ky) * KW + kx]!;
              }
            }
          out[((n * Co + co) * OH + oy) * OW + ox] = relu ? Math.max(0, s) : s;
        }
  return { out, OH, OW };
}

/**
 * 2-D max or average pooling, NCHW in and out, a KH x KW window moved by SH x SW over the input padded by PH x PW on
 * each side. Only the window positions inside the input count: 'max' is F.max_pool2d (padding never wins), 'avg'
 * is F.avg_pool2d(count_include_pad=False) (the mean of the real pixels). A window with no real pixel gives NaN.
 */
export function pool2dRef(x: ArrayLike<number>, N: number, C: number, H: number, W: number, KH: number, KW: number,
  SH: number, SW: number, PH: number, PW: number, mode: 'max' | 'avg'): { out: Float64Array; OH: number; OW: number } {
  const OH = Math.floor((H + 2 * PH - KH) / SH) + 1;
  const OW = Math.floor((W + 2 * PW - KW) / SW) + 1;
  const out = new Float64Array(N * C * OH * OW);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let oy = 0; oy < OH; oy++)
        for (let ox = 0; ox < OW; ox++) {
          let m = -Infinity, s = 0, count = 0;
          for (let ky = 0; ky < KH; ky++) {
            const y = oy * SH - PH + ky;
            if (y < 0 || y >= H) continue;
            for (let kx = 0; kx < KW; kx++) {
              const xx = ox * SW - PW + kx;
              if (xx < 0 || xx >= W) continue;
              const v = x[((n * C + c) * H + y) * W + xx]!;
              m = Math.max(m, v);
              s += v;
              count++;
            }
          }
          out[((n * C + c) * OH + oy) * OW + ox] = count === 0 ? NaN : mode === 'max' ? m : s / count;
        }
  return { out, OH, OW };
}

/** Row-wise LayerNorm: 'torch' = nn.LayerNorm (biased variance, eps in the sqrt); 'ca' = ZSE's CA norm (unbiased std, eps added to std). */
export function layerNormRef(x: ArrayLike<number>, rows: number, D: number, gamma: ArrayLike<number>, beta: ArrayLike<number>, kind: 'torch' | 'ca', eps: number): Float64Array {
  const out = new Float64Array(rows * D);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let d = 0; d < D; d++) mean += x[r * D + d]!;
    mean /= D;
    let ss = 0;
    for (let d = 0; d < D; d++) ss += (x[r * D + d]! - mean) ** 2;
    for (let d = 0; d < D; d++) {
      const c = x[r * D + d]! - mean;
      out[r * D + d] = kind === 'torch' ? (c / Math.sqrt(ss / D + eps)) * gamma[d]! + beta[d]! : (gamma[d]! * c) / (Math.sqrt(ss / (D - 1)) + eps) + beta[d]!;
    }
  }
  return out;
}

/** Multi-head attention on [B,T,H*dh] row-major q/k/v; scores scaled by `scale`; `causal`: row i sees keys 0..i. */
export function attentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, B: number, Tq: number, Tk: number, H: number, dh: number, scale: number, causal = false): Float64Array {
  const D = H * dh;
  const out = new Float64Array(B * Tq * D);
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Tq; i++) {
        let mx = -Infinity;
        const nk = causal ? Math.min(Tk, i + 1) : Tk;
        for (let j = 0; j < nk; j++) {
          let d = 0;
          for (let e = 0; e < dh; e++) d += q[(b * Tq + i) * D + h * dh + e]! * k[(b * Tk + j) * D + h * dh + e]!;
          s[j] = d * scale;
          mx = Math.max(mx, s[j]!);
        }
        let sum = 0;
        for (let j = 0; j < nk; j++) sum += (s[j] = Math.exp(s[j]! - mx));
        for (let e = 0; e < dh; e++) {
          let acc = 0;
          for (let j = 0; j < nk; j++) acc += s[j]! * v[(b * Tk + j) * D + h * dh + e]!;
          out[(b * Tq + i) * D + h * dh + e] = acc / sum;
        }
      }
  return out;
}

/** Bilinear resize, align_corners=True (F.interpolate's CPU kernel: float32 scale, the same tap weights), then a·v + b. */
export function resizeBilinearRef(x: ArrayLike<number>, N: number, C: number, H: number, W: number, OH: number, OW: number, a = 1, b = 0): Float64Array {
  const out = new Float64Array(N * C * OH * OW);
  const sY = OH > 1 ? Math.fround((H - 1) / (OH - 1)) : 0, sX = OW > 1 ? Math.fround((W - 1) / (OW - 1)) : 0;
  for (let nc = 0; nc < N * C; nc++)
    for (let oy = 0; oy < OH; oy++)
      for (let ox = 0; ox < OW; ox++) {
        const sy = Math.fround(sY * oy), sx = Math.fround(sX * ox);
        const y0 = Math.min(Math.floor(sy), H - 1), x0 = Math.min(Math.floor(sx), W - 1);
        const y1 = y0 < H - 1 ? y0 + 1 : y0, x1 = x0 < W - 1 ? x0 + 1 : x0;
        const ly = sy - y0, lx = sx - x0;
        const at = (y: number, xx: number) => x[(nc * H + y) * W + xx]!;
        const v = (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
        out[(nc * OH + oy) * OW + ox] = a * v + b;
      }
  return out;
}
