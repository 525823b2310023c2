/** A tensor in a graph: a shape and a role; its GPU buffer is given by the planner. */
export type TensorKind = 'input' | 'weight' | 'const' | 'intermediate';
/** 'f16': binary16 values packed two per u32 word (element 2j in the low half); weights of the f16 option. */
export type GpuDType = 'f32' | 'u32' | 'f16';

export class Tensor {
  constructor(
    readonly id: number,
    readonly shape: readonly number[],
    readonly kind: TensorKind,
    readonly name: string,
    readonly dtype: GpuDType = 'f32',
    /** Host data of a 'const' tensor. */
    readonly data?: Float32Array | Uint32Array,
  ) {}

  get size(): number {
    let n = 1;
    for (const d of this.shape) n *= d;
    return n;
  }

  /** Bytes, rounded up to 16 so every binding is a whole number of vec4s. */
  get bytes(): number {
    return Math.max(16, Math.ceil((this.size * (this.dtype === 'f16' ? 2 : 4)) / 16) * 16);
  }

  toString(): string {
    return `${this.name}[${this.shape.join(',')}]`;
  }
}
