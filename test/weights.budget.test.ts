// The demo weights' budget (the developers' brief): the shipped weights/*.safetensors together at most 24 MB, so the
// tracked tree stays small enough for a device call (64 MiB with what it carries, tools/device/pack.sh) and for a
// clone. Each file at most 25 MB (issue 20). A growing model must fit, or another file must shrink.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.ts';

test('the demo weight files fit the budget: together <= 24 MB, each <= 25 MB', () => {
  const dir = join(REPO_ROOT, 'weights');
  const files = readdirSync(dir).filter((f) => f.endsWith('.safetensors'));
  assert.ok(files.includes('zse-sketchy104-small.safetensors') && files.includes('caan-sketchy104-demo.safetensors'), files.join(', '));
  let total = 0;
  for (const f of files) {
    const n = statSync(join(dir, f)).size;
    assert.ok(n <= 25e6, `${f} is ${n} bytes, more than 25 MB`);
    total += n;
  }
  assert.ok(total <= 24e6, `the demo weights take ${total} bytes together, more than 24 MB`);
});

test.run();
