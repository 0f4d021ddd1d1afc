import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { BUDGETS, gzipSize } from '../sizes.mjs';

for (const { files, bytes } of BUDGETS) {
  test(`${files.join(' + ')} stay within ${bytes} bytes gzipped`, () => {
    const total = files.reduce((sum, file) => sum + gzipSize(readFileSync(new URL(`../dist/${file}`, import.meta.url))), 0);
    assert.ok(total <= bytes, `${total} bytes gzipped, over the budget of ${bytes}`);
  });
}
