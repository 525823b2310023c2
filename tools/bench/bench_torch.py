"""PyTorch peer for bench/run.ts: the same ZSE-SBIR configs (tools/reference/zse_ref.py), SA img/s per batch size and CA+RN
pairs/s, on CUDA when present (fp32, TF32 off; and fp16, the model cast with .half(), as sa_f16 / ca_rn_f16) else
the CPU (fp32 only: torch 1.13 has no fp16 matmuls on the CPU). With --weights (bench/run.ts passes the safetensors
file of its own random weights) it runs exactly the numbers sketchgpu ran. Prints one JSON line."""
import argparse, json, time, sys, os
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'reference'))
from zse_ref import Model, ZseConfig  # noqa: E402

p = argparse.ArgumentParser(description=__doc__)
p.add_argument('--model', choices=['vitb', 'small'], default='small')
p.add_argument('--iters', type=int, default=3)
p.add_argument('--batches', default='1,8')
p.add_argument('--weights', help='safetensors weights (config read off the shapes); default: seeded random, --model config')
a = p.parse_args()
dev = 'cuda' if torch.cuda.is_available() else 'cpu'
if dev == 'cuda':
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
cfg = ZseConfig.full() if a.model == 'vitb' else ZseConfig(dim=192, depth=4, sa_heads=3, mlp_dim=768, grid=7, stem=(16, 32, 64), ca_heads=4, ca_ff=256, anchor_dim=64, rn_hidden=(27, 9), name='small')
torch.manual_seed(0)
if a.weights:
    from safetensors_min import load_file  # noqa: E402
    from export_onnx import config_from  # noqa: E402
    tensors, meta = load_file(a.weights)
    cfg = config_from(tensors, meta)
    m = Model(cfg)
    m.load_state_dict({k: torch.from_numpy(tensors[k]) if k in tensors else v for k, v in m.state_dict().items()})
    m = m.to(dev).eval()
else:
    m = Model(cfg).to(dev).eval()
S = cfg.image_size


def sync():
    if dev == 'cuda':
        torch.cuda.synchronize()


def timeit(fn, n):
    fn(); sync()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    sync()
    return (time.perf_counter() - t) / n


def graphed(fn, *args):
    """fn captured in a CUDA graph over static args; returns a replay callable."""
    st = torch.cuda.Stream()
    st.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(st):
        for _ in range(3):
            fn(*args)
    torch.cuda.current_stream().wait_stream(st)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn(*args)
    return g.replay


def cuda_modes(model, batches, sk, im):
    res = {}
    n = max(a.iters, 20)
    for prec in ['fp32', 'tf32', 'fp16']:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = prec == 'tf32'
        mm = model.half() if prec == 'fp16' else model.float()
        dt = torch.float16 if prec == 'fp16' else torch.float32
        r = res[prec] = {}
        for mode in ['eager', 'graph']:
            rr = r[mode] = {'sa': {}}
            for B in batches:
                x = (torch.rand(B, 3, S, S, device=dev) * 2 - 1).to(dt)
                f = graphed(mm.sa, x) if mode == 'graph' else (lambda: mm.sa(x))
                t = timeit(f, n if B < 32 else max(3, n // 4))
                rr['sa'][f'batch_{B}'] = {'ms': t * 1e3, 'img_per_s': B / t}
            s16, i16 = sk.to(dt), im.to(dt)
            f = graphed(mm, s16, i16) if mode == 'graph' else (lambda: mm(s16, i16))
            t = timeit(f, n)
            rr['ca_rn'] = {'pairs': sk.shape[0], 'ms': t * 1e3, 'pairs_per_s': sk.shape[0] / t}
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    model.float()
    return res


out = {'device': torch.cuda.get_device_name() if dev == 'cuda' else f'cpu ({torch.get_num_threads()} threads)', 'torch': torch.__version__, 'sa': {}}
with torch.no_grad():
    for B in [int(b) for b in a.batches.split(',')]:
        x = torch.rand(B, 3, S, S, device=dev) * 2 - 1
        s = timeit(lambda: m.sa(x), a.iters if B < 32 else max(1, a.iters // 4))
        out['sa'][f'batch_{B}'] = {'ms': s * 1e3, 'img_per_s': B / s}
    tok = m.sa(torch.rand(8, 3, S, S, device=dev) * 2 - 1)
    sk = tok.repeat_interleave(8, 0)
    im = tok.repeat(8, 1, 1)
    s = timeit(lambda: m(sk, im), a.iters)
    out['ca_rn'] = {'pairs': 64, 'ms': s * 1e3, 'pairs_per_s': 64 / s}
    if dev == 'cuda':
        h = m.half()
        out['sa_f16'] = {}
        for B in [int(b) for b in a.batches.split(',')]:
            x = (torch.rand(B, 3, S, S, device=dev) * 2 - 1).half()
            s = timeit(lambda: h.sa(x), a.iters if B < 32 else max(1, a.iters // 4))
            out['sa_f16'][f'batch_{B}'] = {'ms': s * 1e3, 'img_per_s': B / s}
        sk16, im16 = sk.half(), im.half()
        s = timeit(lambda: h(sk16, im16), a.iters)
        out['ca_rn_f16'] = {'pairs': 64, 'ms': s * 1e3, 'pairs_per_s': 64 / s}
    if dev == 'cuda':
        # Every CUDA mode side by side: precision fp32 (TF32 off), tf32 (TF32 matmuls and convs), fp16 (.half());
        # eager and CUDA-graph replay (static inputs, captured after warm-up on a side stream, as PyTorch documents).
        try:
            out['cuda'] = cuda_modes(m.float(), [int(b) for b in a.batches.split(',')], sk.float(), im.float())
        except Exception as e:  # the plain rows above stay valid
            out['cuda'] = {'error': f'{type(e).__name__}: {e}'}
print(json.dumps(out))
