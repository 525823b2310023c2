// The library's public API (Node entry).
export { SketchError, type ErrorCode } from './errors.ts';
export { createGpuContext, type GpuContext, type GpuOptions } from './gpu/device.ts';
export { nodeGpu } from './gpu/node.ts';
export { ZseModel, type ZseModelOptions } from './models/zse/model.ts';
export { type ZseConfig, ZSE_VIT_B16 } from './models/zse/config.ts';
export { loadWeights, convertCheckpoint, parseWeights } from './io/weights.ts';
export { decodeImage } from './io/image.ts';
export { loadImageFile } from './io/image-file.ts';
export { preprocessPhoto, preprocessSketch } from './preprocess/index.ts';
export { readNpy, writeNpy } from './io/npy.ts';
export { readSafetensors, writeSafetensors } from './io/safetensors.ts';
