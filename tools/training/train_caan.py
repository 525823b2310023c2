#!/usr/bin/python3
"""Train a small CAAN (docs/caan.md) from scratch on the seen Sketchy classes (CPU) and write engine weights.

Run with Debian's /usr/bin/python3 (torch 1.13 CPU, numpy, Pillow, OpenCV). With OpenBLAS unpacked in .cache/blas
(weights/README.md: `apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb .cache/blas/root`)
the script re-executes itself with it on LD_LIBRARY_PATH (SKETCHGPU_NO_OPENBLAS=1: not): the float32 alignment
module is 4-6x slower per step with Debian's reference BLAS.

    nice -n 10 /usr/bin/python3 tools/training/train_caan.py --out .cache/train-caan --steps 3000 --max-minutes 58 --final-eval
    /usr/bin/python3 tools/training/train_caan.py --steps 30 --val-every 15 --out .cache/train-caan-probe   # probe

Speed (demo preset, batch 32 = 96 images + 32 texts, --threads 1, OpenBLAS): ~1.0 step/s (~1.0 CPU-s per step:
towers+alignment forward 0.36, backward 0.48, augmentation 0.13, AdamW 0.05), measured on the 2-core machine under
other load; 3,000 steps ~ 50 min. Validation takes 1-15 s (load-dependent), --final-eval ~10 s.

Model: CaanConfig.demo() of tools/reference/caan_ref.py (--preset). Data: as tools/training/train_zse.py: the 104 seen classes of
../shared/data/sketchy/all125-128 (all125 minus the 21 of ../shared/data/splits/test_class_sketchy21.txt), 10 of
them held out for model selection (eval_zse.split_seen, seed 0), the engine's preprocessing at 112 px, train_zse's
augmentation. One batch item = (sketch of class c, photo of c, photo of another class, a text about c).

Losses: caan_ref.loss_terms as it is (global cosine triplets sketch->photo, text->photo, text->sketch, margin 0.3;
BCE on the sketch-photo RN and on the image-text RN), summed with weight 1, plus (a deviation, --contrastive, on by
default; 0 = the paper's losses only) a supervised contrastive term over the batch on the global embeddings:
sketch<->photo and text->photo (positives = the photos of the same class, temperature --temp). The first model
(weights/README.md) trained from scratch with triplet losses alone never left chance level; in-batch negatives give
a far stronger signal at this batch size.

Texts (the Description Generation Module's output, src/models/caan/data/descriptions-sketchy104.json, `phrases` per
class): per item, one phrase (p 0.5) or 2..all of the class's phrases in random order joined with ", ", then with
probability --name-p prefixed by a class-name template ("a photo of a {name}", "a sketch of a {name}", "a drawing of
a {name}" or "a {name}", and p 0.25 the template alone). Without the class name in some texts, a prompt such as "a
photo of a zebra" would mean nothing to the text tower (the descriptions never name the class). Tokenized with
tools/reference/clip_tokenizer_ref.py (CLIP's BPE ids); each batch is cut after its longest EOT (the causal mask makes that
exact). Descriptions of the held-out validation classes are never used for training, only for validation.

Distillation (issue 20; off by default): --teacher .cache/teacher/feat-*.npy (tools/teacher/features.py) with
train_zse.py's --distill-global / --distill-tokens / --distill-rel / --distill-cross, applied to both image towers'
cls and patch tokens through two training-only projections (not in the weights); --init starts from engine weights
of the same preset (the shipped demo file) with a fresh optimiser and schedule. Runs and their results:
weights/caan-sketchy104-demo.md.

Precision: bfloat16 autocast in the three towers (--bf16 1); the alignment module (cross-attention, anchor cosines,
relation networks), losses, weights and optimiser in float32 (--bf16 0: all float32).
Optimiser: AdamW, linear warmup + cosine decay, weight decay on matrices only (not biases, norms, cls, positions,
the token table), gradient-norm clipping. Dropout: none in the towers (--tower-dropout), 0.1 in the alignment
module (ZSE's). Init: ViT-style (trunc-normal 0.02) for the towers' linears, He fan-in for the conv stem, CLIP's
init for the text tower, PyTorch's default for the relation networks.

Validation (every --val-every steps, on the held-out seen classes, float32 eval mode): sketch->photo global-cosine
metrics (eval_zse.calculate: mAP@all, mAP@200, P@100, P@200), text->photo with "a photo of a {class}" prompts
(one query per class), and text->photo with each class's description phrases joined (the validation classes'
descriptions were never trained on). The checkpoint with the best sketch->photo mAP@all is kept (--select).

Outputs in --out: log.jsonl, last.pt (resumable: --resume), best.pt, NAME.safetensors (fp16, every tensor incl.
the text-image alignment ones, which the engine uses for text re-ranking; metadata sketchgpu.model =
"caan", sketchgpu.config), NAME.check.safetensors (4 sketches, 4 photos, 4 token rows and PyTorch's embeddings from
the fp16 weights, for tools/check_caan_engine.ts), summary.json. --final-eval then measures the unseen 21 classes
(../shared/data/sketchy/unseen21-256, read only there): sketch->photo mAP@all/mAP@200/P@100/P@200 and text->photo
with "a photo of a {class}" (no descriptions of unseen classes exist, by design).
"""
import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TOOLS = Path(__file__).resolve().parents[1]
REPO = TOOLS.parent
sys.path[:0] = [str(TOOLS / 'training'), str(TOOLS / 'reference')]
import caan_ref as C  # noqa: E402
import zse_ref as Z  # noqa: E402
import eval_zse as ev  # noqa: E402
from train_zse import augment, lr_at, relational_kl, Teacher, TripletSampler  # noqa: E402
import train_zse as Z_train  # noqa: E402
from clip_tokenizer_ref import ClipTokenizer  # noqa: E402
from safetensors_min import save_file, load_file  # noqa: E402

