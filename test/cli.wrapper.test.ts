// bin/sketchgpu.js runs the CLI in a detached child (to filter Dawn's warnings from stderr); when the wrapper dies,
// even by SIGKILL, which it cannot pass on, the child must end too rather than run on as an orphan.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO_ROOT } from './paths.ts';
import { BIN } from './cli-util.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** pid -> [parent pid, state] from /proc (a zombie, state Z, has exited). */
function procStat(pid: number): { ppid: number; state: string } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}
const running = (pid: number) => {
  const s = procStat(pid);
  return s !== null && s.state !== 'Z' && s.state !== 'X';
};
const childrenOf = (pid: number) => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => procStat(p)?.ppid === pid);

test('a SIGKILLed wrapper takes its CLI child with it, mid-index', async () => {
  if (!existsSync('/proc/self/stat')) return; // the check reads /proc (Linux)
  // A gallery that takes the bundled model tens of seconds to index here: the sample photos, three times over.
  const tmp = mkdtempSync(join(tmpdir(), 'sketchgpu-wrapper-'));
  const gallery = join(tmp, 'photos');
  for (const copy of ['a', 'b', 'c']) cpSync(resolve(REPO_ROOT, 'web', 'sample', 'photo'), join(gallery, copy), { recursive: true });
  const out = join(tmp, 'g.sgi');
  const wrapper = spawn(process.execPath, [BIN, 'index', gallery, '-o', out], { stdio: 'ignore', env: { ...process.env, SKETCHGPU_CLI_CHILD: '', SKETCHGPU_DEBUG: '' } });
  let child: number | undefined;
  try {
    for (let t = 0; t < 100 && child === undefined; t++) {
      await sleep(100);
      child = childrenOf(wrapper.pid!)[0];
    }
    assert.ok(child !== undefined, 'the wrapper started its CLI child');
    // Into the work: the model loaded, photos being embedded.
    for (let t = 0; t < 150 && !existsSync(`${out}.partial`); t++) await sleep(100);
    assert.ok(existsSync(`${out}.partial`), 'the child is indexing');
    assert.ok(running(child!), 'the child runs');
    wrapper.kill('SIGKILL');
    const t0 = Date.now();
    while (running(child!) && Date.now() - t0 < 5000) await sleep(50);
    assert.not.ok(running(child!), `the child (pid ${child}) still runs 5 s after its wrapper was killed`);
    assert.not.ok(existsSync(out), 'the index was not finished: the child ended mid-way');
  } finally {
    wrapper.kill('SIGKILL');
    if (child !== undefined && running(child)) process.kill(child, 'SIGKILL');
  }
});

test.run();
