// The library's public API in the browser: the same model and preprocessing as in Node, without files.
export { SketchError, type ErrorCode } from './errors.ts';
export { createGpuContext, type GpuContext, type GpuOptions } from './gpu/device.ts';
export { browserGpu } from './gpu/browser.ts';
export { ZseModel, type ZseModelOptions } from './models/zse/model.ts';
export { type ZseConfig, ZSE_VIT_B16 } from './models/zse/config.ts';
export { parseWeights } from './io/weights-parse.ts';
export { decodeImage } from './io/image.ts';
export { preprocessPhoto, preprocessSketch } from './preprocess/index.ts';
export { readNpy, writeNpy } from './io/npy.ts';
export { readSafetensors, writeSafetensors } from './io/safetensors.ts';
