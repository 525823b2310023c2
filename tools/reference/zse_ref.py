"""PyTorch reference implementation of ZSE-SBIR (CVPR 2023), written from ../shared/docs/zse-sbir.md.

Module names and nesting mirror the official code (buptLinfy/ZSE-SBIR model/{model,sa,ca,rn}.py), so
`Model(cfg).state_dict()` has exactly the official keys (§4), including the dead `ca.encoder.layers.0.*` clone.
Every quirk of §11 is kept: see the comments tagged [Qn].

Run with /usr/bin/python3 (torch 1.13, CPU). Works in float32 and float64 (`model.double()`).

    cfg = ZseConfig.full()            # ViT-B/16 at 224 px, 12/8 heads
    model = Model(cfg).eval()
    out = model.forward_all(sk, im)    # dict of every intermediate (see forward_all)
"""
import copy
import math
from dataclasses import dataclass, asdict, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class ZseConfig:
    dim: int = 768                       # token width D
    depth: int = 12                      # SA blocks
    sa_heads: int = 12
    mlp_dim: int = 3072
    grid: int = 14                       # patch grid G: image 16G px, tokens 1 + G^2
    stem: tuple = (64, 128, 256)         # conv-stem widths before the last conv (-> dim)
    ca_heads: int = 8
    ca_ff: int = 1024
    anchor_dim: int = 512                # anchor conv output channels C
    rn_hidden: tuple = (343, 49)         # RN MLP widths (then 1)
    name: str = 'full'
    # sketchgpu's variant (not in the paper): an ImageNet-trained CNN front instead of the patch conv + conv stem.
    # front = 'inception_v3/mixed7': the input [-1, 1] at `input_size` px becomes [0, 1] bilinear-resized
    # (align_corners) to `front_input` px, InceptionV3 to that block (InceptionFront, batch norms folded), then a
    # 1x1 conv `proj` (with bias) to `dim` makes the grid x grid tokens. front_div divides its channel counts (tests).
    front: str = ''
    front_input: int = 299
    front_div: int = 1
    input_size: int = 0

    @property
    def image_size(self):
        if self.front:
            return self.input_size
        return 16 * self.grid

    @property
    def tokens(self):
        return 1 + self.grid * self.grid

    @property
    def anchor_grid(self):
        return self.grid // 2

    @property
    def anchors(self):
        return self.anchor_grid ** 2

    def to_json(self):
        d = asdict(self)
        d['stem'] = list(self.stem)
        d['rn_hidden'] = list(self.rn_hidden)
        d.update(image_size=self.image_size, tokens=self.tokens, anchor_grid=self.anchor_grid,
                 anchors=self.anchors, rn_input=self.anchors ** 2)
        return d

    @staticmethod
    def full():
        return ZseConfig()

    @staticmethod
    def tiny224():
        return ZseConfig(dim=32, depth=2, sa_heads=4, mlp_dim=64, grid=14, stem=(8, 16, 24), ca_heads=4, ca_ff=48,
                         anchor_dim=16, rn_hidden=(24, 12), name='tiny224')

    @staticmethod
    def tiny64():
        return ZseConfig(dim=24, depth=1, sa_heads=3, mlp_dim=40, grid=4, stem=(4, 8, 12), ca_heads=2, ca_ff=20,
                         anchor_dim=8, rn_hidden=(8, 4), name='tiny64')