OPENBLAS = REPO / '.cache' / 'blas' / 'root' / 'usr' / 'lib' / 'x86_64-linux-gnu' / 'openblas-pthread'
DESCRIPTIONS = REPO / 'src' / 'models' / 'caan' / 'data' / 'descriptions-sketchy104.json'
TEMPLATES = ('a photo of a {}', 'a sketch of a {}', 'a drawing of a {}', 'a {}')
VAL_PROMPT = 'a photo of a {}'


def class_name(c):
    """prompts.json's class_name rule: underscores read as spaces (car_(sedan) -> car (sedan))."""
    return c.replace('_', ' ')


# ----------------------------------------------------------------------------------------------------------------
# Texts
# ----------------------------------------------------------------------------------------------------------------
class TextSampler:
    """One text per item from the class's description phrases (see the module doc), seeded (numpy RandomState)."""

    def __init__(self, classes, descriptions, tokenizer, context, seed, name_p):
        missing = [c for c in classes if c not in descriptions['classes']]
        assert not missing, f'no descriptions for {missing}'
        self.names = [class_name(c) for c in classes]
        self.phrases = [list(descriptions['classes'][c]['phrases']) for c in classes]
        self.tok, self.context, self.name_p = tokenizer, context, name_p
        self.rng = np.random.RandomState(seed)

    def text(self, c):
        r, ph = self.rng, self.phrases[c]
        if r.rand() < 0.5:
            body = ph[r.randint(len(ph))]
        else:
            k = r.randint(2, len(ph) + 1)
            body = ', '.join(ph[i] for i in r.permutation(len(ph))[:k])
        if r.rand() < self.name_p:
            head = TEMPLATES[r.randint(len(TEMPLATES))].format(self.names[c])
            return head if r.rand() < 0.25 else f'{head}, {body}'
        return body

    def sample(self, classes):
        texts = [self.text(int(c)) for c in classes]
        return texts, token_ids(self.tok, texts, self.context)


def token_ids(tok, texts, context):
    """int64 [N, L]: CLIP ids (SOT ... EOT, zeros), cut after the longest EOT (exact under the causal mask)."""
    rows = torch.tensor(tok.tokenize(texts, context, truncate=True), dtype=torch.int64)
    longest = int(rows.argmax(1).max()) + 1
    return rows[:, :longest]


