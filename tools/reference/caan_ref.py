"""PyTorch reference of sketchgpu's reading of CAAN (docs/caan.md; the paper: ../shared/docs/caan.md).

Three towers and an alignment module:
  sketch.*, photo.*  two ViTs of ZSE-SBIR's SA form (zse_ref: patch conv + optional conv stem averaged, cls, pos,
                     pre-LN blocks, final LN), separate weights, then `proj` [width, embed] (CLIP's visual.proj
                     convention: x @ proj) on every token;
  text.*             CLIP's text transformer under the prefix `text.` (CLIP's own names after it), causal mask,
                     QuickGELU, ln_final, EOT pooling (argmax of the ids), `text_projection` [width, embed];
  align.*            ZSE-style post-LN cross-attention layers in the embed space (query = own tokens, key/value =
                     the other modality's), ZSE's anchor conv (raw-view quirk kept), a relation network over the
                     anchor-to-anchor cosine matrix (sketch-photo) and one over per-anchor best word cosines
                     (image-text).
Inference uses the sketch and photo towers (global cosine) and, for re-ranking, align.sk_im / align.im_sk + the
anchor conv + align.rn. Everything else under align.* serves training (loss_terms).

Run with /usr/bin/python3 (torch 1.13, CPU); works in float32 and float64 (`model.double()`).
"""
import math
from dataclasses import dataclass, asdict, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import zse_ref as Z

CLIP_VOCAB = 49408
CLIP_CONTEXT = 77
CLIP_EOT = 49407


# ----------------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class ImageConfig:
    width: int = 768
    depth: int = 12
    heads: int = 12
    mlp: int = 3072
    grid: int = 14                     # image side 16 * grid
    stem: tuple = (64, 128, 256)       # () = patch conv only

    @property
    def image_size(self):
        return 16 * self.grid

    @property
    def tokens(self):
        return 1 + self.grid * self.grid


@dataclass
class TextConfig:
    vocab: int = CLIP_VOCAB
    context: int = CLIP_CONTEXT
    width: int = 512
    depth: int = 12
    heads: int = 8
    mlp: int = 2048


@dataclass
class AlignConfig:
    heads: int = 8
    ff: int = 1024
    anchor_dim: int = 512
    rn_hidden: tuple = (343, 49)       # sketch-photo RN widths (then 1)
    rn_text_hidden: int = 49           # image-text RN width (then 1)


@dataclass
class CaanConfig:
    image: ImageConfig = field(default_factory=ImageConfig)
    text: TextConfig = field(default_factory=TextConfig)
    embed: int = 512
    align: AlignConfig = field(default_factory=AlignConfig)
    name: str = 'full'

    @property
    def anchor_grid(self):
        return self.image.grid // 2

    @property
    def anchors(self):
        return self.anchor_grid ** 2

    def to_json(self):
        """The engine's config JSON (safetensors metadata `sketchgpu.config`), camelCase as in docs/caan.md."""
        i, t, a = self.image, self.text, self.align
        return {
            'image': {'width': i.width, 'depth': i.depth, 'heads': i.heads, 'mlp': i.mlp, 'grid': i.grid,
                      'stem': list(i.stem)},
            'text': {'vocab': t.vocab, 'context': t.context, 'width': t.width, 'depth': t.depth, 'heads': t.heads,
                     'mlp': t.mlp},
            'embed': self.embed,
            'align': {'heads': a.heads, 'ff': a.ff, 'anchorDim': a.anchor_dim, 'rnHidden': list(a.rn_hidden),
                      'rnTextHidden': a.rn_text_hidden},
        }

    @staticmethod
    def full():
        """ViT-B/16 towers at 224 px (ZSE's SA size) + CLIP ViT-B's text tower; opt-in only (~220M params)."""
        return CaanConfig(name='full')

    @staticmethod
    def small():
        """For demo training on CPU: 112 px, 6-block towers, a 4-block text tower."""
        return CaanConfig(image=ImageConfig(width=192, depth=6, heads=3, mlp=768, grid=7, stem=(24, 48, 96)),
                          text=TextConfig(width=256, depth=4, heads=4, mlp=1024),
                          embed=256, align=AlignConfig(heads=4, ff=512, anchor_dim=128, rn_hidden=(64, 16),
                                                       rn_text_hidden=16), name='small')

    @staticmethod
    def demo():
        """The shipped demo model (tools/training/train_caan.py: 3,000 steps in ~50 min on one CPU core): image towers as the ZSE demo model
        (128/5/4/512, 112 px, stem 16-32-64), a 4-block 128-wide text tower with CLIP's 77 positions, embed 128,
        RN widths as ZSE's small (A^1.5, A) = (27, 9) for A = 9 anchors."""
        return CaanConfig(image=ImageConfig(width=128, depth=5, heads=4, mlp=512, grid=7, stem=(16, 32, 64)),
                          text=TextConfig(width=128, depth=4, heads=4, mlp=512),
                          embed=128, align=AlignConfig(heads=4, ff=256, anchor_dim=64, rn_hidden=(27, 9),
                                                       rn_text_hidden=9), name='demo')

    @staticmethod
    def tiny():
        """Test fixture: 112 px, widths 32 / 16 / 32 (image / text / embed), the real CLIP vocab and context."""
        return CaanConfig(image=ImageConfig(width=32, depth=2, heads=4, mlp=64, grid=7, stem=(8, 16, 24)),
                          text=TextConfig(width=16, depth=2, heads=2, mlp=64),
                          embed=32, align=AlignConfig(heads=4, ff=48, anchor_dim=16, rn_hidden=(24, 12),
                                                      rn_text_hidden=8), name='tiny')


