// Lets Jazzer.js's prebuilt libFuzzer addon load on glibc < 2.38 / GCC < 13's libstdc++ (Debian 12: glibc 2.36,
// GCC 12). The prebuilt for linux-x64 (@jazzer.js/fuzzer 4.0.0) needs the newer versions for exactly three symbols:
// __isoc23_strtol and __isoc23_strtoul (GLIBC_2.38: the C23 strtol/strtoul that also read "0b" prefixes; libFuzzer
// parses its numeric flags with them) and std::ios_base_library_init() (GLIBCXX_3.4.32: GCC 13's hook that makes
// the library set up std::cout and friends). This module
//   1. marks those version needs weak in the addon (VER_FLG_WEAK: the loader no longer refuses the file) and makes
//      the three symbols unversioned (bound by name in the global scope), and
//   2. builds a shim (C++, `c++`) that defines them: strtol/strtoul, and a static std::ios_base::Init (what GCC 12's
//      <iostream> does in every translation unit),
// so that `LD_PRELOAD=<shim> jazzer ...` runs the unmodified fuzzer logic. Nothing else in the addon changes (checked
// below: only the bytes of those version entries differ). The original stays in place as `<addon>.orig`.
// Binary layout: ELF64 little-endian, the System V gABI's section headers, dynsym, and GNU symbol versioning
// (.gnu.version, .gnu.version_r) as documented in the LSB (Elf64_Verneed / Elf64_Vernaux).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SHT_DYNSYM = 11, SHT_GNU_VERNEED = 0x6ffffffe, SHT_GNU_VERSYM = 0x6fffffff, VER_FLG_WEAK = 2, VER_NDX_GLOBAL = 1;
const WANT = { 'GLIBC_2.38': ['__isoc23_strtol', '__isoc23_strtoul'], 'GLIBCXX_3.4.32': ['_ZSt21ios_base_library_initv'] };
const SYMBOLS = Object.values(WANT).flat();
const SHIM = `#include <cstdlib>
#include <ios>
extern "C" long __isoc23_strtol(const char *s, char **e, int b) { return std::strtol(s, e, b); }
extern "C" unsigned long __isoc23_strtoul(const char *s, char **e, int b) { return std::strtoul(s, e, b); }
namespace std { void ios_base_library_init() { static ios_base::Init init; } }
`;

/** Patches the addon bytes; returns the count of symbols unversioned, or throws when the layout is not the expected one. */
export function patchAddon(buf) {
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) throw new Error('not an ELF64 little-endian file');
  const shoff = Number(buf.readBigUInt64LE(0x28)), shentsize = buf.readUInt16LE(0x3a), shnum = buf.readUInt16LE(0x3c);
  const sections = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    sections.push({ type: buf.readUInt32LE(o + 4), offset: Number(buf.readBigUInt64LE(o + 0x18)), size: Number(buf.readBigUInt64LE(o + 0x20)), link: buf.readUInt32LE(o + 0x28) });
  }
  const one = (t) => { const s = sections.filter((x) => x.type === t); if (s.length !== 1) throw new Error(`expected one section of type ${t.toString(16)}`); return s[0]; };
  const dynsym = one(SHT_DYNSYM), versym = one(SHT_GNU_VERSYM), verneed = one(SHT_GNU_VERNEED);
  const cstr = (strtab, off) => { const s = strtab.offset + off; return buf.toString('latin1', s, buf.indexOf(0, s)); };
  const dynstr = sections[dynsym.link], verstr = sections[verneed.link];
  // The version indices of the versions in WANT, each need marked weak.
  const indices = new Set();
  for (let vn = verneed.offset, n = 0; n < 64; n++) {
    const cnt = buf.readUInt16LE(vn + 2), aux = buf.readUInt32LE(vn + 8), next = buf.readUInt32LE(vn + 12);
    for (let a = vn + aux, k = 0; k < cnt; k++) {
      if (cstr(verstr, buf.readUInt32LE(a + 8)) in WANT) {
        indices.add(buf.readUInt16LE(a + 6));
        buf.writeUInt16LE(buf.readUInt16LE(a + 4) | VER_FLG_WEAK, a + 4);
      }
      a += buf.readUInt32LE(a + 12);
    }
    if (!next) break;
    vn += next;
  }
  if (!indices.size) return 0;
  let changed = 0;
  for (let i = 0; i < dynsym.size / 24; i++) {
    const v = versym.offset + 2 * i;
    if (!indices.has(buf.readUInt16LE(v) & 0x7fff)) continue;
    const name = cstr(dynstr, buf.readUInt32LE(dynsym.offset + 24 * i));
    if (!SYMBOLS.includes(name)) throw new Error(`${name} also needs a newer glibc/libstdc++: the shim does not provide it`);
    buf.writeUInt16LE(VER_NDX_GLOBAL, v);
    changed++;
  }
  return changed;
}

/**
 * Makes the addon under root/node_modules loadable here if it is not: returns the environment additions
 * ({LD_PRELOAD}) under which it loads, {} when it loads as installed, or null when this cannot help.
 */
export function glibcCompat(root, cacheDir) {
  const load = (env) => spawnSync(process.execPath, ['-e', "require('@jazzer.js/fuzzer')"], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
  const addon = join(root, 'node_modules', '@jazzer.js', 'fuzzer', 'prebuilds', 'fuzzer-linux-x64.node');
  // Patched by an earlier run: it loads (its symbols bind lazily) but needs the shim at the first call.
  const patchedBefore = existsSync(`${addon}.orig`);
  if (!patchedBefore) {
    const first = load({});
    if (first.status === 0) return {};
    if (!Object.keys(WANT).some((v) => first.stderr.includes(v)) || process.platform !== 'linux' || process.arch !== 'x64') return null;
  }
  if (!existsSync(addon)) return null;
  mkdirSync(cacheDir, { recursive: true });
  const shim = join(cacheDir, 'glibc-compat-shim.so');
  if (!existsSync(shim)) {
    const c = join(cacheDir, 'glibc-compat-shim.cc');
    writeFileSync(c, SHIM);
    const cc = spawnSync('c++', ['-shared', '-fPIC', '-O2', '-o', shim, c], { encoding: 'utf8' });
    if (cc.status !== 0) return null;
  }
  if (!patchedBefore) copyFileSync(addon, `${addon}.orig`);
  const orig = readFileSync(`${addon}.orig`);
  const patched = Buffer.from(orig);
  if (patchAddon(patched) !== SYMBOLS.length) return null;
  let diff = 0;
  for (let i = 0; i < orig.length; i++) if (orig[i] !== patched[i]) diff++;
  if (diff > 32) throw new Error(`patching ${addon} changed ${diff} bytes; expected only version entries`);
  writeFileSync(addon, patched);
  const env = { LD_PRELOAD: [shim, process.env.LD_PRELOAD].filter(Boolean).join(':') };
  // A load binds the shimmed symbols lazily, so it cannot prove the shim; a fuzz run without it ends in a symbol
  // lookup error, which tools/fuzz.mjs counts as an engine failure (a red run, never a silent pass).
  return load(env).status === 0 ? env : null;
}
