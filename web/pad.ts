/**
 * The drawing pad: black strokes on a white canvas from pointer events (mouse, pen, touch), undo, clear, stroke
 * width, and an optional base image (a dropped file or a sample sketch). The canvas pixels are what a drawn query
 * sends to the model (as RGBA, exactly what the canvas saved as PNG decodes to); an untouched dropped file is
 * queried from its own bytes instead, through the engine's decoders.
 */
import type { RawImage } from '../src/browser.ts';

export interface Stroke {
  width: number;
  points: number[]; // x0, y0, x1, y1, ... in canvas pixels
}

export type PadChange = 'stroke' | 'end' | 'undo' | 'clear' | 'image';

export class SketchPad {
  readonly strokes: Stroke[] = [];
  width = 4;
  onChange: (why: PadChange) => void = () => undefined;
  private base: { image: CanvasImageSource; bytes: Uint8Array; name: string; w: number; h: number } | null = null;
  private current: { stroke: Stroke; pointerId: number } | null = null;
  private readonly g: CanvasRenderingContext2D;

  constructor(readonly canvas: HTMLCanvasElement) {
    const g = canvas.getContext('2d', { willReadFrequently: true });
    if (!g) throw new Error('no 2D canvas');
    this.g = g;
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    canvas.addEventListener('pointerup', (e) => this.up(e));
    canvas.addEventListener('pointercancel', (e) => this.up(e));
    canvas.addEventListener('contextmenu', (e) => e.preventDefault());
    this.redraw();
  }

  isEmpty(): boolean {
    return this.strokes.length === 0 && !this.base;
  }

  /** The query's own file when it is an untouched image (no strokes over it). */
  get file(): { bytes: Uint8Array; name: string } | null {
    return this.base && this.strokes.length === 0 ? { bytes: this.base.bytes, name: this.base.name } : null;
  }

  /** The canvas pixels (RGBA, 8 bit): what an RGBA PNG of the canvas decodes to. */
  pixels(): RawImage {
    const { width, height } = this.canvas;
    return { data: this.g.getImageData(0, 0, width, height).data, width, height };
  }

  setImage(image: CanvasImageSource & { width: number; height: number }, bytes: Uint8Array, name: string): void {
    const w = 'naturalWidth' in image ? (image as HTMLImageElement).naturalWidth : image.width;
    const h = 'naturalHeight' in image ? (image as HTMLImageElement).naturalHeight : image.height;
    this.base = { image, bytes, name, w, h };
    this.strokes.length = 0;
    this.current = null;
    this.redraw();
    this.onChange('image');
  }

  undo(): void {
    if (this.current) return;
    if (this.strokes.length) this.strokes.pop();
    else if (this.base) this.base = null;
    else return;
    this.redraw();
    this.onChange('undo');
  }

  clear(): void {
    if (this.isEmpty()) return;
    this.strokes.length = 0;
    this.base = null;
    this.current = null;
    this.redraw();
    this.onChange('clear');
  }

  private point(e: PointerEvent): [number, number] {
    const r = this.canvas.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * this.canvas.width, ((e.clientY - r.top) / r.height) * this.canvas.height];
  }

  private down(e: PointerEvent): void {
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    if (this.current) return; // one stroke at a time (a second finger is ignored)
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    const stroke: Stroke = { width: this.width, points: this.point(e) };
    this.current = { stroke, pointerId: e.pointerId };
    this.strokes.push(stroke);
    this.redraw();
    this.onChange('stroke');
  }

  private move(e: PointerEvent): void {
    if (!this.current || e.pointerId !== this.current.pointerId) return;
    const events = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) this.current.stroke.points.push(...this.point(ev));
    this.redraw();
    this.onChange('stroke');
  }

  private up(e: PointerEvent): void {
    if (!this.current || e.pointerId !== this.current.pointerId) return;
    this.current = null;
    this.onChange('end');
  }

  redraw(): void {
    const g = this.g;
    const { width: W, height: H } = this.canvas;
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, W, H);
    if (this.base) {
      // Fit the image inside the pad, centred (for display and for strokes drawn over it).
      const s = Math.min(W / this.base.w, H / this.base.h);
      const w = this.base.w * s, h = this.base.h * s;
      g.drawImage(this.base.image, (W - w) / 2, (H - h) / 2, w, h);
    }
    g.strokeStyle = '#000000';
    g.fillStyle = '#000000';
    g.lineCap = 'round';
    g.lineJoin = 'round';
    for (const s of this.strokes) {
      const p = s.points;
      if (p.length === 2) {
        g.beginPath();
        g.arc(p[0]!, p[1]!, s.width / 2, 0, 2 * Math.PI);
        g.fill();
        continue;
      }
      g.lineWidth = s.width;
      g.beginPath();
      g.moveTo(p[0]!, p[1]!);
      for (let i = 2; i < p.length; i += 2) g.lineTo(p[i]!, p[i + 1]!);
      g.stroke();
    }
  }
}
