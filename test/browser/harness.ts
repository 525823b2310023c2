/**
 * Real Chromium for the browser tests: Debian's /usr/bin/chromium, headless, WebGPU on SwiftShader, launched with
 * exactly the flags of ../shared/docs/platform.md ("Chromium with WebGPU, headless") through playwright-core, and
 * the page served by web/serve.mjs.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
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