# ----------------------------------------------------------------------------------------------------------------
# Image towers (ZSE's SA encoder, zse_ref; docs/caan.md "Image towers")
# ----------------------------------------------------------------------------------------------------------------
class ImageTower(nn.Module):
    def __init__(self, ic: ImageConfig, embed: int):
        super().__init__()
        d = ic.width
        self.ic = ic
        self.embedding = nn.Conv2d(3, d, 16, 16)
        self.scale = Z.ScaleEmbedding(d, ic.stem) if ic.stem else None
        self.pos_embedding = nn.Parameter(torch.zeros(1, ic.tokens, d))
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.transformer = Z.SAEncoder(d, ic.depth, ic.heads, ic.mlp)
        self.proj = nn.Parameter(torch.zeros(d, embed))

    def forward(self, img, collect=None):
        x = self.embedding(img)
        if self.scale is not None:
            x = (x + self.scale(img)) / 2                          # ZSE's plain average (zse-sbir.md quirk 7)
        b = x.shape[0]
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat((self.cls.expand(b, -1, -1), x), dim=1) + self.pos_embedding
        if collect is not None:
            collect['tokens'] = x
        col = {} if collect is not None else None
        x = self.transformer(x, col)
        if collect is not None:
            for k, v in col.items():
                collect[k.replace('sa.layer', 'layer')] = v
            collect['ln'] = x
        t = x @ self.proj                                           # every token into the joint space
        if collect is not None:
            collect['proj'] = t
        return t


# ----------------------------------------------------------------------------------------------------------------
# Text tower (CLIP's TextTransformer; names as in CLIP's state dict under `text.`)
# ----------------------------------------------------------------------------------------------------------------
class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads, mlp):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential()
        self.mlp.add_module('c_fc', nn.Linear(width, mlp))
        self.mlp.add_module('gelu', QuickGELU())
        self.mlp.add_module('c_proj', nn.Linear(mlp, width))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x, mask):                                     # x [L, N, D] (CLIP is sequence-first)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class TextTransformer(nn.Module):
    def __init__(self, width, depth, heads, mlp):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, mlp) for _ in range(depth)])

    def forward(self, x, mask, collect=None):
        for i, blk in enumerate(self.resblocks):
            x = blk(x, mask)
            if collect is not None:
                collect[f'layer{i}'] = x.permute(1, 0, 2)
        return x