# ----------------------------------------------------------------------------------------------------------------
# Init and optimiser
# ----------------------------------------------------------------------------------------------------------------
def init_weights_(model):
    for name, m in model.named_modules():
        if name.startswith(('align.rn.', 'align.rn_text')):
            continue                                                # relation networks: PyTorch's default
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            if '.scale.seq.' in name:
                # He fan-in: the stem's output on the patch conv's scale (train_zse's 'full' stem init)
                nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='linear' if name.endswith('.6') else 'relu')
            else:
                nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, Z.LayerNorm):
            nn.init.ones_(m.a)
            nn.init.zeros_(m.b)
    for tower in (model.sketch, model.photo):
        nn.init.trunc_normal_(tower.pos_embedding, std=0.02)
        nn.init.trunc_normal_(tower.cls, std=0.02)
        nn.init.normal_(tower.proj, std=tower.ic.width ** -0.5)
    t, w = model.text, model.cfg.text.width                         # CLIP's initialize_parameters
    nn.init.normal_(t.token_embedding.weight, std=0.02)
    nn.init.normal_(t.positional_embedding, std=0.01)
    proj_std, attn_std, fc_std = w ** -0.5 * (2 * model.cfg.text.depth) ** -0.5, w ** -0.5, (2 * w) ** -0.5
    for blk in t.transformer.resblocks:
        nn.init.normal_(blk.attn.in_proj_weight, std=attn_std)
        nn.init.zeros_(blk.attn.in_proj_bias)
        nn.init.normal_(blk.attn.out_proj.weight, std=proj_std)
        nn.init.normal_(blk.mlp.c_fc.weight, std=fc_std)
        nn.init.normal_(blk.mlp.c_proj.weight, std=proj_std)
    nn.init.normal_(t.text_projection, std=w ** -0.5)
    return model


def param_groups(model, wd):
    return Z_train.param_groups(model, wd, ('pos_embedding', '.cls', 'positional_embedding', 'token_embedding.weight'))


# ----------------------------------------------------------------------------------------------------------------
# Mixed precision around caan_ref.loss_terms
# ----------------------------------------------------------------------------------------------------------------
class Mixed:
    """Duck-types Caan for caan_ref.loss_terms: the towers run under bf16 autocast, their outputs come back as
    float32, so the alignment module and the losses run in float32. Records the global embeddings it hands out
    (for the contrastive term). With bf16 off the results equal Caan's own encode_* exactly."""

    def __init__(self, model, bf16):
        self.m, self.bf16 = model, bf16
        self.sketch, self.photo, self.text, self.align = model.sketch, model.photo, model.text, model.align
        self.rec, self.toks = [], []

    def _ac(self):
        return torch.autocast('cpu', dtype=torch.bfloat16, enabled=bool(self.bf16))

    def encode_image(self, tower, img):
        with self._ac():
            tok = tower(img)
        tok = tok.float()
        emb = C.normalize(tok[:, 0])
        self.rec.append(emb)
        self.toks.append(tok)
        return tok, emb

    def encode_text(self, ids):
        with self._ac():
            x, eot = self.m.text(ids)
        x = x.float()
        P = self.m.text.text_projection
        feat = x[torch.arange(x.size(0)), eot]
        tok = x @ P
        emb = C.normalize(feat @ P)
        self.rec.append(emb)
        valid = torch.arange(ids.size(1))[None, :] <= eot[:, None]
        return tok, emb, valid


def supcon(q, yq, k, yk, temp):
    """-mean over queries of the mean log-softmax over keys of the same class (queries with none are skipped)."""
    logits = q @ k.t() / temp
    logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (yq[:, None] == yk[None, :]).float()
    n = pos.sum(1)
    ok = n > 0
    return -((logp * pos).sum(1)[ok] / n[ok]).mean()