# ----------------------------------------------------------------------------------------------------------------
# SA: ViT backbone with the learnable tokenizer (official model/sa.py, Scale_Embedding from model/rn.py)
# ----------------------------------------------------------------------------------------------------------------
class MultiHeadDotProductAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim / heads) ** -0.5
        self.to_qkv = nn.Linear(dim, dim * 3)
        self.to_out = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(0.0))

    def forward(self, x):
        b, n, c = x.shape
        h = self.heads
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)                    # [Q6] packing [q | k | v]
        q, k, v = (t.reshape(b, n, h, c // h).transpose(1, 2) for t in (q, k, v))   # 'b n (h d) -> b h n d'
        dots = torch.einsum('bhid,bhjd->bhij', q, k) * self.scale   # [Q5] scale after the dot product
        attn = dots.softmax(dim=-1)
        out = torch.einsum('bhij,bhjd->bhid', attn, v)
        out = out.transpose(1, 2).reshape(b, n, c)                  # 'b h n d -> b n (h d)'
        return self.to_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim, hidden_dim, dropout=0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(),    # [Q4] exact erf GELU
                                 nn.Dropout(dropout), nn.Linear(hidden_dim, dim), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class Encoder1DBlock(nn.Module):
    def __init__(self, dim, heads, mlp_dim):
        super().__init__()
        self.layer_norm_input = nn.LayerNorm(dim)                    # [Q3] eps 1e-5, biased variance
        self.layer_norm_out = nn.LayerNorm(dim)
        self.attention = MultiHeadDotProductAttention(dim, heads=heads)
        self.mlp = FeedForward(dim, mlp_dim, 0.1)
        self.drop_out_attention = nn.Dropout(0.1)

    def forward(self, inputs):                                       # pre-LN block; keep_rate = 1 (EViT off)
        x = self.attention(self.layer_norm_input(inputs))
        x = self.drop_out_attention(x) + inputs
        return x + self.mlp(self.layer_norm_out(x))


class SAEncoder(nn.Module):                                          # official name: sa.Encoder
    def __init__(self, dim, depth, heads, mlp_dim):
        super().__init__()
        self.encoder_norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList([nn.ModuleList([Encoder1DBlock(dim, heads, mlp_dim)]) for _ in range(depth)])

    def forward(self, x, collect=None):
        for i, layer in enumerate(self.layers):
            x = layer[0](x)
            if collect is not None:
                collect[f'sa.layer{i}'] = x
        return self.encoder_norm(x)


class ScaleEmbedding(nn.Module):                                     # official: rn.Scale_Embedding
    def __init__(self, dim, stem):
        super().__init__()
        c1, c2, c3 = stem
        self.seq = nn.Sequential(                                    # [Q7] bias-free, ReLU between, none at the end
            nn.Conv2d(3, c1, 7, 2, 3, bias=False), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, 2, 1, bias=False), nn.ReLU(),
            nn.Conv2d(c2, c3, 3, 2, 1, bias=False), nn.ReLU(),
            nn.Conv2d(c3, dim, 3, 2, 1, bias=False))

    def forward(self, x):
        return self.seq(x)


FRONT_CONVS = {'mixed0': 12, 'mixed1': 19, 'mixed2': 26, 'mixed3': 30, 'mixed4': 40, 'mixed5': 50, 'mixed6': 60, 'mixed7': 70}
FRONT_CHANNELS = {'mixed0': 256, 'mixed1': 288, 'mixed2': 288, **{f'mixed{i}': 768 for i in range(3, 8)}}


class InceptionFront(nn.Module):
    """InceptionV3 (Keras applications' layout) to a `mixed` block, each conv2d_bn folded into one conv with bias
    + ReLU; modules named conv2d_<k> as Keras numbers them (src/models/inception.ts builds the same network)."""

    def __init__(self, end='mixed7', div=1):
        super().__init__()
        self.end, self.convs = int(end.replace('mixed', '')), nn.ModuleDict()
        self.k, self.div = 0, div
        self._build = True
        self.forward(None)                                           # the first pass only creates the modules
        self._build = False

    def _cbr(self, x, ci, co, kh, kw, stride=1, valid=False):
        self.k += 1
        name = f'conv2d_{self.k}'
        pad = (0, 0) if valid else ((kh - 1) // 2, (kw - 1) // 2)
        if self._build:
            self.convs[name] = nn.Conv2d(ci, co // self.div, (kh, kw), stride, pad)
            return None, co // self.div
        return F.relu(self.convs[name](x)), co // self.div

    def forward(self, x):
        self.k = 0
        cbr, d = self._cbr, self.div
        pool = (lambda t, m, s: None) if self._build else (
            lambda t, m, s: F.max_pool2d(t, 3, s) if m == 'max' else F.avg_pool2d(t, 3, s, 1, count_include_pad=False))
        cat = (lambda ts: None) if self._build else (lambda ts: torch.cat(ts, 1))
        x, c = cbr(x, 3, 32, 3, 3, 2, True)
        x, c = cbr(x, c, 32, 3, 3, valid=True)
        x, c = cbr(x, c, 64, 3, 3)
        x = pool(x, 'max', 2)
        x, c = cbr(x, c, 80, 1, 1, valid=True)
        x, c = cbr(x, c, 192, 3, 3, valid=True)
        x = pool(x, 'max', 2)
        for i in range(min(self.end, 2) + 1):
            pc = 32 if i == 0 else 64
            b1, _ = cbr(x, c, 64, 1, 1)
            t, c5 = cbr(x, c, 48, 1, 1)
            b5, _ = cbr(t, c5, 64, 5, 5)
            t, c3 = cbr(x, c, 64, 1, 1)
            t, c3 = cbr(t, c3, 96, 3, 3)
            b3, _ = cbr(t, c3, 96, 3, 3)
            bp, _ = cbr(pool(x, 'avg', 1), c, pc, 1, 1)
            x, c = cat([b1, b5, b3, bp]), (64 + 64 + 96 + pc) // d
        if self.end >= 3:
            b3, _ = cbr(x, c, 384, 3, 3, 2, True)
            t, cd = cbr(x, c, 64, 1, 1)
            t, cd = cbr(t, cd, 96, 3, 3)
            bd, _ = cbr(t, cd, 96, 3, 3, 2, True)
            x, c = cat([b3, bd, pool(x, 'max', 2)]), 768 // d
        for i in range(4, self.end + 1):
            c7 = (128, 160, 160, 192)[i - 4]
            b1, _ = cbr(x, c, 192, 1, 1)
            t, ct = cbr(x, c, c7, 1, 1)
            t, ct = cbr(t, ct, c7, 1, 7)
            b7, _ = cbr(t, ct, 192, 7, 1)
            t, ct = cbr(x, c, c7, 1, 1)
            t, ct = cbr(t, ct, c7, 7, 1)
            t, ct = cbr(t, ct, c7, 1, 7)
            t, ct = cbr(t, ct, c7, 7, 1)
            bd, _ = cbr(t, ct, 192, 1, 7)
            bp, _ = cbr(pool(x, 'avg', 1), c, 192, 1, 1)
            x, c = cat([b1, b7, bd, bp]), 768 // d
        return x


class ViTPatch(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg.dim
        self.cfg = cfg
        if cfg.front:
            kind, end = cfg.front.split('/')
            assert kind == 'inception_v3', cfg.front
            self.front = InceptionFront(end, cfg.front_div)
            self.proj = nn.Conv2d(FRONT_CHANNELS[end] // cfg.front_div, d, 1)
        else:
            self.embedding = nn.Conv2d(3, d, 16, 16)                 # with bias
            self.scale = ScaleEmbedding(d, cfg.stem)
        self.pos_embedding = nn.Parameter(torch.zeros(1, cfg.tokens, d))
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.dropout = nn.Dropout(0.1)
        self.transformer = SAEncoder(d, cfg.depth, cfg.sa_heads, cfg.mlp_dim)

    def forward(self, img, collect=None):
        if self.cfg.front:
            return self.forward_front(self.front_map(img), collect)
        x1 = self.embedding(img)
        x2 = self.scale(img)
        x = (x1 + x2) / 2                                            # [Q7] plain average
        b, c = x.shape[:2]
        x = x.flatten(2).transpose(1, 2)                             # [Q8] 'b c h w -> b (h w) c', row-major
        n = x.shape[1]
        x = torch.cat((self.cls.expand(b, -1, -1), x), dim=1)        # cls at index 0
        x = x + self.pos_embedding[:, :n + 1]
        if collect is not None:
            collect['patch'] = x1.flatten(2).transpose(1, 2)
            collect['stem'] = x2.flatten(2).transpose(1, 2)
            collect['tokens'] = x
        x = self.dropout(x)
        return self.transformer(x, collect)

    def front_map(self, img):
        """The front's map [B, C, g, g] of images [B, 3, S, S] in [-1, 1] (the variant's fixed part)."""
        s = self.cfg.front_input
        x = F.interpolate(img, size=(s, s), mode='bilinear', align_corners=True) * 0.5 + 0.5
        return self.front(x)

    def forward_front(self, fmap, collect=None):
        """The tokens and SA blocks from the front's map (training feeds cached maps here)."""
        x = self.proj(fmap).flatten(2).transpose(1, 2)
        b, n = x.shape[:2]
        if collect is not None:
            collect['patch'] = x
            collect['stem'] = x
        x = torch.cat((self.cls.expand(b, -1, -1), x), dim=1) + self.pos_embedding[:, :n + 1]
        if collect is not None:
            collect['tokens'] = x
        x = self.dropout(x)
        return self.transformer(x, collect)


class SelfAttention(nn.Module):                                      # official: sa.Self_Attention
    def __init__(self, cfg):
        super().__init__()
        self.model = ViTPatch(cfg)

    def forward(self, x, collect=None):
        return self.model(x, collect)


# ----------------------------------------------------------------------------------------------------------------
# CA (official model/ca.py, Annotated-Transformer style)
# ----------------------------------------------------------------------------------------------------------------
def clones(module, n):
    return nn.ModuleList([copy.deepcopy(module) for _ in range(n)])


class LayerNorm(nn.Module):
    """[Q2] a * (x - mean) / (std_unbiased + eps) + b, eps 1e-6 added to the std."""

    def __init__(self, features, eps=1e-6):
        super().__init__()
        self.a = nn.Parameter(torch.ones(features))
        self.b = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)                                # unbiased (N-1)
        return self.a * (x - mean) / (std + self.eps) + self.b


class AddAndNorm(nn.Module):
    def __init__(self, size, dropout):
        super().__init__()
        self.norm = LayerNorm(size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, y):
        return self.norm(x + self.dropout(y))


def attention(query, key, value, dropout=None):
    d_k = query.size(-1)
    scores = torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(d_k)   # [Q5] / sqrt(d_k)
    p_attn = F.softmax(scores, dim=-1)
    if dropout is not None:
        p_attn = dropout(p_attn)
    return torch.matmul(p_attn, value), p_attn


class MultiHeadedAttention(nn.Module):
    def __init__(self, h, d_model, dropout=0.1):
        super().__init__()
        assert d_model % h == 0
        self.d_k = d_model // h
        self.h = h
        self.linears = clones(nn.Linear(d_model, d_model), 4)        # 0 = Q, 1 = K, 2 = V, 3 = out
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, query, key, value):
        nb = query.size(0)
        query, key, value = [lin(x).view(nb, -1, self.h, self.d_k).transpose(1, 2)
                             for lin, x in zip(self.linears, (query, key, value))]
        x, _ = attention(query, key, value, dropout=self.dropout)
        x = x.transpose(1, 2).contiguous().view(nb, -1, self.h * self.d_k)
        return self.linears[-1](x)


class PositionwiseFeedForward(nn.Module):
    def __init__(self, d_model, d_ff, dropout=0.1):
        super().__init__()
        self.w_1 = nn.Linear(d_model, d_ff)
        self.w_2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.w_2(self.dropout(F.relu(self.w_1(x))))           # ReLU FFN


class EncoderLayer(nn.Module):
    def __init__(self, size, self_attn, feed_forward, dropout):
        super().__init__()
        self.self_attn = self_attn
        self.feed_forward = feed_forward
        self.sublayer = clones(AddAndNorm(size, dropout), 2)
        self.size = size

    def forward(self, q, k, v):
        x = self.sublayer[0](v, self.self_attn(q, k, v))             # [Q1] post-LN, residual on v
        return self.sublayer[1](x, self.feed_forward(x))


class CAEncoder(nn.Module):                                          # official: ca.Encoder
    def __init__(self, layer, n):
        super().__init__()
        self.layers = clones(layer, n)                               # [Q16] dead clone, never used
        self.layer1 = clones(layer, n)
        self.layer2 = clones(layer, n)

    def forward(self, x_im, x_sk):
        for layer1, layer2 in zip(self.layer1, self.layer2):
            x_sk1 = layer1(x_sk, x_im, x_sk)                         # [Q1] q=sk, k=im, v=sk
            x_im = layer2(x_im, x_sk, x_im)                          # q=im, k=sk (ORIGINAL), v=im
            x_sk = x_sk1
        return x_im, x_sk


class CrossAttention(nn.Module):                                     # official: ca.Cross_Attention
    def __init__(self, cfg, n=1, dropout=0.1):
        super().__init__()
        mha = MultiHeadedAttention(cfg.ca_heads, cfg.dim)
        ffn = PositionwiseFeedForward(cfg.dim, cfg.ca_ff, dropout)
        self.encoder = CAEncoder(EncoderLayer(cfg.dim, mha, ffn, dropout), n)

    def forward(self, x):
        length = x.size(0)
        x_sk, x_im = x[:length // 2], x[length // 2:]
        x_im, x_sk = self.encoder(x_im, x_sk)
        return torch.cat((x_sk, x_im), dim=0)


# ----------------------------------------------------------------------------------------------------------------
# RN (official model/rn.py) and the model (official model/model.py)
# ----------------------------------------------------------------------------------------------------------------
class RelationNetwork(nn.Module):
    def __init__(self, anchors, hidden, dropout=0.1):
        super().__init__()
        h1, h2 = hidden
        self.rn = nn.Sequential(nn.Linear(anchors * anchors, h1), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(h1, h2), nn.ReLU(), nn.Dropout(dropout), nn.Linear(h2, 1))

    def forward(self, x):
        return torch.sigmoid(self.rn(x))


def cos_similar(p, q):
    """[Q11] S = p q^T, divided by the p row norms, then by the q norms; NaN -> 0; no eps."""
    sim = p.matmul(q.transpose(-2, -1))
    a = torch.norm(p, p=2, dim=-1)
    b = torch.norm(q, p=2, dim=-1)
    sim = sim / a.unsqueeze(-1)
    sim = sim / b.unsqueeze(-2)
    return torch.where(torch.isnan(sim), torch.zeros_like(sim), sim)


class Model(nn.Module):
    def __init__(self, cfg=None):
        super().__init__()
        self.cfg = cfg or ZseConfig.full()
        self.sa = SelfAttention(self.cfg)
        self.ca = CrossAttention(self.cfg)
        self.rn = RelationNetwork(self.cfg.anchors, self.cfg.rn_hidden)
        self.conv2d = nn.Conv2d(self.cfg.dim, self.cfg.anchor_dim, 2, 2)

    # --- the official test-stage forward (model.py), for B pairs: sk [B,T,D], im [B,T,D] SA outputs ---------------
    def anchors_of(self, ca_fea):
        """[Q9][Q10] drop cls, RAW view [N, G*G, D] -> [N, D, G, G], conv k2 s2, view [N, C, A] -> transpose."""
        g, c = self.cfg.grid, self.cfg.anchor_dim
        token_fea = ca_fea[:, 1:]
        n = token_fea.size(0)
        token_fea = token_fea.view(n, self.cfg.dim, g, g)           # NOT a permute
        down = self.conv2d(token_fea)
        return down.view(n, c, self.cfg.anchors).transpose(1, 2)

    def forward(self, sk, im, stage='test', only_sa=False):
        if only_sa:
            return self.sa(sk)
        ca_fea = self.ca(torch.cat((sk, im), dim=0))
        down = self.anchors_of(ca_fea)
        b = down.size(0) // 2
        cos = cos_similar(down[:b], down[b:]).view(b, -1)            # [Q10] sketch-anchor-major
        return ca_fea[:, 0], self.rn(cos)

    # --- every intermediate, for fixtures ------------------------------------------------------------------------
    def sa_all(self, x, prefix):
        """SA of one modality; returns {prefix.patch, .stem, .tokens, .sa.layer{i}, .sa, .emb}."""
        col = {}
        sa = self.sa(x, col)
        out = {f'{prefix}.input': x}
        out.update({f'{prefix}.{k}': v for k, v in col.items()})
        out[f'{prefix}.sa'] = sa
        out[f'{prefix}.emb'] = F.normalize(sa[:, 0], p=2, dim=1, eps=1e-12)   # [Q13] SA cls, not CA cls
        return out

    def pair_all(self, sa_sk, sa_im):
        """CA + anchors + cosine + RN for every sketch x photo pair, p = s*Bp + j (valid.py's order)."""
        bs, bp = sa_sk.size(0), sa_im.size(0)
        sk_temp = sa_sk.unsqueeze(1).repeat(1, bp, 1, 1).flatten(0, 1)
        im_temp = sa_im.unsqueeze(0).repeat(bs, 1, 1, 1).flatten(0, 1)
        p = bs * bp
        ca_fea = self.ca(torch.cat((sk_temp, im_temp), dim=0))
        down = self.anchors_of(ca_fea)
        cos = cos_similar(down[:p], down[p:])
        flat = cos.view(p, -1)
        h = flat
        for i, layer in enumerate(self.rn.rn):
            h = layer(h)
            if i == 4:
                hidden = h                                          # input of the last Linear (for calibration)
        logit = h
        score = torch.sigmoid(logit)
        # ret mode, exactly as valid.py '-r sa'
        dist = F.pairwise_distance(F.normalize(sk_temp[:, 0]), F.normalize(im_temp[:, 0]), 2)
        return {
            'pair.ca.sketch': ca_fea[:p], 'pair.ca.photo': ca_fea[p:],
            'pair.anchors.sketch': down[:p], 'pair.anchors.photo': down[p:],
            'pair.cos': cos, 'rn.logit': logit.view(bs, bp), 'rn.hidden': hidden,
            'rn.score': score.view(bs, bp), 'ret.distance': dist.view(bs, bp),
        }

    @torch.no_grad()
    def forward_all(self, sk, im):
        out = {}
        out.update(self.sa_all(sk, 'sketch'))
        out.update(self.sa_all(im, 'photo'))
        out['ret.cosine'] = out['sketch.emb'] @ out['photo.emb'].t()
        out.update(self.pair_all(out['sketch.sa'], out['photo.sa']))
        return out


# ----------------------------------------------------------------------------------------------------------------
# Deterministic random init ("every part matters"), shared by the fixture and full-size generators
# ----------------------------------------------------------------------------------------------------------------
LN_WEIGHT_SUFFIXES = ('layer_norm_input.weight', 'layer_norm_out.weight', 'encoder_norm.weight', 'norm.a')
LN_BIAS_SUFFIXES = ('layer_norm_input.bias', 'layer_norm_out.bias', 'encoder_norm.bias', 'norm.b')
# gain for weight std = gain / sqrt(fan_in): sqrt(2) before a ReLU; > 1 on Q/K so attention is not uniform
_GAIN = {'sa.model.scale.seq.0.weight': math.sqrt(2), 'sa.model.scale.seq.2.weight': math.sqrt(2),
         'sa.model.scale.seq.4.weight': math.sqrt(2), 'rn.rn.0.weight': math.sqrt(2), 'rn.rn.3.weight': math.sqrt(2)}


def init_random_(model, seed):
    """Fill every state_dict tensor from numpy's PCG64(seed), in state_dict order (platform-independent)."""
    rng = np.random.default_rng(seed)
    cfg = model.cfg
    sd = model.state_dict()
    new = {}
    for name, t in sd.items():
        shape = tuple(t.shape)
        z = rng.standard_normal(shape)
        if name.endswith(LN_WEIGHT_SUFFIXES):
            v = 1.0 + 0.2 * z
        elif name.endswith(LN_BIAS_SUFFIXES):
            v = 0.1 * z
        elif name.endswith('pos_embedding') or name.endswith('.cls'):
            v = 0.5 * z
        elif name.endswith('.bias'):
            v = (0.01 if '.front.' in name else 0.1) * z             # front: 70 biased layers would drown the image
        elif name.endswith('.weight'):
            fan_in = int(np.prod(shape[1:]))
            gain = _GAIN.get(name, math.sqrt(2) if '.front.' in name else 1.0)   # front convs: before a ReLU
            if name.endswith('attention.to_qkv.weight'):
                v = z / math.sqrt(fan_in)
                v[:2 * cfg.dim] *= 1.5                             # q and k rows
            elif name.endswith(('self_attn.linears.0.weight', 'self_attn.linears.1.weight')):
                v = 1.5 * z / math.sqrt(fan_in)
            else:
                v = gain * z / math.sqrt(fan_in)
        else:
            raise KeyError(name)
        new[name] = torch.from_numpy(np.asarray(v, dtype=np.float64)).to(t.dtype)
    model.load_state_dict(new)
    return model


@torch.no_grad()
def calibrate_rn_(model, cos_flat, target=1.0):
    """Data-dependent init of the RN MLP on the given pairs (cos_flat: [P, A*A] RN inputs), so that every hidden
    unit is active for about half of the pairs and the output spreads:
      rn.rn.0, rn.rn.3: scale the layer so the pre-activations' spread across pairs is ~1, then set each bias to minus
                        the per-unit median over pairs;
      rn.rn.6:          centre the logits on 0 with max |logit| = target (sigmoid in about 0.27..0.73).
    Weights are rounded to float32 (the stored precision) after each step and the next step sees the rounded values,
    whatever the model's working dtype (float32 or float64).
    Returns the scale factors applied."""
    seq = model.rn.rn

    def r32(t, like):
        return t.float().to(like.dtype)
    h = cos_flat.double()
    gains = []
    for idx in (0, 3):
        lin = seq[idx]
        w = lin.weight.detach().double()
        z0 = h @ w.t()
        spread = z0.std(0, unbiased=False).mean().item()
        k = min(max(1.0 / max(spread, 1e-12), 0.25), 100.0)
        lin.weight.copy_(r32(w * k, lin.weight))
        w = lin.weight.detach().double()
        z0 = h @ w.t()
        lin.bias.copy_(r32(-torch.quantile(z0, 0.5, dim=0), lin.bias))
        h = torch.relu(z0 + lin.bias.detach().double())
        gains.append(k)
    lin = seq[6]
    w = lin.weight.detach().double()
    b = lin.bias.detach().double()
    z = h @ w.t() + b
    m = z.mean()
    spread = (z - m).abs().max().item()
    k = target / max(spread, 1e-12)
    lin.weight.copy_(r32(w * k, lin.weight))
    lin.bias.copy_(r32((b - m) * k, lin.bias))
    gains.append(k)
    return gains


# ----------------------------------------------------------------------------------------------------------------
# State-dict helpers
# ----------------------------------------------------------------------------------------------------------------
DEAD_PREFIX = 'ca.encoder.layers.0.'


def expected_keys(cfg):
    """§4's key list (state_dict order), derived independently of the modules."""
    keys = ['sa.model.pos_embedding', 'sa.model.cls']
    if cfg.front:
        n = FRONT_CONVS[cfg.front.split('/')[1]]
        keys += [f'sa.model.front.convs.conv2d_{k}.{w}' for k in range(1, n + 1) for w in ('weight', 'bias')]
        keys += ['sa.model.proj.weight', 'sa.model.proj.bias']
    else:
        keys += ['sa.model.embedding.weight', 'sa.model.embedding.bias']
        keys += [f'sa.model.scale.seq.{i}.weight' for i in (0, 2, 4, 6)]
    keys += ['sa.model.transformer.encoder_norm.weight', 'sa.model.transformer.encoder_norm.bias']
    for L in range(cfg.depth):
        p = f'sa.model.transformer.layers.{L}.0.'
        for m in ('layer_norm_input', 'layer_norm_out', 'attention.to_qkv', 'attention.to_out.0', 'mlp.net.0',
                  'mlp.net.3'):
            keys += [p + m + '.weight', p + m + '.bias']
    for part in ('layers', 'layer1', 'layer2'):
        p = f'ca.encoder.{part}.0.'
        for i in range(4):
            keys += [p + f'self_attn.linears.{i}.weight', p + f'self_attn.linears.{i}.bias']
        keys += [p + 'feed_forward.w_1.weight', p + 'feed_forward.w_1.bias', p + 'feed_forward.w_2.weight',
                 p + 'feed_forward.w_2.bias']
        keys += [p + 'sublayer.0.norm.a', p + 'sublayer.0.norm.b', p + 'sublayer.1.norm.a', p + 'sublayer.1.norm.b']
    keys += ['rn.rn.0.weight', 'rn.rn.0.bias', 'rn.rn.3.weight', 'rn.rn.3.bias', 'rn.rn.6.weight', 'rn.rn.6.bias']
    keys += ['conv2d.weight', 'conv2d.bias']
    return keys


def check_state_dict(model):
    """Asserts the key list (order included) equals expected_keys; returns (n_keys, n_params, n_used_keys)."""
    sd = model.state_dict()
    exp = expected_keys(model.cfg)
    got = list(sd.keys())
    assert got == exp, f'state_dict keys differ from §4:\n missing {set(exp) - set(got)}\n extra {set(got) - set(exp)}'
    n_params = sum(v.numel() for v in sd.values())
    n_used = sum(1 for k in got if not k.startswith(DEAD_PREFIX))
    return len(got), n_params, n_used


def save_official_pth(model, path, extra_config=True):
    """torch.save exactly as the official train.py/save_checkpoint: {'model', 'epoch', 'map_all', 'precision_100'}
    with numpy float64 scalars; fp32 tensors. extra_config adds our {'config': {'sa_heads', 'ca_heads'}}."""
    sd = model.state_dict()
    sd = type(sd)((k, v.detach().float().contiguous().clone()) for k, v in sd.items())
    sd._metadata = model.state_dict()._metadata  # noqa: keep module version metadata like a real state_dict
    ck = {'model': sd, 'epoch': 7, 'map_all': np.float64(0.1), 'precision_100': np.float64(0.2)}
    if extra_config:
        ck['config'] = {'sa_heads': model.cfg.sa_heads, 'ca_heads': model.cfg.ca_heads, **front_meta(model.cfg, '')}
    torch.save(ck, path)


def weights_for_safetensors(model):
    """fp32 numpy arrays of every USED tensor (dead clone dropped) + metadata."""
    sd = model.state_dict()
    tensors = {k: v.detach().float().contiguous().numpy() for k, v in sd.items() if not k.startswith(DEAD_PREFIX)}
    meta = {'sketchgpu.sa_heads': str(model.cfg.sa_heads), 'sketchgpu.ca_heads': str(model.cfg.ca_heads),
            'format': 'pt', **{k: str(v) for k, v in front_meta(model.cfg, 'sketchgpu.').items()}}
    return tensors, meta


def front_meta(cfg, prefix):
    """What a front variant's file must say beside its shapes: the front, its input side, the model's image side."""
    if not cfg.front:
        return {}
    return {prefix + 'front': cfg.front, prefix + 'front_input': cfg.front_input, prefix + 'image_size': cfg.input_size}


# ----------------------------------------------------------------------------------------------------------------
# Image-like deterministic inputs (values are multiples of 2^-8 in [-1, 1]: exact in float16 and float32)
# ----------------------------------------------------------------------------------------------------------------
def _quantize(x):
    return (np.round(np.clip(x, -1.0, 1.0) * 256.0) / 256.0).astype(np.float32)


def make_photos(rng, n, s):
    yy, xx = np.meshgrid(np.arange(s) / s, np.arange(s) / s, indexing='ij')
    out = np.zeros((n, 3, s, s))
    for i in range(n):
        img = np.zeros((3, s, s))
        for c in range(3):                                           # smooth field: a few low-frequency waves
            f = np.zeros((s, s))
            for _ in range(6):
                kx, ky = rng.uniform(-3, 3, 2)
                f += rng.uniform(0.1, 0.4) * np.cos(2 * np.pi * (kx * xx + ky * yy) + rng.uniform(0, 2 * np.pi))
            img[c] = f + rng.uniform(-0.3, 0.3)
        for _ in range(4):                                           # a few soft-edged coloured blobs
            cy, cx = rng.uniform(0.15, 0.85, 2)
            ry, rx = rng.uniform(0.06, 0.3, 2)
            d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
            mask = 1.0 / (1.0 + np.exp(np.minimum((d - 1.0) * 12.0, 50.0)))
            col = rng.uniform(-0.9, 0.9, 3)
            img = img * (1 - mask) + col[:, None, None] * mask
        img += 0.03 * rng.standard_normal((3, s, s))                 # a little sensor noise
        out[i] = img
    return _quantize(out)


def make_sketches(rng, n, s):
    """White background (+1), dark antialiased strokes (towards -1), identical RGB channels."""
    yy, xx = np.meshgrid(np.arange(s) + 0.5, np.arange(s) + 0.5, indexing='ij')
    out = np.zeros((n, 3, s, s))
    for i in range(n):
        ink = np.zeros((s, s))
        for _ in range(int(rng.integers(4, 8))):                     # cubic Bezier strokes
            p = rng.uniform(0.1 * s, 0.9 * s, (4, 2))
            t = np.linspace(0, 1, 4 * s)[:, None]         # dense enough for a continuous line
            pts = ((1 - t) ** 3 * p[0] + 3 * (1 - t) ** 2 * t * p[1] + 3 * (1 - t) * t ** 2 * p[2] + t ** 3 * p[3])
            width = rng.uniform(0.8, 2.5) * s / 224 * 2
            d2 = np.full((s, s), np.inf)
            for py, px in pts:
                d2 = np.minimum(d2, (yy - py) ** 2 + (xx - px) ** 2)
            a = np.clip(width + 0.5 - np.sqrt(d2), 0.0, 1.0) * rng.uniform(0.7, 1.0)
            ink = np.maximum(ink, a)
        out[i] = (1.0 - 2.0 * ink)[None]
    return _quantize(out)