class TextTower(nn.Module):
    def __init__(self, tc: TextConfig, embed: int):
        super().__init__()
        self.tc = tc
        self.token_embedding = nn.Embedding(tc.vocab, tc.width)
        self.positional_embedding = nn.Parameter(torch.zeros(tc.context, tc.width))
        self.transformer = TextTransformer(tc.width, tc.depth, tc.heads, tc.mlp)
        self.ln_final = nn.LayerNorm(tc.width)
        self.text_projection = nn.Parameter(torch.zeros(tc.width, embed))

    def causal_mask(self, n, dtype):
        m = torch.full((n, n), float('-inf'), dtype=dtype)
        return m.triu_(1)                                           # CLIP's build_attention_mask: -inf above the diagonal

    def forward(self, ids, collect=None):
        """ids [N, L] (L <= context, int64). Returns (tokens [N, L, width] after ln_final, eot index [N])."""
        n, L = ids.shape
        x = self.token_embedding(ids) + self.positional_embedding[:L]
        if collect is not None:
            collect['tokens'] = x
        x = self.transformer(x.permute(1, 0, 2), self.causal_mask(L, x.dtype), collect).permute(1, 0, 2)
        x = self.ln_final(x)
        eot = ids.argmax(dim=-1)                                    # CLIP: EOT has the largest id; first one wins
        if collect is not None:
            collect['ln'] = x
            collect['eot'] = eot
        return x, eot


# ----------------------------------------------------------------------------------------------------------------
# Alignment (docs/caan.md "Alignment")
# ----------------------------------------------------------------------------------------------------------------
class CrossAttention(nn.Module):
    """ZSE's MultiHeadedAttention (4 linears, scores / sqrt(d_k)) with the usual q/k/v roles and a key mask."""

    def __init__(self, heads, dim):
        super().__init__()
        self.h, self.d_k = heads, dim // heads
        self.linears = Z.clones(nn.Linear(dim, dim), 4)

    def forward(self, x, y, key_valid=None):
        nb = x.size(0)
        q = self.linears[0](x).view(nb, -1, self.h, self.d_k).transpose(1, 2)
        k = self.linears[1](y).view(nb, -1, self.h, self.d_k).transpose(1, 2)
        v = self.linears[2](y).view(nb, -1, self.h, self.d_k).transpose(1, 2)
        s = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)
        if key_valid is not None:                                   # [nb, Ty] bool: padding words are not keys
            s = s.masked_fill(~key_valid[:, None, None, :], float('-inf'))
        o = (s.softmax(-1) @ v).transpose(1, 2).reshape(nb, -1, self.h * self.d_k)
        return self.linears[3](o)


class CrossLayer(nn.Module):
    """x' = LN(x + CA(x, y)); out = LN(x' + FFN(x')) with ZSE's CA LayerNorm (unbiased std + 1e-6) and ReLU FFN.
    Child names as ZSE's CA layer (self_attn.linears.i, feed_forward.w_1/w_2, sublayer.i.norm.a/b)."""

    def __init__(self, dim, heads, ff):
        super().__init__()
        self.self_attn = CrossAttention(heads, dim)
        self.feed_forward = Z.PositionwiseFeedForward(dim, ff, 0.1)
        self.sublayer = Z.clones(Z.AddAndNorm(dim, 0.1), 2)

    def forward(self, x, y, key_valid=None):
        x = self.sublayer[0](x, self.self_attn(x, y, key_valid))
        return self.sublayer[1](x, self.feed_forward(x))


