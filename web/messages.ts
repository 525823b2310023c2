// Messages: banners, the status line, error texts.
import { isSketchError } from '../src/browser.ts';
import { el } from './page.ts';

// Messages

type BannerKind = 'error' | 'warn' | 'ok';
/** Every banner shown, oldest first (for tests: recoveries replace the lost-device message quickly). */
export const messages: string[] = [];
let bannerTimer: ReturnType<typeof setTimeout> | undefined;
export function banner(kind: BannerKind, title: string, detail?: string, autoHideMs?: number): void {
  clearTimeout(bannerTimer);
  messages.push(`${kind}: ${title}${detail ? ` | ${detail}` : ''}`);
  el.banner.hidden = false;
  el.banner.className = `banner ${kind}`;
  el.banner.replaceChildren();
  const t = document.createElement('strong');
  t.textContent = title;
  el.banner.append(t);
  if (detail) {
    const d = document.createElement('div');
    d.textContent = detail;
    el.banner.append(d);
  }
  if (autoHideMs) bannerTimer = setTimeout(() => (el.banner.hidden = true), autoHideMs);
}

export function errorText(e: unknown): { title: string; hint?: string } {
  if (isSketchError(e) && e.code === 'NO_ADAPTER' && (navigator as { gpu?: unknown }).gpu) {
    // navigator.gpu exists but no adapter answered: WebGPU is there, the GPU (or its driver) is not usable.
    return {
      title: e.message,
      hint: 'This browser has WebGPU, but no GPU adapter answered. Turn on hardware acceleration, see chrome://gpu ' +
        'for why WebGPU is off; on Linux, Chrome may need --enable-unsafe-webgpu --enable-features=Vulkan.',
    };
  }
  if (isSketchError(e)) return { title: e.message, hint: e.hint };
  return { title: e instanceof Error ? e.message : String(e) };
}

export function status(text: string): void {
  el.status.textContent = text;
}

export const ms = (x: number) => `${x < 10 ? x.toFixed(1) : Math.round(x)} ms`;
export const secs = (x: number) => `${(x / 1000).toFixed(1)} s`;