# ----------------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------------
@torch.no_grad()
def image_embeddings(model, tower, u8, batch=64):
    out = []
    for i in range(0, len(u8), batch):
        tok = tower(ev.to_input(u8[i:i + batch]))
        out.append(C.normalize(tok[:, 0]).float())
    return torch.cat(out)


@torch.no_grad()
def text_embeddings(model, tok, texts, context):
    return model.encode_text(token_ids(tok, texts, context))[1].float()


@torch.no_grad()
def evaluate(model, data, classes, tok, descriptions=None):
    """Global-cosine metrics on a split from eval_zse.load_split (eval mode, float32)."""
    was = model.training
    model.eval()
    t0 = time.time()
    es = image_embeddings(model, model.sketch, data['sketch'])
    ei = image_embeddings(model, model.photo, data['photo'])
    pl = data['photo_label']
    res = {'n_sketch': int(len(es)), 'n_photo': int(len(ei))}
    res['sketch_photo'] = ev.calculate((1.0 - es @ ei.t()).numpy(),
                                       (data['sketch_label'][:, None] == pl[None, :]).astype(np.int64))
    ql = np.arange(len(classes))
    rel = (ql[:, None] == pl[None, :]).astype(np.int64)
    et = text_embeddings(model, tok, [VAL_PROMPT.format(class_name(c)) for c in classes], model.cfg.text.context)
    res['text_photo'] = ev.calculate((1.0 - et @ ei.t()).numpy(), rel)
    if descriptions is not None and all(c in descriptions['classes'] for c in classes):
        texts = [', '.join(descriptions['classes'][c]['phrases']) for c in classes]
        et = text_embeddings(model, tok, texts, model.cfg.text.context)
        res['text_desc_photo'] = ev.calculate((1.0 - et @ ei.t()).numpy(), rel)
    res['seconds'] = round(time.time() - t0, 1)
    model.train(was)
    return res


# ----------------------------------------------------------------------------------------------------------------
# Engine weights and the engine check
# ----------------------------------------------------------------------------------------------------------------
def write_engine_weights(model, path):
    """fp16 safetensors with every tensor (the engine's loader requires all of them; the text-image alignment ones
    serve its text re-rank) and the engine's metadata."""
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    meta = C.metadata(model.cfg)
    tmp = str(path) + '.tmp'
    save_file(sd, tmp, meta)
    os.replace(tmp, path)
    return sum(v.numel() for v in sd.values())


def load_engine_weights(path, cfg):
    m = C.Caan(cfg)
    sd = load_file(str(path))
    sd = C.expand_token_table(sd[0] if isinstance(sd, tuple) else sd, cfg.text.vocab)
    m.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in sd.items()})
    return m.eval()


@torch.no_grad()
def write_engine_check(weights_path, cfg, data, tok, out_path, texts):
    """Inputs and PyTorch's (float32) embeddings from the fp16 weights, for tools/check_caan_engine.ts."""
    m = load_engine_weights(weights_path, cfg)
    idx = np.linspace(0, len(data['sketch']) - 1, 4).astype(int)
    sk, im = ev.to_input(data['sketch'][idx]), ev.to_input(data['photo'][idx])
    ids = torch.tensor(tok.tokenize(texts, cfg.text.context, truncate=True), dtype=torch.int64)
    t = {'sketch.input': sk, 'photo.input': im, 'text.ids': ids.to(torch.int32),
         'sketch.emb': C.normalize(m.sketch(sk)[:, 0]), 'photo.emb': C.normalize(m.photo(im)[:, 0]),
         'text.emb': m.encode_text(ids)[1]}
    save_file({k: v.contiguous() for k, v in t.items()}, str(out_path), {'texts': json.dumps(texts)})