class Alignment(nn.Module):
    def __init__(self, cfg: CaanConfig):
        super().__init__()
        a, E = cfg.align, cfg.embed
        self.cfg = cfg
        for name in ('sk_im', 'im_sk', 'sk_txt', 'txt_sk', 'im_txt', 'txt_im'):   # <updated>_<attended>
            setattr(self, name, CrossLayer(E, a.heads, a.ff))
        self.anchor = nn.Conv2d(E, a.anchor_dim, 2, 2)
        self.text_anchor = nn.Linear(E, a.anchor_dim)
        self.rn = Z.RelationNetwork(cfg.anchors, a.rn_hidden)
        self.rn_text = nn.Sequential(nn.Linear(cfg.anchors, a.rn_text_hidden), nn.ReLU(), nn.Dropout(0.1),
                                     nn.Linear(a.rn_text_hidden, 1))

    def anchors_of(self, tok):
        """ZSE's anchors (zse-sbir.md §3.4, quirk 9 kept: CAAN extends ZSE's code): drop cls, raw view of the
        [G*G, E] rows as [E, G, G], conv 2x2 stride 2, -> [N, A, C]."""
        g, n = self.cfg.image.grid, tok.size(0)
        down = self.anchor(tok[:, 1:].reshape(n, self.cfg.embed, g, g))
        return down.view(n, self.cfg.align.anchor_dim, self.cfg.anchors).transpose(1, 2)

    def image_pair(self, sk, im):
        """Sketch-photo local relation for P pairs: sk, im [P, T, E] projected tower tokens."""
        ca_sk = self.sk_im(sk, im)
        ca_im = self.im_sk(im, sk)                                  # both from the tower outputs
        an_sk, an_im = self.anchors_of(ca_sk), self.anchors_of(ca_im)
        cos = Z.cos_similar(an_sk, an_im)                           # [P, A, A], sketch-anchor-major
        score = self.rn(cos.flatten(1))
        return {'ca.sketch': ca_sk, 'ca.photo': ca_im, 'anchors.sketch': an_sk, 'anchors.photo': an_im,
                'cos': cos, 'score': score[:, 0]}

    def text_pair(self, img, txt, valid, which):
        """Image-text local relation for P pairs: img [P, T, E], txt [P, L, E], valid [P, L] (words 0..eot).
        which: 'sk' or 'im' (selects the layers)."""
        ca_img = getattr(self, f'{which}_txt')(img, txt, valid)
        ca_txt = getattr(self, f'txt_{which}')(txt, img)
        an = self.anchors_of(ca_img)                                # [P, A, C]
        words = self.text_anchor(ca_txt)                            # [P, L, C]
        cos = Z.cos_similar(an, words)                              # [P, A, L]
        best = cos.masked_fill(~valid[:, None, :], float('-inf')).max(-1).values   # best word per anchor [P, A]
        score = torch.sigmoid(self.rn_text(best))[:, 0]
        return {'ca.image': ca_img, 'ca.text': ca_txt, 'best': best, 'score': score}


# ----------------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------------
def normalize(x):
    return F.normalize(x, p=2, dim=-1, eps=1e-12)


class Caan(nn.Module):
    def __init__(self, cfg: CaanConfig = None):
        super().__init__()
        self.cfg = cfg or CaanConfig.full()
        self.sketch = ImageTower(self.cfg.image, self.cfg.embed)
        self.photo = ImageTower(self.cfg.image, self.cfg.embed)
        self.text = TextTower(self.cfg.text, self.cfg.embed)
        self.align = Alignment(self.cfg)

    def encode_image(self, tower, img, collect=None):
        tok = tower(img, collect)                                   # [N, T, E]
        return tok, normalize(tok[:, 0])

    def encode_text(self, ids, collect=None):
        x, eot = self.text(ids, collect)
        feat = x[torch.arange(x.size(0)), eot]                      # [N, width] at the EOT token
        tok = x @ self.text.text_projection                         # [N, L, E] (alignment)
        emb = normalize(feat @ self.text.text_projection)
        if collect is not None:
            collect['eot_features'] = feat
            collect['proj'] = tok
        valid = torch.arange(ids.size(1))[None, :] <= eot[:, None]
        return tok, emb, valid

    @torch.no_grad()
    def forward_all(self, sk, im, ids):
        """Every intermediate for the fixtures: ids [Nt, L] int64."""
        out = {}
        for m, tower, x in (('sketch', self.sketch, sk), ('photo', self.photo, im)):
            col = {}
            tok, emb = self.encode_image(tower, x, col)
            out[f'{m}.input'] = x
            out.update({f'{m}.{k}': v for k, v in col.items()})
            out[f'{m}.emb'] = emb
        col = {}
        ttok, temb, valid = self.encode_text(ids, col)
        out['text.ids'] = ids
        out.update({f'text.{k}': v for k, v in col.items()})
        out['text.emb'] = temb
        out['sim.sketch_photo'] = out['sketch.emb'] @ out['photo.emb'].t()
        out['sim.text_photo'] = temb @ out['photo.emb'].t()
        out['sim.text_sketch'] = temb @ out['sketch.emb'].t()
        # every sketch x photo pair, p = s * Np + j
        ns, np_ = sk.size(0), im.size(0)
        skp = out['sketch.proj'].repeat_interleave(np_, 0)
        imp = out['photo.proj'].repeat(ns, 1, 1)
        r = self.align.image_pair(skp, imp)
        out.update({f'pair.{k}': v for k, v in r.items() if k != 'score'})
        out['rn.score'] = r['score'].view(ns, np_)
        # every text x photo and text x sketch pair, p = t * N + j
        nt = ids.size(0)
        for m, which, n in (('photo', 'im', np_), ('sketch', 'sk', ns)):
            img = out[f'{m}.proj'].repeat(nt, 1, 1)
            txt = ttok.repeat_interleave(n, 0)
            r = self.align.text_pair(img, txt, valid.repeat_interleave(n, 0), which)
            out[f'text_{m}.ca.image'] = r['ca.image']
            out[f'text_{m}.ca.text'] = r['ca.text']
            out[f'text_{m}.best'] = r['best']
            out[f'text_{m}.score'] = r['score'].view(nt, n)
        return out


