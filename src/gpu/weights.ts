import type { HostTensor } from '../io/tensor.ts';
import { toFloat32 } from '../io/tensor.ts';

/** Model parameters on the GPU, uploaded once and shared by every plan of the model. */
export class WeightStore {
  private readonly buffers = new Map<string, GPUBuffer>();
  readonly shapes = new Map<string, readonly number[]>();
  bytes = 0;

  constructor(readonly device: GPUDevice) {}

  upload(name: string, t: HostTensor): void {
    const f32 = toFloat32(t);
    const size = Math.max(16, Math.ceil((f32.byteLength) / 16) * 16);
    const buf = this.device.createBuffer({ label: name, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
    new Float32Array(buf.getMappedRange(), 0, f32.length).set(f32);
    buf.unmap();
    this.buffers.get(name)?.destroy();
    this.buffers.set(name, buf);
    this.shapes.set(name, t.shape);
    this.bytes += size;
  }

  has(name: string): boolean {
    return this.buffers.has(name);
  }

  get(name: string): GPUBuffer {
    const b = this.buffers.get(name);
    if (!b) throw new Error(`weight ${name} was not uploaded`);
    return b;
  }

  destroy(): void {
    for (const b of this.buffers.values()) b.destroy();
    this.buffers.clear();
  }
}
