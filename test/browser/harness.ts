/**
 * Real Chromium for the browser tests: Debian's /usr/bin/chromium, headless, WebGPU on SwiftShader, launched with
 * exactly the flags of ../shared/docs/platform.md ("Chromium with WebGPU, headless") through playwright-core, and
 * the page served by web/serve.mjs.
 */
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../paths.ts';

export const CHROMIUM = process.env.SKETCHGPU_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = resolve(REPO_ROOT, '.cache', 'screenshots');

/** Why the browser tests cannot run here, or null when they can. */
export function browserUnavailable(): string | null {
  if (process.env.SKETCHGPU_SKIP_BROWSER) return `SKETCHGPU_SKIP_BROWSER is set (${process.env.SKETCHGPU_SKIP_BROWSER})`;
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (install it: apt-get install -y chromium)`;
  if (!existsSync(resolve(REPO_ROOT, 'node_modules', 'playwright-core'))) return 'playwright-core is not installed (npm install)';
  return null;
}

/** The flags of platform.md, less --user-data-dir (launchPersistentContext passes it). */
export function chromiumFlags(o: { webgpu?: boolean } = {}): string[] {
  const flags = ['--headless=new', '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'];
  if (o.webgpu !== false) flags.push('--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan', '--use-vulkan=swiftshader');
  return flags;
}

type PwContext = import('playwright-core').BrowserContext;
type PwPage = import('playwright-core').Page;

export interface Session {
  context: PwContext;
  page: PwPage;
  /** Console errors and uncaught page errors seen so far. */
  errors: string[];
  /** Every console line, for failure messages. */
  log: string[];
  close(): Promise<void>;
}

/** A fresh Chromium profile (its own --user-data-dir) with one page, console errors collected. */
export async function openSession(o: { webgpu?: boolean; initScript?: string } = {}): Promise<Session> {
  const { chromium } = await import('playwright-core');
  const dir = mkdtempSync(join(tmpdir(), 'sketchgpu-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: chromiumFlags(o), // with the profile folder as --user-data-dir
    viewport: { width: 1280, height: 900 },
  });
  if (o.initScript) await context.addInitScript(o.initScript);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  const log: string[] = [];
  page.on('console', (m) => {
    log.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  return {
    context, page, errors, log,
    close: async () => {
      await context.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: PwPage, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// ---------------------------------------------------------------------------------------------------------------
// Shared by the page tests: the CLI reference, the sample gallery, and the page-vs-CLI comparison.

export type Hit = { path: string; score: number };
export const SAMPLE = resolve(REPO_ROOT, 'web', 'sample');
const BIN = resolve(REPO_ROOT, 'bin', 'sketchgpu.js');
const run = promisify(execFile);

/** Runs `sketchgpu ARGS` and returns its stdout; a failure throws with the CLI's stderr. */
export async function cli(args: string[]): Promise<string> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, maxBuffer: 64 << 20, timeout: 600_000 });
    return r.stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`sketchgpu ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** The CLI's error message (stderr) for a command that must fail. */
export async function cliError(args: string[]): Promise<string> {
  try {
    await run(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, maxBuffer: 64 << 20, timeout: 600_000 });
  } catch (e) {
    return (e as { stderr?: string }).stderr ?? '';
  }
  throw new Error(`sketchgpu ${args.join(' ')} succeeded, expected a refusal`);
}

/** Copy the first n photos of each class of the sample gallery (sorted as the CLI sorts them) to dir. */
export function samplePhotos(dir: string, n: number): string[] {
  const paths: string[] = [];
  for (const cls of readdirSync(join(SAMPLE, 'photo')).sort()) {
    for (const f of readdirSync(join(SAMPLE, 'photo', cls)).filter((x) => /\.(png|jpe?g)$/i.test(x)).sort().slice(0, n)) {
      mkdirSync(join(dir, cls), { recursive: true });
      copyFileSync(join(SAMPLE, 'photo', cls, f), join(dir, cls, f));
      paths.push(`${cls}/${f}`);
    }
  }
  return paths;
}

/** Same ranking and scores within tol; positions may differ only between scores within tol of each other (ties). */
export function assertSameHits(page: Hit[], ref: Hit[], what: string, tol = 1e-4): number {
  assert.is(page.length, ref.length, `${what}: ${page.length} results, the CLI gave ${ref.length}`);
  let maxDiff = 0;
  page.forEach((h, i) => {
    const d = Math.abs(h.score - ref[i]!.score);
    maxDiff = Math.max(maxDiff, d);
    assert.ok(d <= tol, `${what}: rank ${i + 1} score ${h.score} vs CLI ${ref[i]!.score}`);
    if (h.path !== ref[i]!.path) {
      const j = ref.findIndex((r) => r.path === h.path);
      const other = j >= 0 ? ref[j]!.score : ref[ref.length - 1]!.score;
      assert.ok(Math.abs(other - h.score) <= tol,
        `${what}: rank ${i + 1} is ${h.path} (${h.score}) in the page but ${ref[i]!.path} (${ref[i]!.score}) in the CLI, not a tie`);
    }
  });
  return maxDiff;
}