# ----------------------------------------------------------------------------------------------------------------
# Training losses (docs/caan.md "Training"): global triplets + local relation BCE
# ----------------------------------------------------------------------------------------------------------------
def cos_triplet(a, p, n, margin):
    """Triplet loss on cosine distance of unit vectors: relu(d(a,p) - d(a,n) + margin), d = 1 - cos."""
    return F.relu((a * n).sum(-1) - (a * p).sum(-1) + margin).mean()


def loss_terms(model, sk, im_pos, im_neg, ids_pos, margin=0.3):
    """One batch of (sketch, photo of its class, photo of another class, a description of the sketch's class).
    Returns a dict of the loss terms and their sum 'total'."""
    sk_tok, sk_emb = model.encode_image(model.sketch, sk)
    ip_tok, ip_emb = model.encode_image(model.photo, im_pos)
    in_tok, in_emb = model.encode_image(model.photo, im_neg)
    t_tok, t_emb, valid = model.encode_text(ids_pos)
    terms = {
        'global.sketch_photo': cos_triplet(sk_emb, ip_emb, in_emb, margin),
        'global.text_photo': cos_triplet(t_emb, ip_emb, in_emb, margin),
        'global.text_sketch': cos_triplet(t_emb, sk_emb, sk_emb.roll(1, 0), margin),
    }
    b = sk.size(0)
    ones, zeros = torch.ones(b, dtype=sk_emb.dtype), torch.zeros(b, dtype=sk_emb.dtype)
    al = model.align
    pos = al.image_pair(sk_tok, ip_tok)['score']
    neg = al.image_pair(sk_tok, in_tok)['score']
    terms['local.sketch_photo'] = F.binary_cross_entropy(torch.cat([pos, neg]), torch.cat([ones, zeros]))
    tp = al.text_pair(ip_tok, t_tok, valid, 'im')['score']
    tn = al.text_pair(in_tok, t_tok, valid, 'im')['score']
    ts = al.text_pair(sk_tok, t_tok, valid, 'sk')['score']
    terms['local.text_image'] = F.binary_cross_entropy(torch.cat([tp, ts, tn]), torch.cat([ones, ones, zeros]))
    terms['total'] = sum(terms.values())
    return terms


# ----------------------------------------------------------------------------------------------------------------
# Deterministic random init (numpy PCG64, state_dict order), as zse_ref.init_random_
# ----------------------------------------------------------------------------------------------------------------
_LN_W = ('layer_norm_input.weight', 'layer_norm_out.weight', 'encoder_norm.weight', 'norm.a', 'ln_1.weight',
         'ln_2.weight', 'ln_final.weight')
_LN_B = ('layer_norm_input.bias', 'layer_norm_out.bias', 'encoder_norm.bias', 'norm.b', 'ln_1.bias', 'ln_2.bias',
         'ln_final.bias')
_RELU_IN = ('scale.seq.0.weight', 'scale.seq.2.weight', 'scale.seq.4.weight', 'rn.rn.0.weight', 'rn.rn.3.weight',
            'rn_text.0.weight', 'feed_forward.w_1.weight')


