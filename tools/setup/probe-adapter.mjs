// Prints the WebGPU adapter dawn.node finds and exits 0, or exits 1 when there is none.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) process.exit(1);
const i = adapter.info;
console.log([i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' | '));
process.exit(0);