# ----------------------------------------------------------------------------------------------------------------
def use_openblas():
    """Re-executes with OpenBLAS first on LD_LIBRARY_PATH when it is unpacked in .cache/blas (weights/README.md says
    how): Debian's reference BLAS makes the float32 alignment module 4-6x slower per step."""
    if os.environ.get('SKETCHGPU_NO_OPENBLAS') or not (OPENBLAS / 'libblas.so.3').exists():
        return
    paths = os.environ.get('LD_LIBRARY_PATH', '').split(':')
    if str(OPENBLAS) in paths:
        return
    env = dict(os.environ, LD_LIBRARY_PATH=':'.join([str(OPENBLAS)] + [p for p in paths if p]))
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def init_towers_from_zse_(model, path):
    """Both image towers from a ZSE-SBIR engine file's SA encoder (`sa.model.*` has the towers' names and shapes),
    proj = identity, so each tower's cls embedding starts as the ZSE model's retrieval embedding."""
    zse = {k[len('sa.model.'):]: torch.from_numpy(v.astype(np.float32))
           for k, v in load_file(path)[0].items() if k.startswith('sa.model.')}
    for name, tower in (('sketch', model.sketch), ('photo', model.photo)):
        own = tower.state_dict()
        want = {k for k in own if k != 'proj'}
        if set(zse) != want or any(zse[k].shape != own[k].shape for k in want):
            raise SystemExit(f'error: --init-towers {path}: its SA encoder does not fit the {name} tower '
                             f'(missing {sorted(want - set(zse))[:3]}, extra {sorted(set(zse) - want)[:3]}, or shapes)\n'
                             'hint: give a ZSE .safetensors with the same width, depth, heads, grid and stem as the preset')
        if tower.proj.shape[0] != tower.proj.shape[1]:
            raise SystemExit(f'error: --init-towers needs embed = image width (proj {tuple(tower.proj.shape)})')
        tower.load_state_dict({**zse, 'proj': torch.eye(tower.proj.shape[0])})
    print(f'image towers initialised from {path} (SA encoder; proj = identity)', flush=True)


