"""Export ZSE-SBIR (tools/reference/zse_ref.py) to ONNX from a safetensors weights file, for the ONNX Runtime peer of
bench/run.ts. Two graphs, fp32, opset 17:

  sa-<name>.onnx    image [B,3,S,S] -> tokens [B,T,D]                  (the SA encoder; B dynamic)
  pair-<name>.onnx  sketch [P,T,D], photo [P,T,D] -> score [P], cos [P,A*A]  (CA + anchors + RN of P pairs; P
                    dynamic; cos is the RN input, for parity checks)

The config is read off the weights' shapes and the safetensors metadata (sketchgpu.sa_heads, sketchgpu.ca_heads),
so the graphs compute exactly what the engine computes with the same file. torch.onnx.export needs no `onnx`
Python package. Prints one JSON line (paths, config, torch version).

    /usr/bin/python3 tools/bench/export_onnx.py WEIGHTS.safetensors --out .cache/onnx --name small
"""
import argparse
import inspect
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'reference'))
from safetensors_min import load_file  # noqa: E402
from zse_ref import Model, ZseConfig  # noqa: E402


def config_from(tensors, meta):
    sa = 'sa.model.'
    d = tensors[f'{sa}embedding.weight'].shape[0]
    depth = 0
    while f'{sa}transformer.layers.{depth}.0.layer_norm_input.weight' in tensors:
        depth += 1
    grid = int(round((tensors[f'{sa}pos_embedding'].shape[1] - 1) ** 0.5))
    stem = tuple(int(tensors[f'{sa}scale.seq.{i}.weight'].shape[0]) for i in (0, 2, 4))
    return ZseConfig(
        dim=d, depth=depth, sa_heads=int(meta.get('sketchgpu.sa_heads', 12)),
        mlp_dim=int(tensors[f'{sa}transformer.layers.0.0.mlp.net.0.weight'].shape[0]), grid=grid, stem=stem,
        ca_heads=int(meta.get('sketchgpu.ca_heads', 8)),
        ca_ff=int(tensors['ca.encoder.layer1.0.feed_forward.w_1.weight'].shape[0]),
        anchor_dim=int(tensors['conv2d.weight'].shape[0]),
        rn_hidden=(int(tensors['rn.rn.0.weight'].shape[0]), int(tensors['rn.rn.3.weight'].shape[0])), name='export')


class SaGraph(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, image):
        return self.m.sa(image)


class PairGraph(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, sketch, photo):
        m = self.m                                                   # Model.forward, also returning the RN input
        ca_fea = m.ca(torch.cat((sketch, photo), dim=0))
        down = m.anchors_of(ca_fea)
        b = down.size(0) // 2
        p, q = down[:b], down[b:]                                    # cos_similar, with the NaN guard written as
        sim = p.matmul(q.transpose(-2, -1))                          # x != x: ORT's WebGPU EP has no IsNaN kernel
        sim = sim / torch.norm(p, p=2, dim=-1).unsqueeze(-1)         # and would run it on its CPU EP (a GPU-CPU-GPU
        sim = sim / torch.norm(q, p=2, dim=-1).unsqueeze(-2)         # round trip per run)
        cos = torch.where(sim != sim, torch.zeros_like(sim), sim).view(b, -1)
        return m.rn(cos).view(-1), cos


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('weights')
    p.add_argument('--out', default='.cache/onnx')
    p.add_argument('--name', default='model')
    p.add_argument('--opset', type=int, default=17)
    a = p.parse_args()
    tensors, meta = load_file(a.weights)
    cfg = config_from(tensors, meta)
    m = Model(cfg).eval()
    sd = m.state_dict()
    missing = [k for k in sd if k not in tensors and not k.startswith('ca.encoder.layers.0.')]
    if missing:
        raise SystemExit(f'{a.weights}: missing {len(missing)} tensors, e.g. {missing[:3]}')
    # The dead CA clone (never called) keeps its init; everything the forward uses comes from the file.
    m.load_state_dict({k: torch.from_numpy(tensors[k]) if k in tensors else v for k, v in sd.items()})
    os.makedirs(a.out, exist_ok=True)
    S, T, D = cfg.image_size, cfg.tokens, cfg.dim
    sa_path = os.path.join(a.out, f'sa-{a.name}.onnx')
    pair_path = os.path.join(a.out, f'pair-{a.name}.onnx')
    # torch >= 2.9 exports through dynamo by default; the TorchScript exporter is the one these graphs were checked with.
    legacy = {'dynamo': False} if 'dynamo' in inspect.signature(torch.onnx.export).parameters else {}
    with torch.no_grad():
        torch.onnx.export(SaGraph(m), (torch.zeros(2, 3, S, S),), sa_path, opset_version=a.opset,
                          input_names=['image'], output_names=['tokens'],
                          dynamic_axes={'image': {0: 'B'}, 'tokens': {0: 'B'}}, do_constant_folding=True, **legacy)
        tok = torch.randn(2, T, D)
        torch.onnx.export(PairGraph(m), (tok, tok.flip(0)), pair_path, opset_version=a.opset,
                          input_names=['sketch', 'photo'], output_names=['score', 'cos'],
                          dynamic_axes={'sketch': {0: 'P'}, 'photo': {0: 'P'}, 'score': {0: 'P'}, 'cos': {0: 'P'}},
                          do_constant_folding=True, **legacy)
    print(json.dumps({'sa': sa_path, 'pair': pair_path, 'opset': a.opset, 'torch': torch.__version__,
                      'config': cfg.to_json()}))


if __name__ == '__main__':
    main()
