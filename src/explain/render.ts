/** Small raster helpers for the explanation pictures (RGBA8 images, browser-safe, no canvas needed). */
import { bestMatches, patchHeat, strongestLinks, type PairExplanation } from './correspondence.ts';
import { drawText, textHeight } from './font.ts';

export interface Rgba { width: number; height: number; data: Uint8ClampedArray }

export function blank(width: number, height: number, rgb: [number, number, number] = [255, 255, 255]): Rgba {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
  return { width, height, data };
}

/** A model input [3, S, S] in [-1, 1] back to RGBA pixels. */
export function fromModelInput(x: Float32Array, S: number): Rgba {
  const img = blank(S, S);
  for (let i = 0; i < S * S; i++) for (let c = 0; c < 3; c++) img.data[4 * i + c] = Math.round((x[c * S * S + i]! * 0.5 + 0.5) * 255);
  return img;
}

export function paste(dst: Rgba, src: Rgba, x0: number, y0: number): void {
  for (let y = 0; y < src.height; y++) {
    const dy = y0 + y;
    if (dy < 0 || dy >= dst.height) continue;
    for (let x = 0; x < src.width; x++) {
      const dx = x0 + x;
      if (dx < 0 || dx >= dst.width) continue;
      const s = 4 * (y * src.width + x), d = 4 * (dy * dst.width + dx);
      dst.data.set(src.data.subarray(s, s + 4), d);
    }
  }
}

/** Perceptual-ish colormap (dark blue -> teal -> yellow), t in [0, 1]. */
export function colormap(t: number): [number, number, number] {
  const stops: [number, number, number][] = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
  const a = stops[i]!, b = stops[i + 1]!;
  return [a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), a[2] + f * (b[2] - a[2])];
}

function blend(img: Rgba, x: number, y: number, rgb: [number, number, number], alpha: number): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const o = 4 * (y * img.width + x);
  for (let c = 0; c < 3; c++) img.data[o + c] = img.data[o + c]! * (1 - alpha) + rgb[c]! * alpha;
}

/** A copy of img with a G×G heat map (values in [0, 1]) blended over it. */
export function overlayHeat(img: Rgba, heat: Float32Array, G: number, alpha = 0.55): Rgba {
  const out: Rgba = { width: img.width, height: img.height, data: img.data.slice() };
  const p = img.width / G;
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) {
    const h = heat[Math.min(G - 1, Math.floor(y / p)) * G + Math.min(G - 1, Math.floor(x / p))]!;
    blend(out, x, y, colormap(h), alpha);
  }
  return out;
}

/** A line of the given width (a disc stamped along it). */
export function drawLine(img: Rgba, x0: number, y0: number, x1: number, y1: number, rgb: [number, number, number], width = 2, alpha = 0.9): void {
  const n = Math.ceil(Math.hypot(x1 - x0, y1 - y0)) + 1;
  const r = width / 2;
  for (let s = 0; s <= n; s++) {
    const cx = x0 + ((x1 - x0) * s) / n, cy = y0 + ((y1 - y0) * s) / n;
    for (let dy = -Math.ceil(r); dy <= Math.ceil(r); dy++) for (let dx = -Math.ceil(r); dx <= Math.ceil(r); dx++) {
      if (dx * dx + dy * dy <= r * r) blend(img, Math.round(cx + dx), Math.round(cy + dy), rgb, alpha);
    }
  }
}

export function drawRect(img: Rgba, x: number, y: number, w: number, h: number, rgb: [number, number, number], width = 2): void {
  drawLine(img, x, y, x + w, y, rgb, width, 1);
  drawLine(img, x + w, y, x + w, y + h, rgb, width, 1);
  drawLine(img, x + w, y + h, x, y + h, rgb, width, 1);
  drawLine(img, x, y + h, x, y, rgb, width, 1);
}

/** Rebuild `target`'s patch layout from `source` patches: out patch i = source patch match[i]. */
export function rebuildFromPatches(source: Rgba, match: Uint32Array, G: number): Rgba {
  const out = blank(source.width, source.height);
  const p = source.width / G;
  // Patch k spans pixels [start(k), start(k + 1)): k·p when the side is a multiple of G; otherwise (a front
  // variant's 17 x 17 grid on 128 px) patches differ by a pixel, and a source patch's pixel is clamped into it.
  const start = (k: number) => Math.ceil(k * p - 1e-9);
  for (let i = 0; i < G * G; i++) {
    const sr = Math.floor(match[i]! / G), sc = match[i]! % G, tr = Math.floor(i / G), tc = i % G;
    const sy = start(sr), sx = start(sc), sh = start(sr + 1) - sy, sw = start(sc + 1) - sx;
    const ty = start(tr), tx = start(tc);
    for (let y = 0; y < start(tr + 1) - ty; y++) for (let x = 0; x < start(tc + 1) - tx; x++) {
      const s = 4 * ((sy + Math.min(y, sh - 1)) * source.width + sx + Math.min(x, sw - 1)), d = 4 * ((ty + y) * out.width + tx + x);
      out.data.set(source.data.subarray(s, s + 4), d);
    }
  }
  return out;
}

/** The [A, A] anchor cosine matrix, each cell `cell` pixels, cosine -1..1 mapped through the colormap. */
export function matrixImage(m: Float32Array, A: number, cell: number): Rgba {
  const img = blank(A * cell, A * cell);
  for (let i = 0; i < A; i++) for (let j = 0; j < A; j++) {
    const rgb = colormap((m[i * A + j]! + 1) / 2);
    for (let y = 0; y < cell; y++) for (let x = 0; x < cell; x++) blend(img, j * cell + x, i * cell + y, rgb, 1);
  }
  return img;
}

