/**
 * The one WGSL templating mechanism of the ops (docs/architecture.md, "Add an op"). A kernel's program is
 *   1. its shaders/<op>/*.wgsl (or shaders/<op>.wgsl) text, with shared functions from shaders/lib/ concatenated
 *      in front (plain `+`: WGSL has no includes), and
 *   2. specialised through `@NAME@` slots only, filled by fillSlots, which refuses a slot that the text lacks or one
 *      left unfilled, so a WGSL edit can never make a specialisation silently do nothing.
 * Constants both sides need (tile sizes, chunk lengths) are defined once, as `const NAME = <number>;` in the WGSL,
 * and read by the op's TypeScript with wgslConst. wgslLimits reads what a program asks of the adapter, from which
 * src/graph/limits.ts derives the engine's kernel limits.
 */

/** Fills every `@NAME@` slot of a template; throws when a given slot is not in the text or a slot is left unfilled. */
export function fillSlots(template: string, slots: Record<string, string | number | boolean>): string {
  let out = template;
  for (const [name, value] of Object.entries(slots)) {
    const slot = `@${name}@`;
    if (!out.includes(slot)) throw new Error(`WGSL template has no slot ${slot}`);
    out = out.split(slot).join(String(value));
  }
  const left = /@([A-Z][A-Z0-9_]*)@/.exec(out);
  if (left) throw new Error(`WGSL template slot ${left[0]} was not filled`);
  return out;
}

/** The value of a module-scope `const NAME = <number>[u|i|f];` (or `const NAME: T = ...;`); throws when absent. */
export function wgslConst(src: string, name: string): number {
  const m = new RegExp(`^const\\s+${name}\\s*(?::\\s*\\w+\\s*)?=\\s*(-?(?:0x[0-9a-fA-F]+|[0-9.]+(?:e[+-]?\\d+)?))[uif]?\\s*;`, 'm').exec(src);
  if (!m) throw new Error(`WGSL has no numeric constant ${name}`);
  return Number(m[1]);
}

/** What one program asks of the adapter (the GPUSupportedLimits names). */
export interface KernelLimits {
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupSizeY: number;
  maxComputeWorkgroupStorageSize: number;
  maxStorageBuffersPerShaderStage: number;
  maxUniformBuffersPerShaderStage: number;
}

const TYPE_BYTES: Record<string, number> = { f32: 4, u32: 4, i32: 4, f16: 2, 'vec2<u32>': 8, 'vec2<f32>': 8, 'vec4<f32>': 16, 'vec4<u32>': 16 };

/**
 * The limits one program needs, read from its text: the largest @workgroup_size of its entry points, the sum of its
 * workgroup arrays (every entry point counted as using all of them), its distinct storage and uniform bindings.
 */
export function wgslLimits(src: string): KernelLimits {
  const num = (term: string): number => (/^\d/.test(term.trim()) ? parseInt(term, 10) : wgslConst(src, term.trim()));
  let inv = 0, x = 0, y = 0;
  for (const m of src.matchAll(/@workgroup_size\(([^)]*)\)/g)) {
    const [sx = 1, sy = 1, sz = 1] = m[1]!.split(',').map(num);
    inv = Math.max(inv, sx * sy * sz);
    x = Math.max(x, sx);
    y = Math.max(y, sy);
  }
  let bytes = 0;
  for (const m of src.matchAll(/var<workgroup>\s+\w+\s*:\s*array<\s*([\w<>]+?)\s*,\s*(\w+)\s*>/g)) {
    const size = TYPE_BYTES[m[1]!];
    if (size === undefined) throw new Error(`wgslLimits: unknown workgroup element type ${m[1]}`);
    bytes += size * num(m[2]!);
  }
  const bindings = (kind: string) => new Set([...src.matchAll(new RegExp(`@binding\\((\\d+)\\)\\s*var<${kind}\\b`, 'g'))].map((m) => m[1])).size;
  return {
    maxComputeInvocationsPerWorkgroup: inv,
    maxComputeWorkgroupSizeX: x,
    maxComputeWorkgroupSizeY: y,
    maxComputeWorkgroupStorageSize: bytes,
    maxStorageBuffersPerShaderStage: bindings('storage'),
    maxUniformBuffersPerShaderStage: bindings('uniform'),
  };
}
