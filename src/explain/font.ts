/**
 * A 5x7 bitmap font (lowercase letters, digits, a few signs) for the panel titles of the explanation sheet, so the
 * PNG says what each view is without a canvas or a font file. Browser-safe.
 */
/** RGBA8 pixels (render.ts's Rgba, restated here so the two files do not import each other). */
interface Rgba { width: number; height: number; data: Uint8ClampedArray }

/** Each glyph: 7 rows of 5 columns, '#' = ink. */
const GLYPHS: Record<string, string> = {
  a: '..... ..... .###. ....# .#### #...# .####', b: '#.... #.... #.##. ##..# #...# #...# ####.',
  c: '..... ..... .###. #.... #.... #...# .###.', d: '....# ....# .##.# #..## #...# #...# .####',
  e: '..... ..... .###. #...# ##### #.... .###.', f: '..##. .#..# .#... ###.. .#... .#... .#...',
  g: '..... .#### #...# #...# .#### ....# .###.', h: '#.... #.... #.##. ##..# #...# #...# #...#',
  i: '..#.. ..... .##.. ..#.. ..#.. ..#.. .###.', j: '...#. ..... ..##. ...#. ...#. #..#. .##..',
  k: '#.... #.... #..#. #.#.. ##... #.#.. #..#.', l: '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  m: '..... ..... ##.#. #.#.# #.#.# #...# #...#', n: '..... ..... #.##. ##..# #...# #...# #...#',
  o: '..... ..... .###. #...# #...# #...# .###.', p: '..... ..... ####. #...# ####. #.... #....',
  q: '..... ..... .##.# #..## .#### ....# ....#', r: '..... ..... #.##. ##..# #.... #.... #....',
  s: '..... ..... .###. #.... .###. ....# ####.', t: '.#... .#... ###.. .#... .#... .#..# ..##.',
  u: '..... ..... #...# #...# #...# #..## .##.#', v: '..... ..... #...# #...# #...# .#.#. ..#..',
  w: '..... ..... #...# #...# #.#.# #.#.# .#.#.', x: '..... ..... #...# .#.#. ..#.. .#.#. #...#',
  y: '..... ..... #...# #...# .#### ....# .###.', z: '..... ..... ##### ...#. ..#.. .#... #####',
  0: '.###. #...# #..## #.#.# ##..# #...# .###.', 1: '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  2: '.###. #...# ....# ...#. ..#.. .#... #####', 3: '####. ....# ....# .###. ....# ....# ####.',
  4: '...#. ..##. .#.#. #..#. ##### ...#. ...#.', 5: '##### #.... ####. ....# ....# #...# .###.',
  6: '..##. .#... #.... ####. #...# #...# .###.', 7: '##### ....# ...#. ..#.. .#... .#... .#...',
  8: '.###. #...# #...# .###. #...# #...# .###.', 9: '.###. #...# #...# .#### ....# ...#. .##..',
  '.': '..... ..... ..... ..... ..... .##.. .##..', ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  '-': '..... ..... ..... ##### ..... ..... .....', '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#...',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.', ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  ' ': '..... ..... ..... ..... ..... ..... .....',
};

/** Pixel width of `text` at `scale` (6 columns per character: 5 of glyph, 1 of space). */
export const textWidth = (text: string, scale = 1): number => 6 * scale * text.length;
/** Pixel height of a line at `scale`. */
export const textHeight = (scale = 1): number => 7 * scale;

/**
 * Draws `text` (lowercased; unknown characters as blanks) with its top-left corner at (x, y), clipped to the image
 * and to `maxWidth` pixels (a cut title ends with '..').
 */
export function drawText(img: Rgba, text: string, x: number, y: number, rgb: [number, number, number] = [40, 40, 40], scale = 1, maxWidth = Infinity): void {
  let t = text.toLowerCase();
  const fit = Math.floor(maxWidth / (6 * scale));
  if (t.length > fit) t = fit > 2 ? `${t.slice(0, fit - 2)}..` : t.slice(0, Math.max(0, fit));
  for (let c = 0; c < t.length; c++) {
    const rows = (GLYPHS[t[c]!] ?? GLYPHS[' ']!).split(' ');
    for (let r = 0; r < 7; r++) for (let k = 0; k < 5; k++) {
      if (rows[r]![k] !== '#') continue;
      for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) {
        const px = x + (6 * c + k) * scale + dx, py = y + r * scale + dy;
        if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
        const o = 4 * (py * img.width + px);
        img.data[o] = rgb[0]; img.data[o + 1] = rgb[1]; img.data[o + 2] = rgb[2]; img.data[o + 3] = 255;
      }
    }
  }
}
