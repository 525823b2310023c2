/** Preprocessing of zse-sbir.md §5: decoded image -> model input tensor, for photos and sketches. */
export { preprocessPhoto, preprocessPhotoUint8 } from './photo.ts';
export {
  preprocessSketch, preprocessSketchUint8, sketchAlphaWarning, cropToInk, resizeByRatio, ratioResizeTarget, padToSquare,
  INK_MAX_SUM, CROP_PADDING, type RGBImage,
} from './sketch.ts';
export { toNormalizedCHW, NORMALIZE_LUT } from './normalize.ts';
export { checkInputRange, INPUT_RANGE_SLACK } from './input-range.ts';
