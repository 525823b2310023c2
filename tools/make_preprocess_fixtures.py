#!/usr/bin/python3
"""Reference fixtures for sketchgpu's image decoding and preprocessing (../shared/docs/zse-sbir.md §5, §11.15).

Run with Debian's python (Pillow 9.4, OpenCV 4.6, numpy, torch; both link libjpeg62-turbo 2.1 and libpng16):

    /usr/bin/python3 tools/make_preprocess_fixtures.py

It runs the reference code path (the ZSE-SBIR functions below, with PIL and cv2) and writes
test/fixtures/preprocess/expected.json with sha256 hashes of the reference uint8 HWC arrays:
- every image of ../shared/data/sketchy/unseen21-256 (photo and sketch) at S=224, the first 5 per class at 112
  and 64, and 10 classes of all125-128 at 224;
- the decoded pixels as Pillow (`np.asarray(Image.open(p))`) and OpenCV (`cv2.imread`, BGR->RGB) see them;
- a set of small synthetic images written to test/fixtures/preprocess/images/ (edge cases of layout, mode and
  JPEG/PNG encoding), with full arrays for the small ones so a failing test can report the max abs diff;
- broken files in test/fixtures/preprocess/bad/ with the error the TS decoder must give;
- the 256-entry ToTensor+Normalize table as torch computes it (float32 bit patterns).
The synthetic images are regenerated deterministically; the shared data is only read, never copied.
"""
import base64
import hashlib
import io
import json
import os
import struct
import zlib
from math import ceil
from pathlib import Path

import cv2
import numpy as np
import PIL
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / 'test' / 'fixtures' / 'preprocess'
SHARED = Path(os.environ.get('SKETCHGPU_SHARED', REPO.parent / 'shared')) / 'data'


# --- Reference code: ZSE-SBIR data_utils/utils.py (MIT), with the size as a parameter. -------------------------

def remove_white_space_image(img_np: np.ndarray, padding: int):
    h, w, c = img_np.shape
    img_np_single = np.sum(img_np, axis=2)
    Y, X = np.where(img_np_single <= 300)  # max = 300
    ymin, ymax, xmin, xmax = np.min(Y), np.max(Y), np.min(X), np.max(X)
    img_cropped = img_np[max(0, ymin - padding):min(h, ymax + padding), max(0, xmin - padding):min(w, xmax + padding),
                  :]
    return img_cropped


def resize_image_by_ratio(img_np: np.ndarray, size: int):
    if len(img_np.shape) == 2:
        h, w = img_np.shape
    elif len(img_np.shape) == 3:
        h, w, _ = img_np.shape
    else:
        assert 0
    ratio = h / w
    if h > w:
        new_img = cv2.resize(img_np, (int(size / ratio), size,))  # resize is w, h  (fx, fy...)
    else:
        new_img = cv2.resize(img_np, (size, int(size * ratio),))
    return new_img


def make_img_square(img_np: np.ndarray):
    h, w, c = img_np.shape
    if h > w:
        delta1 = (h - w) // 2
        delta2 = (h - w) - delta1
        white1 = np.ones((h, delta1, c), dtype=img_np.dtype) * np.max(img_np)
        white2 = np.ones((h, delta2, c), dtype=img_np.dtype) * np.max(img_np)
        return np.hstack([white1, img_np, white2])
    else:
        delta1 = (w - h) // 2
        delta2 = (w - h) - delta1
        white1 = np.ones((delta1, w, c), dtype=img_np.dtype) * np.max(img_np)
        white2 = np.ones((delta2, w, c), dtype=img_np.dtype) * np.max(img_np)
        return np.vstack([white1, img_np, white2])


def ref_sketch_uint8(path, size):
    img = cv2.imread(str(path))
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    img = remove_white_space_image(img, 10)
    img = resize_image_by_ratio(img, size)
    img = make_img_square(img)
    assert img.dtype == np.uint8 and img.shape == (size, size, 3)
    return np.ascontiguousarray(img)


def ref_photo_uint8(path, size):
    a = np.asarray(Image.open(path).resize((size, size)).convert('RGB'))
    assert a.dtype == np.uint8 and a.shape == (size, size, 3)
    return a


def normalize_lut():
    """ToTensor() + Normalize([.5]*3, [.5]*3) on every uint8 value, as float32 bit patterns.

    torchvision is not installed here, so its two steps are spelled out with the same torch ops
    (torchvision/transforms/functional.py: to_tensor -> img.to(float32).div(255); normalize ->
    tensor.sub_(mean[:, None, None]).div_(std[:, None, None]))."""
    x = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # H=1, W=256, C=3
    t = torch.from_numpy(x.transpose((2, 0, 1))).contiguous().to(dtype=torch.float32).div(255)
    mean = torch.as_tensor([0.5, 0.5, 0.5], dtype=torch.float32)[:, None, None]
    std = torch.as_tensor([0.5, 0.5, 0.5], dtype=torch.float32)[:, None, None]
    y = t.sub_(mean).div_(std)[0, 0].numpy().astype(np.float32)
    assert y.shape == (256,)
    return [int(v) for v in y.view(np.uint32)]