/** Share of dark pixels in each patch of a sketch input, to skip blank paper when drawing links. */
export function inkPerPatch(sketch: Rgba, G: number): Float32Array {
  const p = sketch.width / G;
  const ink = new Float32Array(G * G);
  if (Number.isInteger(p)) {
    for (let y = 0; y < sketch.height; y++) for (let x = 0; x < sketch.width; x++) {
      const o = 4 * (y * sketch.width + x);
      if (sketch.data[o]! + sketch.data[o + 1]! + sketch.data[o + 2]! < 600) ink[Math.floor(y / p) * G + Math.floor(x / p)] += 1 / (p * p);
    }
    return ink;
  }
  // Patches of unequal pixel counts (a side that is not a multiple of G): the inked fraction of each.
  const count = new Float64Array(G * G), inked = new Float64Array(G * G);
  for (let y = 0; y < sketch.height; y++) for (let x = 0; x < sketch.width; x++) {
    const o = 4 * (y * sketch.width + x), i = Math.min(G - 1, Math.floor(y / p)) * G + Math.min(G - 1, Math.floor(x / p));
    count[i]++;
    if (sketch.data[o]! + sketch.data[o + 1]! + sketch.data[o + 2]! < 600) inked[i]++;
  }
  for (let i = 0; i < G * G; i++) ink[i] = count[i] ? inked[i]! / count[i]! : 0;
  return ink;
}

export interface ExplainViews {
  /** Sketch and photo side by side with the strongest correspondences as lines. */
  links: Rgba;
  /** Attention received per patch, over each image. */
  heatSketch: Rgba;
  heatPhoto: Rgba;
  /** The sketch rebuilt from its best-matching photo patches, and the photo from sketch patches. */
  sketchFromPhoto: Rgba;
  photoFromSketch: Rgba;
  anchors: Rgba;
  /**
   * All views on one sheet, each under its title: row 1 links (with the RN score and cosine), row 2 heat maps, row 3
   * patch replacement, the anchor matrix at the right.
   */
  sheet: Rgba;
  linkList: ReturnType<typeof strongestLinks>;
}

const LINK_COLORS: [number, number, number][] = [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [0, 128, 128], [170, 110, 40], [128, 0, 0], [0, 0, 128]];

export function renderExplanation(e: PairExplanation, sketchInput: Float32Array, photoInput: Float32Array, top = 12): ExplainViews {
  const S = e.imageSize, G = e.grid, p = S / G, gap = 24;
  const sk = fromModelInput(sketchInput, S);
  const im = fromModelInput(photoInput, S);
  const ink = inkPerPatch(sk, G);
  const linkList = strongestLinks(e, top, { minInk: (i) => ink[i]! > 0.01 });
  const links = blank(2 * S + gap, S);
  paste(links, sk, 0, 0);
  paste(links, im, S + gap, 0);
  linkList.forEach((l, n) => {
    const c = LINK_COLORS[n % LINK_COLORS.length]!;
    const sx = (l.sketchPatch % G) * p, sy = Math.floor(l.sketchPatch / G) * p;
    const px = S + gap + (l.photoPatch % G) * p, py = Math.floor(l.photoPatch / G) * p;
    drawRect(links, sx, sy, p, p, c, 2);
    drawRect(links, px, py, p, p, c, 2);
    drawLine(links, sx + p / 2, sy + p / 2, px + p / 2, py + p / 2, c, 2, 0.85);
  });
  const heat = patchHeat(e);
  const heatSketch = overlayHeat(sk, heat.sketch, G);
  const heatPhoto = overlayHeat(im, heat.photo, G);
  const sketchFromPhoto = rebuildFromPatches(im, bestMatches(e.sketchToPhoto, G), G);
  const photoFromSketch = rebuildFromPatches(sk, bestMatches(e.photoToSketch, G), G);
  const A = e.anchorGrid * e.anchorGrid;
  const anchors = matrixImage(e.anchorCosine, A, Math.max(1, Math.floor(S / A)));
  // Panel titles in a band above each row (the first band also carries the scores); rows 2 and 3 use the gaps.
  const scale = S >= 192 ? 2 : 1, band = textHeight(scale) + 6, y0 = band;
  const sheet = blank(2 * S + 3 * gap + anchors.width, y0 + 3 * S + 2 * gap);
  const ax = 2 * S + 2 * gap;
  paste(sheet, links, 0, y0);
  paste(sheet, heatSketch, 0, y0 + S + gap);
  paste(sheet, heatPhoto, S + gap, y0 + S + gap);
  paste(sheet, sketchFromPhoto, 0, y0 + 2 * (S + gap));
  paste(sheet, photoFromSketch, S + gap, y0 + 2 * (S + gap));
  paste(sheet, anchors, ax, y0);
  const title = (t: string, x: number, rowTop: number, w: number) => drawText(sheet, t, x, rowTop - band + 2, [40, 40, 40], scale, w);
  title(`links  rn ${e.rn.toFixed(4)}  cos ${e.cosine.toFixed(4)}`, 0, y0, 2 * S + gap);
  title('anchor cosines', ax, y0, sheet.width - ax);
  title('sketch: heat', 0, y0 + S + gap, S + gap);
  title('photo: heat', S + gap, y0 + S + gap, S);
  title('sketch from photo', 0, y0 + 2 * (S + gap), S + gap);
  title('photo from sketch', S + gap, y0 + 2 * (S + gap), S);
  return { links, heatSketch, heatPhoto, sketchFromPhoto, photoFromSketch, anchors, sheet, linkList };
}
