import type { HostTensor } from '../core/tensor.ts';
import { f32ToF16, toFloat32 } from '../core/tensor.ts';

/** How a weight is kept on the GPU: f32, or binary16 packed two per u32 word (the f16 option's GEMM weights). */
export type WeightFormat = 'f32' | 'f16';

/** The binary16 bits of a tensor, rounded to nearest even (f16 data is taken as it is), padded to whole words. */
export function packF16(t: HostTensor): Uint16Array {
  const n = t.data.length;
  const out = new Uint16Array(n + (n & 1));
  if (t.dtype === 'f16') out.set(t.data as Uint16Array);
  else {
    const f32 = toFloat32(t);
    for (let i = 0; i < n; i++) out[i] = f32ToF16(f32[i]!);
  }
  return out;
}

const key = (name: string, format: WeightFormat) => (format === 'f32' ? name : `${name}#f16`);

/** Model parameters on the GPU, uploaded once and shared by every plan of the model. */
export class WeightStore {
  private readonly buffers = new Map<string, GPUBuffer>();
  readonly shapes = new Map<string, readonly number[]>();
  bytes = 0;
  /** Counts replacements and removals of buffers: executors remake their bind groups when it moved (executor.ts). */
  generation = 0;

  constructor(readonly device: GPUDevice) {}

  /** Uploads a tensor in each of the formats asked for (default f32). */
  upload(name: string, t: HostTensor, formats: readonly WeightFormat[] = ['f32']): void {
    for (const format of formats) {
      const data = format === 'f16' ? packF16(t) : toFloat32(t);
      const size = Math.max(16, Math.ceil(data.byteLength / 16) * 16);
      const buf = this.device.createBuffer({ label: key(name, format), size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
      new Uint8Array(buf.getMappedRange(), 0, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      buf.unmap();
      this.drop(key(name, format));
      this.buffers.set(key(name, format), buf);
      this.bytes += size;
    }
    this.shapes.set(name, t.shape);
  }

  has(name: string, format: WeightFormat = 'f32'): boolean {
    return this.buffers.has(key(name, format));
  }

  get(name: string, format: WeightFormat = 'f32'): GPUBuffer {
    const b = this.buffers.get(key(name, format));
    if (!b) throw new Error(`weight ${name} was not uploaded${format === 'f16' ? ' as f16' : ''}`);
    return b;
  }

  private drop(k: string): void {
    const b = this.buffers.get(k);
    if (!b) return;
    this.generation++;
    this.bytes -= b.size;
    b.destroy();
    this.buffers.delete(k);
  }

  destroy(): void {
    for (const b of this.buffers.values()) b.destroy();
    this.buffers.clear();
    this.bytes = 0;
    this.generation++;
  }
}