def main():
    use_openblas()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=str(REPO / '.cache' / 'train-caan'))
    ap.add_argument('--name', default='caan-sketchy104-demo', help='final weights: OUT/NAME.safetensors')
    ap.add_argument('--preset', choices=['demo', 'small', 'tiny'], default='demo', help='caan_ref.CaanConfig preset')
    ap.add_argument('--seed', type=int, default=2024)
    ap.add_argument('--batch', type=int, default=32, help='items per step (3 images + 1 text each)')
    ap.add_argument('--steps', type=int, default=3000)
    ap.add_argument('--lr', type=float, default=5e-4)
    ap.add_argument('--min-lr', type=float, default=1e-5)
    ap.add_argument('--warmup', type=int, default=150)
    ap.add_argument('--wd', type=float, default=0.05)
    ap.add_argument('--clip', type=float, default=1.0)
    ap.add_argument('--aug-p', type=float, default=0.85)
    ap.add_argument('--margin', type=float, default=0.3, help='triplet margin of caan_ref.loss_terms')
    ap.add_argument('--contrastive', type=float, default=1.0,
                    help='weight of the supervised contrastive term (sketch<->photo, text->photo); 0 = paper only')
    ap.add_argument('--temp', type=float, default=0.1, help='temperature of --contrastive')
    ap.add_argument('--name-p', type=float, default=0.5, help='probability of a class-name template in a text')
    ap.add_argument('--tower-dropout', type=float, default=0.0, help='dropout inside the image towers (ZSE: 0.1)')
    ap.add_argument('--bf16', type=int, default=1, help='bfloat16 autocast in the towers: 1 on, 0 off')
    ap.add_argument('--init', default='',
                    help='start from these engine weights (a CAAN .safetensors of the same preset, e.g. the shipped '
                         'demo file); the optimizer, schedule and training-only projections start fresh')
    ap.add_argument('--init-towers', default='',
                    help="then copy a ZSE-SBIR file's SA encoder (engine .safetensors, same width/depth/heads/grid/stem) "
                         'into both image towers, with proj = identity (needs embed = width): CAAN starts from the ZSE '
                         "demo model's sketch/photo embedding")
    ap.add_argument('--val-classes', type=int, default=10)
    ap.add_argument('--split-seed', type=int, default=0)
    ap.add_argument('--val-every', type=int, default=250, help='steps; 0: no validation')
    ap.add_argument('--select', choices=['sketch', 'sketch+text'], default='sketch',
                    help="model selection: val sketch->photo mAP@all, or its mean with text(desc)->photo mAP@all")
    ap.add_argument('--threads', type=int, default=1,
                    help='torch threads; 1 measured ~1.0 step/s on the shared 2-core machine, 2 under other load '
                         'fell below 0.1 step/s (OpenMP waits); 2 only on an idle machine')
    Z_train.add_distill_args(ap)
    Z_train.add_run_args(ap)
    ap.add_argument('--final-eval', action='store_true',
                    help='after training, measure the selected weights on unseen21-256 (the only unseen read)')
    a = ap.parse_args()

    out, log = Z_train.start_run(a)

    cfg = getattr(C.CaanConfig, a.preset)()
    S = cfg.image.image_size
    train_cls, val_cls = ev.split_seen(a.val_classes, a.split_seed)
    desc = json.loads(DESCRIPTIONS.read_text())
    tok = ClipTokenizer()
    print(f'config {json.dumps(cfg.to_json())}\ntrain classes {len(train_cls)}, val classes {val_cls}', flush=True)
    tr = ev.load_split(ev.ALL128, train_cls, S, cache_name=f'train{a.val_classes}s{a.split_seed}', purpose='train')
    va = ev.load_split(ev.ALL128, val_cls, S, cache_name=f'val{a.val_classes}s{a.split_seed}', purpose='select') if val_cls else None
    print(f'data: train {len(tr["sketch"])} sketches + {len(tr["photo"])} photos'
          + (f', val {len(va["sketch"])} + {len(va["photo"])}' if va else '') + f' ({log.elapsed():.1f} s)',
          flush=True)
    sk_all, im_all = ev.to_input(tr['sketch']), ev.to_input(tr['photo'])

    model = init_weights_(C.Caan(cfg))
    if a.init:
        try:
            model.load_state_dict(load_engine_weights(a.init, cfg).state_dict())
        except (RuntimeError, OSError, ValueError) as e:
            raise SystemExit(f'error: --init {a.init} does not fit the {a.preset} preset: {str(e)[:300]}\n'
                             f'hint: give a CAAN .safetensors written by this script with the same --preset')
        print(f'initialised from {a.init}', flush=True)
    if a.init_towers:
        init_towers_from_zse_(model, a.init_towers)
    for tower in (model.sketch, model.photo):
        for m in tower.modules():
            if isinstance(m, nn.Dropout):
                m.p = a.tower_dropout
    n_keys, n_params = C.check_state_dict(model)
    print(f'model: {n_keys} tensors, {n_params:,} params '
          f'({model.text.token_embedding.weight.numel():,} of them the token table)', flush=True)
    if a.teacher_net:
        raise SystemExit('error: --teacher-net is implemented in train_zse.py only\nhint: use --teacher (the cache)')
    if a.distill_cross and not a.teacher:
        raise SystemExit('error: --distill-cross needs the teacher cache\nhint: add --teacher .cache/teacher/feat-*.npy')
    teacher = Teacher(a, tr, torch.device('cpu')) if a.teacher else None
    D = cfg.embed                                                   # the towers' projected token width
    heads = nn.ModuleDict({'g': nn.Linear(D, teacher.gdim), 't': nn.Linear(D, teacher.dim)}) if teacher \
        else nn.ModuleDict()                                        # training-only projections, not in the weights
    groups = param_groups(model, a.wd)
    groups[0]['params'] += [p for n, p in heads.named_parameters() if n.endswith('weight')]
    groups[1]['params'] += [p for n, p in heads.named_parameters() if n.endswith('bias')]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.98))
    # The file lists only give the sampler each sketch's source photo (for --distill-cross); with pair_frac 0 it
    # draws exactly the groups it drew without them.
    sampler = TripletSampler(tr['sketch_label'], tr['photo_label'], a.seed, tr['sketch_files'], tr['photo_files'])
    texts = TextSampler(train_cls, desc, tok, cfg.text.context, a.seed + 1, a.name_p)
    gen = torch.Generator().manual_seed(a.seed)
    start, best = 0, {'score': -1.0}
    if a.resume and (out / 'last.pt').exists():
        st = torch.load(out / 'last.pt', map_location='cpu')
        model.load_state_dict(st['model'])
        opt.load_state_dict(st['opt'])
        sampler.rng.set_state(st['sampler'])
        texts.rng.set_state(st['texts'])
        gen.set_state(st['gen'])
        torch.set_rng_state(st['torch_rng'])
        start, best, log.offset = st['step'], st['best'], st['elapsed']
        if 'heads' in st:
            heads.load_state_dict(st['heads'])
        print(f'resumed at step {start}', flush=True)

    def validate(step):
        r = evaluate(model, va, val_cls, tok, desc)
        sc = r['sketch_photo']['map_all']
        if a.select == 'sketch+text':
            sc = 0.5 * (sc + r['text_desc_photo']['map_all'])
        log({'step': step, 'val': r, 'score': sc})
        return r, sc

    def checkpoint(step):
        torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'sampler': sampler.rng.get_state(),
                    'texts': texts.rng.get_state(), 'gen': gen.get_state(), 'torch_rng': torch.get_rng_state(),
                    'step': step, 'best': best, 'elapsed': log.elapsed(), 'args': vars(a), 'heads': heads.state_dict()},
                   out / 'last.pt.tmp')
        os.replace(out / 'last.pt.tmp', out / 'last.pt')

    model.train()
    mixed = Mixed(model, a.bf16)
    b = a.batch
    keys = ('global.sketch_photo', 'global.text_photo', 'global.text_sketch', 'local.sketch_photo',
            'local.text_image', 'contrastive', 'total') + \
        (('distill.global', 'distill.tokens', 'distill.rel', 'distill.cross') if a.teacher else ())
    acc = {k: 0.0 for k in keys}
    n_acc, t_last, c_last, s1 = 0, time.time(), time.process_time(), start
    for step in range(start, a.steps):
        lr = lr_at(step, a)
        for g in opt.param_groups:
            g['lr'] = lr
        i_sk, _, i_im, i_imn = sampler.sample(b)
        y = torch.from_numpy(tr['sketch_label'][i_sk]).long()
        y_neg = torch.from_numpy(tr['photo_label'][i_imn]).long()
        _, ids = texts.sample(y.numpy())
        sk, th_sk = augment(sk_all[i_sk], gen, sketch=True, p=a.aug_p, return_theta=True)
        im, th_im = augment(im_all[np.concatenate([i_im, i_imn])], gen, sketch=False, p=a.aug_p, return_theta=True)
        mixed.rec, mixed.toks = [], []
        terms = C.loss_terms(mixed, sk, im[:b], im[b:], ids, margin=a.margin)
        loss = terms['total']
        l_con = torch.zeros(())
        if a.contrastive > 0:
            e_sk, e_ip, e_in, e_t = mixed.rec                       # loss_terms' order: sk, im_pos, im_neg, text
            e_im, y_im = torch.cat([e_ip, e_in]), torch.cat([y, y_neg])
            l_con = (supcon(e_sk, y, e_im, y_im, a.temp) + supcon(e_im, y_im, e_sk, y, a.temp)
                     + supcon(e_t, y, e_im, y_im, a.temp)) / 3
            loss = loss + a.contrastive * l_con
        terms['contrastive'] = l_con
        if teacher is not None:
            toks = torch.cat(mixed.toks[:3])                        # loss_terms' order: sk, im_pos, im_neg
            grid = int(round(math.sqrt(toks.shape[1] - 1)))
            g, cells = teacher.targets(i_sk, th_sk, np.concatenate([i_im, i_imn]), th_im, grid)
            gs = heads['g'](toks[:, 0])
            own = torch.ones(len(g), dtype=torch.bool)
            terms['distill.cross'] = torch.zeros(())
            if a.distill_cross > 0:                                 # the sketches are rows 0..b-1
                g, own, terms['distill.cross'] = Z_train.cross_targets(teacher, sampler.src[i_sk], g, gs)
                loss = loss + a.distill_cross * terms['distill.cross']
            terms['distill.global'] = (1 - F.cosine_similarity(gs[own], g[own], dim=1)).mean()
            terms['distill.tokens'] = (1 - F.cosine_similarity(heads['t'](toks[:, 1:]), cells, dim=2)).mean()
            terms['distill.rel'] = relational_kl(toks[:, 0], g, a.distill_temp)
            loss = loss + a.distill_global * terms['distill.global'] + a.distill_tokens * terms['distill.tokens'] \
                + a.distill_rel * terms['distill.rel']
        terms['total'] = loss
        if not torch.isfinite(loss):
            log({'step': step + 1, 'error': 'non-finite loss', 'terms': {k: float(v) for k, v in terms.items()}})
            raise SystemExit(1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip) if a.clip > 0 else torch.tensor(0.0)
        opt.step()
        for k in keys:
            acc[k] += float(terms[k])
        n_acc += 1
        s1 = step + 1
        if s1 % a.log_every == 0 or s1 == a.steps:
            dt, dc = time.time() - t_last, time.process_time() - c_last
            t_last, c_last = time.time(), time.process_time()
            log({'step': s1, 'lr': lr, **{k: acc[k] / n_acc for k in keys}, 'grad_norm': float(gn),
                 'steps_per_s': n_acc / dt, 'cpu_s_per_step': dc / n_acc})
            acc, n_acc = {k: 0.0 for k in keys}, 0
        over = a.max_minutes and (log.elapsed()) > 60 * a.max_minutes
        if va is not None and a.val_every and (s1 % a.val_every == 0 or s1 == a.steps or over):
            r, sc = validate(s1)
            if sc > best['score']:
                best = {'score': sc, 'step': s1, 'val': r}
                torch.save({'model': model.state_dict(), 'step': s1, 'val': r}, out / 'best.pt.tmp')
                os.replace(out / 'best.pt.tmp', out / 'best.pt')
            checkpoint(s1)
            t_last, c_last = time.time(), time.process_time()
        elif s1 == a.steps or over:
            checkpoint(s1)
        if over:
            log({'step': s1, 'stopped': f'--max-minutes {a.max_minutes} reached'})
            break

    elapsed = log.elapsed()
    if va is not None and best.get('step') and (out / 'best.pt').exists():
        model.load_state_dict(torch.load(out / 'best.pt', map_location='cpu')['model'])
    model.eval()
    final = out / f'{a.name}.safetensors'
    n_written = write_engine_weights(model, final)
    check_texts = ['a photo of a ' + class_name(val_cls[0] if val_cls else train_cls[0]), 'long neck and four legs',
                   'a sketch of a cat, pointed ears, whiskers and a long curved tail', 'round wheels']
    write_engine_check(final, cfg, va if va is not None else tr, tok, out / f'{a.name}.check.safetensors', check_texts)
    summary = {'args': vars(a), 'config': cfg.to_json(), 'params': n_params, 'train_classes': train_cls,
               'val_classes': val_cls, 'steps_done': s1, 'train_seconds': round(elapsed, 1), 'best': best,
               'weights': str(final), 'weights_params': n_written, 'torch': torch.__version__}
    print(f'done: {s1} steps in {elapsed / 60:.1f} min; best {json.dumps(best)}', flush=True)
    if a.final_eval:
        t0 = time.time()
        m16 = load_engine_weights(final, cfg)                       # what the engine gets: the fp16 weights
        data = ev.load_split(ev.UNSEEN256, ev.unseen_classes(), S, cache_name='unseen21', purpose='final-eval')
        r = evaluate(m16, data, ev.unseen_classes(), tok)
        r['seconds'] = round(time.time() - t0, 1)
        summary['unseen21'] = r
        log({'final_unseen21': r})
    (out / 'summary.json').write_text(json.dumps(summary, indent=1) + '\n')


if __name__ == '__main__':
    main()