def init_random_(model, seed):
    rng = np.random.default_rng(seed)
    sd = model.state_dict()
    new = {}
    for name, t in sd.items():
        shape = tuple(t.shape)
        z = rng.standard_normal(shape)
        if name.endswith(_LN_W):
            v = 1.0 + 0.2 * z
        elif name.endswith(_LN_B):
            v = 0.1 * z
        elif name.endswith(('pos_embedding', '.cls', 'positional_embedding', 'token_embedding.weight')):
            v = 0.5 * z
        elif name.endswith(('.proj', 'text_projection')):          # [in, out], used as x @ P
            v = z / math.sqrt(shape[0])
        elif name.endswith('in_proj_weight') or name.endswith('attention.to_qkv.weight'):
            v = z / math.sqrt(shape[1])
            v[:2 * (shape[0] // 3)] *= 1.5                          # q and k rows: attention not uniform
        elif name.endswith(('self_attn.linears.0.weight', 'self_attn.linears.1.weight')):
            v = 1.5 * z / math.sqrt(shape[1])
        elif name.endswith('bias'):
            v = 0.1 * z
        elif name.endswith('weight'):
            fan_in = int(np.prod(shape[1:]))
            v = (math.sqrt(2) if name.endswith(_RELU_IN) else 1.0) * z / math.sqrt(fan_in)
        else:
            raise KeyError(name)
        new[name] = torch.from_numpy(np.asarray(v, dtype=np.float64)).to(t.dtype)
    model.load_state_dict(new)
    return model


# ----------------------------------------------------------------------------------------------------------------
# State dict helpers
# ----------------------------------------------------------------------------------------------------------------
def expected_shapes(cfg: CaanConfig):
    """docs/caan.md's tensor list, derived independently of the modules: {name: shape} in state_dict order."""
    ic, tc, a, E = cfg.image, cfg.text, cfg.align, cfg.embed
    d = ic.width
    out = {}
    for m in ('sketch', 'photo'):
        out[f'{m}.pos_embedding'] = (1, ic.tokens, d)
        out[f'{m}.cls'] = (1, 1, d)
        out[f'{m}.proj'] = (d, E)
        out[f'{m}.embedding.weight'] = (d, 3, 16, 16)
        out[f'{m}.embedding.bias'] = (d,)
        if ic.stem:
            c = (3,) + tuple(ic.stem)
            for i, k in enumerate((7, 3, 3)):
                out[f'{m}.scale.seq.{2 * i}.weight'] = (c[i + 1], c[i], k, k)
            out[f'{m}.scale.seq.6.weight'] = (d, c[3], 3, 3)
        out[f'{m}.transformer.encoder_norm.weight'] = (d,)
        out[f'{m}.transformer.encoder_norm.bias'] = (d,)
        for L in range(ic.depth):
            p = f'{m}.transformer.layers.{L}.0.'
            for n, s in (('layer_norm_input.weight', (d,)), ('layer_norm_input.bias', (d,)),
                         ('layer_norm_out.weight', (d,)), ('layer_norm_out.bias', (d,)),
                         ('attention.to_qkv.weight', (3 * d, d)), ('attention.to_qkv.bias', (3 * d,)),
                         ('attention.to_out.0.weight', (d, d)), ('attention.to_out.0.bias', (d,)),
                         ('mlp.net.0.weight', (ic.mlp, d)), ('mlp.net.0.bias', (ic.mlp,)),
                         ('mlp.net.3.weight', (d, ic.mlp)), ('mlp.net.3.bias', (d,))):
                out[p + n] = s
    w = tc.width
    out['text.positional_embedding'] = (tc.context, w)
    out['text.text_projection'] = (w, E)
    out['text.token_embedding.weight'] = (tc.vocab, w)
    for L in range(tc.depth):
        p = f'text.transformer.resblocks.{L}.'
        for n, s in (('attn.in_proj_weight', (3 * w, w)), ('attn.in_proj_bias', (3 * w,)),
                     ('attn.out_proj.weight', (w, w)), ('attn.out_proj.bias', (w,)),
                     ('ln_1.weight', (w,)), ('ln_1.bias', (w,)),
                     ('mlp.c_fc.weight', (tc.mlp, w)), ('mlp.c_fc.bias', (tc.mlp,)),
                     ('mlp.c_proj.weight', (w, tc.mlp)), ('mlp.c_proj.bias', (w,)),
                     ('ln_2.weight', (w,)), ('ln_2.bias', (w,))):
            out[p + n] = s
    out['text.ln_final.weight'] = (w,)
    out['text.ln_final.bias'] = (w,)
    for name in ('sk_im', 'im_sk', 'sk_txt', 'txt_sk', 'im_txt', 'txt_im'):
        p = f'align.{name}.'
        for i in range(4):
            out[p + f'self_attn.linears.{i}.weight'] = (E, E)
            out[p + f'self_attn.linears.{i}.bias'] = (E,)
        out[p + 'feed_forward.w_1.weight'] = (a.ff, E)
        out[p + 'feed_forward.w_1.bias'] = (a.ff,)
        out[p + 'feed_forward.w_2.weight'] = (E, a.ff)
        out[p + 'feed_forward.w_2.bias'] = (E,)
        for i in range(2):
            out[p + f'sublayer.{i}.norm.a'] = (E,)
            out[p + f'sublayer.{i}.norm.b'] = (E,)
    A, C = cfg.anchors, a.anchor_dim
    h0, h1 = a.rn_hidden
    out.update({'align.anchor.weight': (C, E, 2, 2), 'align.anchor.bias': (C,),
                'align.text_anchor.weight': (C, E), 'align.text_anchor.bias': (C,),
                'align.rn.rn.0.weight': (h0, A * A), 'align.rn.rn.0.bias': (h0,),
                'align.rn.rn.3.weight': (h1, h0), 'align.rn.rn.3.bias': (h1,),
                'align.rn.rn.6.weight': (1, h1), 'align.rn.rn.6.bias': (1,),
                'align.rn_text.0.weight': (a.rn_text_hidden, A), 'align.rn_text.0.bias': (a.rn_text_hidden,),
                'align.rn_text.3.weight': (1, a.rn_text_hidden), 'align.rn_text.3.bias': (1,)})
    return out


def check_state_dict(model):
    sd = model.state_dict()
    exp = expected_shapes(model.cfg)
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert set(got) == set(exp), f'keys differ:\n missing {set(exp) - set(got)}\n extra {set(got) - set(exp)}'
    bad = {k: (got[k], exp[k]) for k in exp if got[k] != exp[k]}
    assert not bad, bad
    return len(got), sum(v.numel() for v in sd.values())


def metadata(cfg: CaanConfig):
    import json
    return {'format': 'pt', 'sketchgpu.model': 'caan', 'sketchgpu.config': json.dumps(cfg.to_json())}


# ----------------------------------------------------------------------------------------------------------------
# The compact token table (src/models/caan/weights.ts expandTokenTable reads the same)
# ----------------------------------------------------------------------------------------------------------------
TOKEN_TABLE, TOKEN_ROWS, TOKEN_IDS = 'text.token_embedding.weight', 'text.token_embedding.rows', 'text.token_embedding.ids'


def prune_token_table(tensors, keep_ids):
    """{name: array} with the whole [vocab, width] token table -> the same with only the rows of `keep_ids`
    (`text.token_embedding.rows` [R, width], `text.token_embedding.ids` [R] int32 ascending). The rows left out read
    as zeros when the file is loaded (expand_token_table; the engine does the same)."""
    ids = np.unique(np.asarray(sorted(keep_ids), dtype=np.int64))
    table = np.asarray(tensors[TOKEN_TABLE])
    assert ids.size and ids[0] >= 0 and ids[-1] < table.shape[0], (ids[:3], ids[-3:], table.shape)
    out = {k: v for k, v in tensors.items() if k != TOKEN_TABLE}
    out[TOKEN_ROWS] = np.ascontiguousarray(table[ids])
    out[TOKEN_IDS] = ids.astype(np.int32)
    return out


def expand_token_table(tensors, vocab):
    """The inverse for loading: a compact table becomes the whole [vocab, width] one, zeros where no row is stored
    (a file with the whole table is returned as it is)."""
    if TOKEN_ROWS not in tensors and TOKEN_IDS not in tensors:
        return tensors
    assert TOKEN_ROWS in tensors and TOKEN_IDS in tensors and TOKEN_TABLE not in tensors, 'rows and ids, no table'
    rows, ids = np.asarray(tensors[TOKEN_ROWS]), np.asarray(tensors[TOKEN_IDS]).astype(np.int64)
    assert ids.ndim == 1 and rows.shape[0] == ids.size and np.all(np.diff(ids) > 0) and ids.min() >= 0 \
        and ids.max() < vocab, 'ids: ascending token ids, one per row'
    table = np.zeros((vocab, rows.shape[1]), dtype=rows.dtype)
    table[ids] = rows
    out = {k: v for k, v in tensors.items() if k not in (TOKEN_ROWS, TOKEN_IDS)}
    out[TOKEN_TABLE] = table
    return out
