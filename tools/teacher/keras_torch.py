"""PyTorch port of the teacher CNNs that the npm package nsfwjs@4.4.0 ships (Keras InceptionV3 and MobileNetV2,
ImageNet-trained, then fine-tuned by nsfwjs for a 5-class task; 8-bit per-tensor quantised weights).

`node tools/teacher/export.mjs --model NAME` writes the Keras topology and the dequantised weights; this module
interprets that topology layer by layer (only the layer kinds the two models use) in NCHW float32, so the teacher runs
on CPU threads or CUDA at PyTorch speed, several times faster than tfjs's wasm backend.

Input convention = the package's own classifier (nsfwjs core.js `infer`): RGB uint8 -> float / 255 in [0, 1], then
`tf.image.resizeBilinear(x, [size, size], alignCorners=true)`; size 299 for InceptionV3, 224 for MobileNetV2.
`preprocess()` does exactly that (torch's bilinear with align_corners=True, no antialias, is the same map).
`tools/teacher/check.py` compares this port's class probabilities with nsfwjs's own `classify` (TensorFlow.js).
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'reference'))
from safetensors_min import load_file  # noqa: E402

INPUT_SIZE = {'inception_v3': 299, 'mobilenet_v2': 224}
CLASSES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy']  # nsfwjs's output order (nsfw_classes.js)


def preprocess(rgb_uint8, size):
    """[B,H,W,3] or [H,W,3] uint8 (numpy or tensor) -> [B,3,size,size] float32 as nsfwjs feeds its model."""
    x = torch.as_tensor(rgb_uint8)
    if x.dim() == 3:
        x = x[None]
    x = x.permute(0, 3, 1, 2).float() / 255.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode='bilinear', align_corners=True)
    return x


class KerasNet(torch.nn.Module):
    def __init__(self, topology, weights):
        super().__init__()
        cfg = topology['model_config']['config']
        self.layers = cfg['layers']
        self.by_name = {l['name']: l for l in self.layers}
        self.output_name = cfg['output_layers'][0][0]
        self.params = torch.nn.ParameterDict()
        for name, arr in weights.items():
            t = torch.from_numpy(arr.copy()).float()
            layer, kind = name.split('/')
            cls = self.by_name[layer]['class_name']
            if kind == 'kernel' and cls == 'Conv2D':
                t = t.permute(3, 2, 0, 1).contiguous()  # [kh,kw,in,out] -> [out,in,kh,kw]
            elif kind == 'depthwise_kernel':
                t = t.permute(2, 3, 0, 1).reshape(-1, 1, t.shape[0], t.shape[1]).contiguous()  # [kh,kw,in,1]
            elif kind == 'kernel' and cls == 'Dense':
                t = t.t().contiguous()
            self.params[name.replace('/', '__')] = torch.nn.Parameter(t, requires_grad=False)

    def p(self, layer, kind):
        return self.params.get(f'{layer}__{kind}')

    @staticmethod
    def _same_pad(k, s, size):
        # TensorFlow 'same': total = max((ceil(size/s)-1)*s + k - size, 0), the extra pixel at the end.
        out = -(-size // s)
        total = max((out - 1) * s + k - size, 0)
        return total // 2, total - total // 2

    def _pad_same(self, x, k, s):
        t, b = self._same_pad(k[0], s[0], x.shape[2])
        l, r = self._same_pad(k[1], s[1], x.shape[3])
        return F.pad(x, (l, r, t, b)) if (t or b or l or r) else x

    def _layer(self, layer, xs):
        c, n, cls = layer['config'], layer['name'], layer['class_name']
        x = xs[0]
        if cls == 'Conv2D' or cls == 'DepthwiseConv2D':
            k, s = c['kernel_size'], c['strides']
            if c['padding'] == 'same':
                x = self._pad_same(x, k, s)
            if cls == 'Conv2D':
                y = F.conv2d(x, self.p(n, 'kernel'), self.p(n, 'bias'), stride=s)
            else:
                y = F.conv2d(x, self.p(n, 'depthwise_kernel'), self.p(n, 'bias'), stride=s, groups=x.shape[1])
            return self._act(y, c.get('activation', 'linear'))
        if cls == 'BatchNormalization':
            mean, var = self.p(n, 'moving_mean'), self.p(n, 'moving_variance')
            gamma, beta = self.p(n, 'gamma'), self.p(n, 'beta')
            inv = torch.rsqrt(var + c['epsilon'])
            if gamma is not None:
                inv = inv * gamma
            y = (x - mean[:, None, None]) * inv[:, None, None]
            return y + beta[:, None, None] if beta is not None else y
        if cls == 'Activation':
            return self._act(x, c['activation'])
        if cls == 'ReLU':
            y = F.relu(x)
            return y.clamp(max=c['max_value']) if c.get('max_value') is not None else y
        if cls == 'MaxPooling2D' or cls == 'AveragePooling2D':
            k, s = c['pool_size'], c['strides']
            if cls == 'MaxPooling2D':
                if c['padding'] == 'same':
                    x = self._pad_same(x, k, s)  # (not used by the two models with a non-zero pad)
                return F.max_pool2d(x, k, s)
            if c['padding'] == 'same':
                assert s == [1, 1] and k[0] % 2 == 1 and k[1] % 2 == 1
                # TensorFlow's 'same' average pooling divides by the number of real pixels.
                return F.avg_pool2d(x, k, s, padding=(k[0] // 2, k[1] // 2), count_include_pad=False)
            return F.avg_pool2d(x, k, s)
        if cls == 'ZeroPadding2D':
            (t, b), (l, r) = c['padding']
            return F.pad(x, (l, r, t, b))
        if cls == 'Concatenate':
            assert c['axis'] in (3, -1)
            return torch.cat(xs, dim=1)
        if cls == 'Add':
            y = xs[0]
            for z in xs[1:]:
                y = y + z
            return y
        if cls == 'Flatten':
            return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # channels_last order
        if cls == 'GlobalAveragePooling2D':
            return x.mean(dim=(2, 3))
        if cls == 'Dense':
            return self._act(F.linear(x, self.p(n, 'kernel'), self.p(n, 'bias')), c['activation'])
        if cls == 'Dropout':
            return x
        raise NotImplementedError(f'Keras layer kind {cls} ({n})')

    @staticmethod
    def _act(x, a):
        if a == 'linear':
            return x
        if a == 'relu':
            return F.relu(x)
        if a == 'softmax':
            return torch.softmax(x, dim=-1)
        raise NotImplementedError(f'activation {a}')

    def forward(self, x, outputs=None):
        """x: [B,3,S,S] as `preprocess` gives. outputs: layer names to return (dict); default the model output."""
        want = set(outputs or [self.output_name])
        vals = {}
        for layer in self.layers:
            if layer['class_name'] == 'InputLayer':
                vals[layer['name']] = x
                continue
            ins = [vals[i[0]] for i in layer['inbound_nodes'][0]]
            vals[layer['name']] = self._layer(layer, ins)
            if want.issubset(vals.keys()):
                break
        return {k: vals[k] for k in want} if outputs else vals[self.output_name]


def load_teacher(name='inception_v3', cache='.cache/teacher'):
    top = os.path.join(cache, f'{name}.topology.json')
    wts = os.path.join(cache, f'{name}.safetensors')
    if not (os.path.exists(top) and os.path.exists(wts)):
        raise SystemExit(f'error: {top} is missing\nhint: run `node tools/teacher/export.mjs --model {name} --out {cache}`')
    with open(top) as f:
        topology = json.load(f)
    net = KerasNet(topology, load_file(wts)[0])
    net.eval()
    return net
