// Build dist/ from src/ (esbuild bundles each entry into an IIFE, terser minifies it:
// some 100 bytes gzipped smaller than esbuild's own minifier), then print each file's size (raw, gzip -9,
// brotli) against its budget; exits 1 when a budget is exceeded.
//   node build.mjs [OUTDIR]    (OUTDIR defaults to dist/; the tests build into a temp dir)
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';
import { minify } from 'terser';

import { BUDGETS, gzipSize } from './sizes.mjs';

const here = new URL('.', import.meta.url).pathname;
const outdir = process.argv[2] || join(here, 'dist');
mkdirSync(outdir, { recursive: true });

for (const name of ['tracker', 'consent']) {
  const bundled = await build({ entryPoints: [join(here, `src/${name}.js`)], bundle: true, write: false,
    format: 'iife', target: 'es2017', legalComments: 'none', charset: 'utf8', logLevel: 'warning' });
  const { code } = await minify(bundled.outputFiles[0].text, {
    ecma: 2017, compress: { passes: 3, unsafe_arrows: true }, mangle: true, format: { comments: false } });
  writeFileSync(join(outdir, `${name}.min.js`), code);
}
await build({ entryPoints: [join(here, 'src/consent.css')], outfile: join(outdir, 'consent.min.css'), bundle: true,
  minify: true, legalComments: 'none', charset: 'utf8', logLevel: 'warning', target: ['chrome109', 'firefox115', 'safari16'] });

const brotliSize = (bytes) =>
  brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;

let over = false;
for (const { files, bytes: budget } of BUDGETS) {
  let total = 0;
  for (const file of files) {
    const bytes = readFileSync(join(outdir, file));
    const gz = gzipSize(bytes);
    total += gz;
    console.log(`${file.padEnd(16)} ${String(bytes.length).padStart(6)} B raw  ${String(gz).padStart(5)} B gzip -9  ${String(brotliSize(bytes)).padStart(5)} B brotli`);
  }
  over ||= total > budget;
  console.log(`  ${files.join(' + ')}: ${total} of ${budget} B gzipped${total > budget ? ' OVER BUDGET' : ''}`);
}
process.exit(over ? 1 : 0);
