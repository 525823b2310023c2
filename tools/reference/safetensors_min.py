"""Minimal safetensors writer/reader (numpy only; torch tensors are accepted on write).

Format: 8-byte little-endian u64 header length N, then N bytes of UTF-8 JSON
    {name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
padded with spaces to a multiple of 8, then the raw little-endian tensor bytes. Header keys are sorted. The data is
laid out by decreasing element size, then name (as the reference implementation does), so every tensor starts at
an offset that is a multiple of its element size; offsets are relative to the end of the header.
"""
import json
import struct

import numpy as np

_NP_TO_ST = {
    np.dtype('float64'): 'F64', np.dtype('float32'): 'F32', np.dtype('float16'): 'F16',
    np.dtype('int64'): 'I64', np.dtype('int32'): 'I32', np.dtype('int16'): 'I16', np.dtype('int8'): 'I8',
    np.dtype('uint8'): 'U8', np.dtype('bool'): 'BOOL',
}
_ST_TO_NP = {v: k for k, v in _NP_TO_ST.items()}


def _to_numpy(t):
    if isinstance(t, np.ndarray):
        return t
    try:  # torch tensor
        import torch
        if isinstance(t, torch.Tensor):
            return t.detach().cpu().contiguous().numpy()
    except ImportError:
        pass
    return np.asarray(t)


def save_file(tensors, path, metadata=None):
    """Write {name: array} to `path`. metadata: {str: str} or None."""
    arrays = {k: np.ascontiguousarray(_to_numpy(v)) for k, v in tensors.items()}
    header = {}
    offset = 0
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    for name in order:
        a = arrays[name]
        if a.dtype not in _NP_TO_ST:
            raise TypeError(f'{name}: unsupported dtype {a.dtype}')
        n = a.nbytes
        header[name] = {'dtype': _NP_TO_ST[a.dtype], 'shape': list(a.shape), 'data_offsets': [offset, offset + n]}
        offset += n
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError('metadata must be {str: str}')
        header['__metadata__'] = dict(metadata)
    hb = json.dumps(header, separators=(',', ':'), sort_keys=True).encode('utf-8')
    hb += b' ' * ((-len(hb)) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)))
        f.write(hb)
        for name in order:
            a = arrays[name]
            f.write(a.astype(a.dtype.newbyteorder('<'), copy=False).tobytes(order='C'))


def load_file(path):
    """Read `path`; returns (dict name -> numpy array (little-endian, C order), metadata dict)."""
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    meta = header.pop('__metadata__', {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        dt = _ST_TO_NP[info['dtype']].newbyteorder('<')
        b, e = info['data_offsets']
        a = np.frombuffer(raw, dtype=dt, count=(e - b) // dt.itemsize, offset=base + b)
        out[name] = a.reshape(info['shape']).copy()
    return out, meta