# --- How each reference reader sees a file. ----------------------------------------------------------------

def pil_view(path):
    im = Image.open(path)
    a = np.asarray(im)
    if im.mode == '1':
        a = a.astype(np.uint8) * 255
    elif im.mode == 'I':
        a = a.astype('<u2')
    return im.mode, np.ascontiguousarray(a)


def cv_view(path):
    return np.ascontiguousarray(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


# --- A minimal baseline JPEG encoder, for layouts Pillow and cv2 cannot write. ------------------------------

NATURAL = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14,
           21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53,
           60, 61, 54, 47, 55, 62, 63]
QTABLE = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14,
                   17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49,
                   64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])  # Annex K luminance
DCT = np.array([[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)]
                for u in range(8)])


def optimal_huffman(freq):
    """jchuff.c jpeg_gen_optimal_table: code lengths <= 16 with the all-ones code reserved."""
    freq = list(freq) + [1]
    codesize = [0] * 257
    others = [-1] * 257
    while True:
        live = sorted((f, -i) for i, f in enumerate(freq) if f)
        if len(live) < 2:
            break
        c1, c2 = -live[0][1], -live[1][1]
        freq[c1] += freq[c2]
        freq[c2] = 0
        codesize[c1] += 1
        while others[c1] >= 0:
            c1 = others[c1]
            codesize[c1] += 1
        others[c1] = c2
        codesize[c2] += 1
        while others[c2] >= 0:
            c2 = others[c2]
            codesize[c2] += 1
    bits = [0] * 33
    for s in codesize:
        if s:
            bits[s] += 1
    for i in range(32, 16, -1):
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1
    vals = [s for length in range(1, 33) for s in range(256) if codesize[s] == length]
    codes, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(bits[length]):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return bits[1:17], vals[:sum(bits[1:17])], codes


class BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, length):
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc = self.n = 0

    def flush(self):
        while self.n:
            self.put(1, 1)


def _category(v):
    return 0 if v == 0 else int(abs(v)).bit_length()


def _bits_of(v, s):
    return v if v >= 0 else v + (1 << s) - 1


