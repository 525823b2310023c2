// tools/fuzz/fuzz-glibc-compat.mjs edits two tables of Jazzer.js's prebuilt addon (version needs and symbol versions)
// so that it loads on Debian 12. Checked here on the installed addon's original bytes: exactly the three known
// symbols are unversioned, and nothing but version-table bytes changes; a file that is not ELF64 is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
// @ts-expect-error a plain .mjs tool without types
import { patchAddon } from '../tools/fuzz/fuzz-glibc-compat.mjs';

const addon = resolve(import.meta.dirname, '..', 'node_modules', '@jazzer.js', 'fuzzer', 'prebuilds', 'fuzzer-linux-x64.node');
const original = existsSync(`${addon}.orig`) ? `${addon}.orig` : addon;

test('the patch unversions exactly the three shimmed symbols and changes only version entries', () => {
  assert.ok(existsSync(original), '@jazzer.js/fuzzer is a dev dependency: npm install');
  const bytes = readFileSync(original);
  const patched = Buffer.from(bytes);
  const n = (patchAddon as (b: Buffer) => number)(patched);
  assert.equal(n, 3);
  let diff = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== patched[i]) diff++;
  assert.ok(diff >= 3 && diff <= 32, `${diff} bytes changed`);
  assert.equal(patched.length, bytes.length);
  // Patching twice changes nothing more (idempotent: the symbols are already unversioned).
  const again = Buffer.from(patched);
  (patchAddon as (b: Buffer) => number)(again);
  assert.ok(again.equals(patched));
});

test('a file that is not ELF64 little-endian is refused', () => {
  assert.throws(() => (patchAddon as (b: Buffer) => number)(Buffer.from('MZ not an elf file at all, just bytes....................................')), /not an ELF64/);
});

test.run();
