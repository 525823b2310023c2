/** A decoding thread of `DecodePool` (decode.ts): sketch file bytes in, the model input (or the refusal) out. */
import { parentPort } from 'node:worker_threads';
import { isSketchError } from '../core/errors.ts';
import { decodeSketchInput } from './decode.ts';

parentPort!.on('message', (m: { id: number; bytes: Uint8Array; size: number; name: string }) => {
  try {
    const r = decodeSketchInput(m.bytes, m.size, m.name);
    parentPort!.postMessage({ id: m.id, data: r.data, warning: r.warning }, [r.data.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: isSketchError(e) ? { code: e.code, message: e.message, hint: e.hint } : { message: (e as Error)?.message ?? String(e) } });
  }
});