def encode_jpeg(planes, samp, ids=(1, 2, 3, 4), restart=0, jfif=True, adobe=None, interleaved=True, qdiv=2):
    """Baseline JPEG of `planes` (full-resolution uint8 planes, already in the JPEG colour space)."""
    H, W = planes[0].shape
    maxh = max(h for h, _ in samp)
    maxv = max(v for _, v in samp)
    mcux, mcuy = ceil(W / (8 * maxh)), ceil(H / (8 * maxv))
    q = np.maximum(QTABLE // qdiv, 1)
    comps = []
    for plane, (h, v) in zip(planes, samp):
        fx, fy = maxh // h, maxv // v
        cw, ch = ceil(W * h / maxh), ceil(H * v / maxv)
        p = np.pad(plane.astype(np.float64), ((0, ch * fy - H), (0, cw * fx - W)), mode='edge')
        ds = p.reshape(ch, fy, cw, fx).mean(axis=(1, 3))
        pw, ph = mcux * h * 8, mcuy * v * 8
        ds = np.pad(ds, ((0, ph - ch), (0, pw - cw)), mode='edge')
        blocks = ds.reshape(ph // 8, 8, pw // 8, 8).transpose(0, 2, 1, 3) - 128
        coef = np.einsum('ux,abxy,vy->abuv', DCT, blocks, DCT).reshape(ph // 8, pw // 8, 64)
        qc = np.round(coef / q).astype(np.int64)[:, :, NATURAL]
        comps.append(dict(h=h, v=v, qc=qc, wb=ceil(cw / 8), hb=ceil(ch / 8)))

    def scans():
        if interleaved:
            order = []
            for my in range(mcuy):
                for mx in range(mcux):
                    order.append([(ci, my * c['v'] + v, mx * c['h'] + h) for ci, c in enumerate(comps)
                                  for v in range(c['v']) for h in range(c['h'])])
            yield list(range(len(comps))), order
        else:
            for ci, c in enumerate(comps):
                yield [ci], [[(ci, by, bx)] for by in range(c['hb']) for bx in range(c['wb'])]

    def symbols(order):
        """(dc_symbol, dc_bits, dc_len, [(ac_symbol, bits, len)...]) per block, with DC prediction and restarts."""
        out = []
        pred = {}
        for m, mcu in enumerate(order):
            if restart and m % restart == 0:
                pred = {}
            blocks = []
            for ci, by, bx in mcu:
                z = comps[ci]['qc'][by, bx]
                diff = int(z[0]) - pred.get(ci, 0)
                pred[ci] = int(z[0])
                s = _category(diff)
                acs, run = [], 0
                last = max([k for k in range(1, 64) if z[k]] or [0])
                for k in range(1, last + 1):
                    if z[k] == 0:
                        run += 1
                        continue
                    while run > 15:
                        acs.append((0xF0, 0, 0))
                        run -= 16
                    sa = _category(int(z[k]))
                    acs.append(((run << 4) | sa, _bits_of(int(z[k]), sa), sa))
                    run = 0
                if last < 63:
                    acs.append((0x00, 0, 0))
                blocks.append((s, _bits_of(diff, s), s, acs))
            out.append(blocks)
        return out

    all_scans = [(cs, symbols(order)) for cs, order in scans()]
    dcf, acf = [0] * 256, [0] * 256
    for _, mcus in all_scans:
        for blocks in mcus:
            for s, _, _, acs in blocks:
                dcf[s] += 1
                for a, _, _ in acs:
                    acf[a] += 1
    dbits, dvals, dcodes = optimal_huffman(dcf)
    abits, avals, acodes = optimal_huffman(acf)

    def seg(marker, payload):
        return bytes([0xFF, marker]) + struct.pack('>H', len(payload) + 2) + payload

    out = bytearray(b'\xff\xd8')
    if jfif:
        out += seg(0xE0, b'JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00')
    if adobe is not None:
        out += seg(0xEE, b'Adobe\x00\x64\x00\x00\x00\x00' + bytes([adobe]))
    out += seg(0xDB, bytes([0]) + bytes(int(q[NATURAL[i]]) for i in range(64)))
    sof = struct.pack('>BHHB', 8, H, W, len(comps))
    for c, i in zip(comps, ids):
        sof += bytes([i, (c['h'] << 4) | c['v'], 0])
    out += seg(0xC0, sof)
    out += seg(0xC4, bytes([0x00]) + bytes(dbits) + bytes(dvals))
    out += seg(0xC4, bytes([0x10]) + bytes(abits) + bytes(avals))
    if restart:
        out += seg(0xDD, struct.pack('>H', restart))
    for cs, mcus in all_scans:
        out += seg(0xDA, bytes([len(cs)]) + b''.join(bytes([ids[ci], 0x00]) for ci in cs) + b'\x00\x3f\x00')
        bw = BitWriter()
        for m, blocks in enumerate(mcus):
            if restart and m and m % restart == 0:
                bw.flush()
                bw.out += bytes([0xFF, 0xD0 + ((m // restart - 1) % 8)])
            for s, bits, n, acs in blocks:
                bw.put(*dcodes[s])
                bw.put(bits, n)
                for a, abits_, an in acs:
                    bw.put(*acodes[a])
                    bw.put(abits_, an)
        bw.flush()
        out += bw.out
    out += b'\xff\xd9'
    return bytes(out)


# --- Synthetic images. ------------------------------------------------------------------------------------

def photo_pattern(w, h, seed=0, noise=12.0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 110 * np.sin(x / 6.3 + seed) * np.cos(y / 9.1)
    g = 128 + 120 * np.cos((x + 2 * y) / 11.7 + seed)
    b = (x * 5 + y * 3 + 40 * seed) % 256
    a = np.stack([r, g, b], axis=2) + rng.normal(0, noise, (h, w, 3))
    a[(x.astype(int) // 9 + y.astype(int) // 7) % 5 == 0] = [250, 20, 30]  # hard coloured edges for chroma
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def sketch_pattern(w, h, seed=0, box=None, gray=False):
    """Dark antialiased strokes on white, inside box = (x0, y0, x1, y1)."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 255, np.uint8)
    x0, y0, x1, y1 = box or (w // 8, h // 8, w - 1 - w // 8, h - 1 - h // 8)
    pts = lambda n: np.stack([rng.integers(x0, x1 + 1, n), rng.integers(y0, y1 + 1, n)], 1)  # noqa: E731
    for a, b_ in zip(pts(6), pts(6)):
        color = (0, 0, 0) if gray else tuple(int(c) for c in rng.integers(0, 90, 3))
        cv2.line(img, tuple(map(int, a)), tuple(map(int, b_)), color, int(rng.integers(1, 4)), cv2.LINE_AA)
    cv2.circle(img, ((x0 + x1) // 2, (y0 + y1) // 2), max(1, min(x1 - x0, y1 - y0) // 3), (40, 40, 40), 2,
               cv2.LINE_AA)
    # the bounding box corners, so the crop is exactly where the caller put it
    img[y0, x0] = img[y1, x1] = 0
    return img


def png_bytes(w, h, depth, ctype, rows, extra=b'', interlace=0, extra_after=b''):
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack('>IIBBBBB', w, h, depth, ctype, 0, 0, interlace)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + extra + chunk(b'IDAT', zlib.compress(rows, 9)) +
            extra_after + chunk(b'IEND', b''))


def png_chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)


def pack_rows(a, depth):
    """Unfiltered scanlines of an HxWxC (or HxW) integer array at the given bit depth (non-interlaced)."""
    a = a.reshape(a.shape[0], -1)
    rows = []
    for r in a:
        if depth == 16:
            rows.append(b'\x00' + r.astype('>u2').tobytes())
        elif depth == 8:
            rows.append(b'\x00' + r.astype(np.uint8).tobytes())
        else:
            bits = ''.join(format(int(v), f'0{depth}b') for v in r)
            bits += '0' * (-len(bits) % 8)
            rows.append(b'\x00' + bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)))
    return b''.join(rows)


def interlaced_rows(a, depth):
    """Adam7 pass data of an HxWxC array (filter type 0 on every row)."""
    h, w = a.shape[:2]
    out = b''
    for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                           (0, 1, 1, 2)]:
        sub = a[y0::dy, x0::dx]
        if sub.size:
            out += pack_rows(sub, depth)
    return out


def ycc(rgb):
    """JFIF RGB -> YCbCr (for the hand-made JPEGs; any reasonable conversion will do)."""
    r, g, b = [rgb[..., i].astype(np.float64) for i in range(3)]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return [np.clip(np.round(c), 0, 255) for c in (y, cb, cr)]


def exif_orientation(value):
    ex = Image.Exif()
    ex[0x0112] = value
    return ex.tobytes()


def make_synthetic():
    """name -> (bytes, description). Deterministic."""
    S = {}

    def pil_save(name, im, desc, **kw):
        buf = io.BytesIO()
        im.save(buf, format='PNG' if name.endswith('.png') else 'JPEG', **kw)
        S[name] = (buf.getvalue(), desc)

    rgb = lambda a: Image.fromarray(a, 'RGB')  # noqa: E731
    # Sketch layouts
    pil_save('sk_tall.png', rgb(sketch_pattern(100, 240, 1, (30, 12, 70, 230))), 'tall ink: h > w after crop')
    pil_save('sk_wide.png', rgb(sketch_pattern(300, 60, 2, (5, 20, 290, 45))), 'wide ink: w > h after crop')
    pil_save('sk_square_ink.png', rgb(sketch_pattern(120, 120, 3, (20, 20, 99, 99))), 'square crop (80+19 each way)')
    tiny = np.full((3, 5, 3), 255, np.uint8)
    tiny[1, 3] = [10, 20, 30]
    pil_save('sk_tiny_5x3.png', rgb(tiny), 'tiny image, one ink pixel')
    one = np.full((256, 256, 3), 255, np.uint8)
    one[100, 37] = [100, 100, 100]  # sum exactly 300: still ink
    pil_save('sk_one_pixel.png', rgb(one), 'a single ink pixel (R+G+B == 300)')
    pil_save('sk_border.png', rgb(sketch_pattern(64, 48, 4, (0, 0, 63, 47))), 'ink touching all four borders')
    pil_save('sk_blank.png', rgb(np.full((30, 40, 3), 255, np.uint8)), 'white: no ink')
    light = np.full((30, 40, 3), 255, np.uint8)
    light[5:20, 5:30] = [110, 100, 91]  # sum 301
    pil_save('sk_light.png', rgb(light), 'only light grey (R+G+B == 301): no ink')
    line = np.full((20, 700, 3), 255, np.uint8)
    line[10, 20:680] = 0
    pil_save('sk_thin_line.png', rgb(line), 'a 1-px line 660 px long: the crop is 680x19, resized to 224x6')
    needle = np.full((12, 2400, 3), 255, np.uint8)
    needle[6, 10:2390] = 0
    pil_save('sk_needle.png', rgb(needle), 'crop 2400x16 at S=64 is 64x0: the reference crashes in cv2.resize')
    pil_save('sk_area2x.png', rgb(sketch_pattern(500, 400, 5, (30, 40, 458, 320))),
             'crop 448x300 -> 224x150 is an exact 2x downscale: cv2 switches to INTER_AREA')
    pil_save('sk_upscale.png', rgb(sketch_pattern(40, 30, 6, (12, 11, 27, 19))), 'crop 35x28 upscaled')
    pil_save('odd_257x131.png', rgb(photo_pattern(257, 131, 7, noise=0)), 'odd size photo')
    pil_save('photo_600x40.png', rgb(photo_pattern(600, 40, 8, noise=2)), 'strong x downscale, y upscale')
    pil_save('photo_7x5.png', rgb(photo_pattern(7, 5, 9)), 'tiny photo, strong upscale')
    pil_save('photo_64.png', rgb(photo_pattern(64, 64, 10)), 'already S x S at S=64: Pillow copies, no resampling')

    # PNG modes
    g = sketch_pattern(70, 50, 11, gray=True)[..., 0]
    pil_save('gray8.png', Image.fromarray(g, 'L'), 'grayscale 8-bit PNG')
    for depth in (1, 2, 4):
        v = (g.astype(np.int64) * ((1 << depth) - 1) + 127) // 255
        S[f'gray{depth}.png'] = (png_bytes(70, 50, depth, 0, pack_rows(v, depth)), f'grayscale {depth}-bit PNG')
    S['gray2_interlaced.png'] = (png_bytes(70, 50, 2, 0, interlaced_rows((g // 64)[..., None], 2), interlace=1),
                                 'grayscale 2-bit Adam7-interlaced PNG')
    S['gray16.png'] = (png_bytes(70, 50, 16, 0, pack_rows(g.astype(np.int64) * 257 - (g > 0) * 37, 16)),
                       'grayscale 16-bit PNG (Pillow mode I, clipped by convert; cv2 keeps the high byte)')
    sk = sketch_pattern(64, 40, 12)
    alpha = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (40, 1))
    alpha[:, :8] = 0
    rgba = np.dstack([sk, alpha])
    rgba[:, :8, :3] = 0  # transparent black: cv2 drops alpha, so this reads as ink
    pil_save('rgba.png', Image.fromarray(rgba, 'RGBA'), 'RGBA, varying alpha, transparent black margin')
    pil_save('la.png', Image.fromarray(np.dstack([g[:40, :64], alpha]), 'LA'), 'gray+alpha 8-bit')
    S['rgb16.png'] = (png_bytes(64, 40, 16, 2, pack_rows(sk.astype(np.int64) * 257 - 3 * (sk > 0), 16)),
                      'RGB 16-bit PNG')
    S['rgba16.png'] = (png_bytes(64, 40, 16, 6, pack_rows(rgba.astype(np.int64) * 257, 16)), 'RGBA 16-bit PNG')
    S['la16.png'] = (png_bytes(64, 40, 16, 4, pack_rows(np.dstack([g[:40, :64], alpha]).astype(np.int64) * 257
                                                       + 100, 16)),
                     'gray+alpha 16-bit PNG (Pillow opens it as RGBA)')
    S['rgb_interlaced.png'] = (png_bytes(64, 40, 8, 2, interlaced_rows(sk, 8), interlace=1), 'Adam7 RGB PNG')
    pal_im = rgb(sketch_pattern(80, 60, 13)).quantize(16)
    buf = io.BytesIO()
    pal_im.save(buf, format='PNG', transparency=3)
    S['palette.png'] = (buf.getvalue(), 'palette PNG (16 colours, tRNS)')
    idx = (np.arange(48 * 32).reshape(32, 48) // 7 % 12).astype(np.uint8)
    pal = bytes([0, 0, 0, 255, 255, 255, 200, 30, 30, 30, 200, 30, 30, 30, 200, 90, 90, 90])  # 6 entries
    S['palette_short.png'] = (png_bytes(48, 32, 8, 3, pack_rows(idx, 8), png_chunk(b'PLTE', pal)),
                              'palette PNG whose indices exceed PLTE (Pillow: gray ramp, libpng: black)')
    S['palette4.png'] = (png_bytes(48, 32, 4, 3, pack_rows(idx % 6, 4), png_chunk(b'PLTE', pal)), '4-bit palette')
    S['palette1.png'] = (png_bytes(48, 32, 1, 3, pack_rows(idx % 2, 1), png_chunk(b'PLTE', pal[:6])),
                         '1-bit palette')
    ex = exif_orientation(6)
    S['exif6.png'] = (png_bytes(64, 40, 8, 2, pack_rows(sk, 8), png_chunk(b'eXIf', ex[6:] if ex[:4] == b'Exif'
                                                                             else ex)),
                      'eXIf orientation 6: cv2.imread rotates, Pillow does not')
    tiff8 = exif_orientation(8)
    S['exif8_after_idat.png'] = (png_bytes(40, 24, 8, 2, pack_rows(sk[:24, :40], 8),
                                           extra_after=png_chunk(b'eXIf', tiff8[6:] if tiff8[:4] == b'Exif' else tiff8)),
                                 'eXIf orientation 8 after the image data (cv2 still rotates)')
    raw = photo_pattern(33, 9, 14).reshape(9, -1).astype(np.int64)
    enc = b''
    for y in range(9):  # rows filtered with every filter type (Sub, Up, Average, Paeth) in turn
        f = y % 5
        line, prev = raw[y], raw[y - 1] if y else np.zeros(99, np.int64)
        left = np.concatenate([[0, 0, 0], line[:-3]])
        upleft = np.concatenate([[0, 0, 0], prev[:-3]])
        if f == 0:
            d = line
        elif f == 1:
            d = line - left
        elif f == 2:
            d = line - prev
        elif f == 3:
            d = line - (left + prev) // 2
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            d = line - np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        enc += bytes([f]) + bytes((d % 256).astype(np.uint8))
    S['filters.png'] = (png_bytes(33, 9, 8, 2, enc), 'every PNG row filter type')

    # JPEG through Pillow / cv2 (libjpeg-turbo encoder)
    ph = photo_pattern(96, 72, 15)
    for sub, name in ((0, '444'), (1, '422'), (2, '420')):
        pil_save(f'j_{name}.jpg', rgb(ph), f'baseline 4:{name[1]}:{name[2]} JPEG', quality=90, subsampling=sub)
    pil_save('j_420_odd_257x131.jpg', rgb(photo_pattern(257, 131, 16)), '4:2:0, odd size', quality=85)
    pil_save('j_422_odd_35x17.jpg', rgb(photo_pattern(35, 17, 17)), '4:2:2, odd size', quality=85, subsampling=1)
    pil_save('j_prog.jpg', rgb(ph), 'progressive 4:2:0', quality=80, progressive=True)
    pil_save('j_prog_444.jpg', rgb(photo_pattern(50, 37, 18)), 'progressive 4:4:4', quality=95, progressive=True,
             subsampling=0)
    pil_save('j_gray.jpg', Image.fromarray(g, 'L'), 'grayscale JPEG', quality=90)
    pil_save('j_gray_prog.jpg', Image.fromarray(g, 'L'), 'grayscale progressive JPEG', quality=70, progressive=True)
    pil_save('j_cmyk.jpg', rgb(ph).convert('CMYK'), 'CMYK JPEG (Adobe, transform 0)', quality=90)
    pil_save('j_exif6.jpg', rgb(sketch_pattern(64, 40, 19)), 'JPEG with EXIF orientation 6', quality=92,
             exif=exif_orientation(6))
    for o in (2, 3, 4, 5, 7):
        pil_save(f'j_exif{o}.jpg', rgb(sketch_pattern(24, 16, 40 + o)), f'JPEG with EXIF orientation {o}', quality=90,
                 exif=exif_orientation(o))
    pil_save('j_sketch.jpg', rgb(sketch_pattern(120, 90, 20)), 'a sketch saved as JPEG', quality=75)
    ok, enc = cv2.imencode('.jpg', cv2.cvtColor(photo_pattern(90, 70, 21), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_RST_INTERVAL, 2,
                            cv2.IMWRITE_JPEG_QUALITY, 85])
    S['j_cv_prog_rst.jpg'] = (enc.tobytes(), 'progressive JPEG with restart markers (cv2)')
    ok, enc = cv2.imencode('.jpg', cv2.cvtColor(photo_pattern(90, 70, 22), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_RST_INTERVAL, 1, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
    S['j_cv_rst_opt.jpg'] = (enc.tobytes(), 'baseline, restart every MCU, optimised Huffman tables (cv2)')

    # JPEG through the encoder above: layouts the libraries will not write
    y_, cb, cr = ycc(photo_pattern(61, 45, 23))
    S['j_440.jpg'] = (encode_jpeg([y_, cb, cr], [(1, 2), (1, 1), (1, 1)]), '4:4:0 (h1v2 fancy upsampling)')
    S['j_411.jpg'] = (encode_jpeg([y_, cb, cr], [(4, 1), (1, 1), (1, 1)]), '4:1:1 (int_upsample)')
    S['j_mixed.jpg'] = (encode_jpeg([y_, cb, cr], [(2, 2), (1, 2), (2, 1)]), 'Cb h2v1, Cr h1v2')
    S['j_420_restart.jpg'] = (encode_jpeg([y_, cb, cr], [(2, 2), (1, 1), (1, 1)], restart=3), 'restart every 3 MCUs')
    S['j_noninterleaved.jpg'] = (encode_jpeg([y_, cb, cr], [(2, 2), (1, 1), (1, 1)], interleaved=False),
                                 'three single-component scans')
    nw_y, nw_cb, nw_cr = ycc(photo_pattern(3, 21, 24))
    S['j_420_narrow3.jpg'] = (encode_jpeg([nw_y, nw_cb, nw_cr], [(2, 2), (1, 1), (1, 1)]),
                              'width 3: chroma is 2 wide, so libjpeg uses plain (not fancy) upsampling')
    ar = photo_pattern(40, 24, 25)
    S['j_adobe_rgb.jpg'] = (encode_jpeg([ar[..., i] for i in range(3)], [(1, 1)] * 3, jfif=False, adobe=0),
                            'RGB JPEG (Adobe transform 0)')
    S['j_rgb_ids.jpg'] = (encode_jpeg([ar[..., i] for i in range(3)], [(1, 1)] * 3, ids=(82, 71, 66), jfif=False),
                          "RGB JPEG recognised by component ids 'R','G','B'")
    S['j_jfif_adobe0.jpg'] = (encode_jpeg([y_, cb, cr], [(2, 1), (1, 1), (1, 1)], adobe=0),
                              'JFIF and Adobe transform 0: libjpeg believes JFIF (YCbCr)')
    cm = photo_pattern(40, 24, 26)
    k = np.minimum(cm.min(axis=2), 200).astype(np.float64)
    yk, cbk, crk = ycc(cm)
    S['j_ycck.jpg'] = (encode_jpeg([yk, cbk, crk, k], [(2, 2), (1, 1), (1, 1), (2, 2)], jfif=False, adobe=2),
                       'YCCK JPEG (Adobe transform 2)')

    # Damaged JPEGs that libjpeg still decodes (with warnings), so Pillow and cv2 accept them.
    j = S['j_420.jpg'][0]
    sos = j.index(b'\xff\xda')
    data = sos + 2 + struct.unpack('>H', j[sos + 2:sos + 4])[0]
    S['j_damaged_huffman.jpg'] = (j[:data + 200] + b'\xff\x00' * 24 + j[data + 248:],
                                  'scan data overwritten with 1-bits: "bad Huffman code" warnings, decoded anyway')
    mid = (data + len(j)) // 2
    S['j_damaged_marker.jpg'] = (j[:mid] + b'\xff\xd3' + j[mid:],
                                 'a stray RST3 inside the scan: "premature end of data segment", rest left gray')
    return S


# Refused by design although Pillow reads them: other formats, and arithmetic coding (libjpeg-turbo has a decoder
# for it, sketchgpu does not).
UNSUPPORTED_BUT_PILLOW_OPENS = {'arithmetic.jpg', 'image.gif', 'image.webp', 'image.bmp', 'image.tif'}


def make_bad(S):
    """Broken files: name -> (bytes, expected error substring)."""
    B = {}
    j = S['j_420.jpg'][0]
    B['truncated.jpg'] = (j[:len(j) // 2], 'cut short')
    sos = j.index(b'\xff\xda')
    seg = sos + 2 + struct.unpack('>H', j[sos + 2:sos + 4])[0]
    dht = j.index(b'\xff\xc4')
    counts = bytearray(j[dht + 5:dht + 21])
    k = next(i for i in range(15, 0, -1) if counts[i] >= 3)
    counts[0] += 3  # three 1-bit codes cannot exist: the table's codes overflow (JERR_BAD_HUFF_TABLE)
    counts[k] -= 3
    B['bad_huffman_table.jpg'] = (j[:dht + 5] + bytes(counts) + j[dht + 21:], 'Huffman table')
    B['second_scan.jpg'] = (j[:-2] + j[sos:seg] + b'\x00' * 8 + b'\xff\xd9',
                            'second scan')
    sof = j.index(b'\xff\xc0')
    B['arithmetic.jpg'] = (j[:sof + 1] + b'\xc9' + j[sof + 2:], 'arithmetic')
    B['12bit.jpg'] = (j[:sof + 4] + b'\x0c' + j[sof + 5:], '12-bit')
    B['no_sof.jpg'] = (b'\xff\xd8\xff\xd9', 'no SOF')
    p = S['rgb16.png'][0]
    idat = p.index(b'IDAT')
    B['truncated.png'] = (p[:idat + 40], 'cut short')
    corrupt = bytearray(p)
    corrupt[idat + 30] ^= 0x55
    B['crc.png'] = (bytes(corrupt), 'CRC')
    im = Image.fromarray(photo_pattern(16, 16, 30), 'RGB')
    for fmt, ext, msg in (('GIF', 'gif', 'GIF'), ('WEBP', 'webp', 'WebP'), ('BMP', 'bmp', 'BMP'),
                          ('TIFF', 'tif', 'TIFF')):
        buf = io.BytesIO()
        im.save(buf, format=fmt)
        B[f'image.{ext}'] = (buf.getvalue(), msg)
    B['random.bin'] = (np.random.default_rng(31).integers(0, 256, 300, dtype=np.uint8).tobytes(), 'not a PNG or JPEG')
    B['empty.png'] = (b'', 'empty')
    return B


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / 'images').mkdir(exist_ok=True)
    (OUT / 'bad').mkdir(exist_ok=True)
    synth = make_synthetic()
    bad = make_bad(synth)
    for name, (data, _) in bad.items():  # broken files must be refused by the reference reader too
        try:
            np.asarray(Image.open(io.BytesIO(data)))
        except Exception:
            continue
        assert name in UNSUPPORTED_BUT_PILLOW_OPENS, f'Pillow opens bad/{name}'
    for sub, files in (('images', synth), ('bad', bad)):
        for f in (OUT / sub).iterdir():  # drop fixtures of earlier versions of this script
            if f.name not in files:
                f.unlink()
        for name, (data, _) in files.items():
            (OUT / sub / name).write_bytes(data)

    SMALL = 24  # full arrays at this S for the synthetic images
    sizes = [224, 112, 64, SMALL]
    synthetic = []
    for name, (_, desc) in synth.items():
        p = OUT / 'images' / name
        mode, pv = pil_view(p)
        cv = cv_view(p)
        e = {'file': f'images/{name}', 'what': desc, 'pil': {'mode': mode, 'shape': list(pv.shape), 'sha256': sha(pv)},
             'cv2': {'shape': list(cv.shape), 'sha256': sha(cv)}, 'photo': {}, 'sketch': {}}
        if pv.nbytes <= 48 * 48:
            e['pil']['b64'] = b64(pv)
            e['cv2']['b64'] = b64(cv)
        for s in sizes:
            a = ref_photo_uint8(p, s)
            e['photo'][str(s)] = {'sha256': sha(a), **({'b64': b64(a)} if s == SMALL else {})}
            try:
                a = ref_sketch_uint8(p, s)
                e['sketch'][str(s)] = {'sha256': sha(a), **({'b64': b64(a)} if s == SMALL else {})}
            except ValueError as err:  # np.min of an empty array: no ink
                assert 'zero-size array' in str(err), err
                e['sketch'][str(s)] = {'error': 'EMPTY_SKETCH'}
            except cv2.error as err:  # resize to a zero-size image
                assert 'resize' in str(err), err
                e['sketch'][str(s)] = {'error': 'BAD_IMAGE'}
        synthetic.append(e)

    real = {'photo': {}, 'sketch': {}}
    decode = {'pil': {}, 'cv2': {}}
    if (SHARED / 'sketchy').exists():
        un = SHARED / 'sketchy' / 'unseen21-256'
        a125 = SHARED / 'sketchy' / 'all125-128'
        classes125 = sorted(d.name for d in (a125 / 'photo').iterdir())[::12][:10]
        for kind, fn in (('photo', ref_photo_uint8), ('sketch', ref_sketch_uint8)):
            sets = {'224': sorted((un / kind).glob('*/*')) +
                    sorted(f for c in classes125 for f in (a125 / kind / c).iterdir())}
            first5 = [f for d in sorted((un / kind).iterdir()) for f in sorted(d.iterdir())[:5]]
            sets['112'] = first5
            sets['64'] = first5
            for s, files in sets.items():
                real[kind][s] = {str(f.relative_to(SHARED)): sha(fn(f, int(s))) for f in files}
            for f in sets['224']:
                rel = str(f.relative_to(SHARED))
                if kind == 'photo':
                    decode['pil'][rel] = sha(pil_view(f)[1])
                else:
                    decode['cv2'][rel] = sha(cv_view(f))
    else:
        print(f'warning: {SHARED}/sketchy not found; writing synthetic fixtures only')

    expected = {
        'generator': 'tools/make_preprocess_fixtures.py',
        'reference': {'Pillow': PIL.__version__, 'cv2': cv2.__version__, 'numpy': np.__version__,
                      'torch': torch.__version__},
        'hash': 'sha256 of the C-contiguous uint8 array (HWC); Pillow mode 1 as 0/255, mode I as little-endian u16',
        'normalize_lut_f32_bits': normalize_lut(),
        'synthetic': synthetic,
        'bad': [{'file': f'bad/{n}', 'error': 'BAD_IMAGE', 'match': m} for n, (_, m) in bad.items()],
        'real': real,
        'decode': decode,
    }
    (OUT / 'expected.json').write_text(json.dumps(expected, separators=(',', ':')) + '\n')
    total = sum(f.stat().st_size for f in OUT.rglob('*') if f.is_file())
    print(f'wrote {OUT} ({total / 1e6:.2f} MB, {len(synthetic)} synthetic, {len(bad)} bad, '
          f'{sum(len(v) for k in real.values() for v in k.values())} real hashes)')


if __name__ == '__main__':
    main()
