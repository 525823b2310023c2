import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { existsSync } from 'node:fs';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = resolve(REPO_ROOT, 'test', 'fixtures');
/** ../shared beside the checkout (read in place, never copied); SKETCHGPU_SHARED overrides. */
export const SHARED = process.env.SKETCHGPU_SHARED ?? resolve(REPO_ROOT, '..', 'shared');
export const SHARED_DATA = resolve(SHARED, 'data');
export const hasSharedData = (): boolean => existsSync(resolve(SHARED_DATA, 'sketchy'));
