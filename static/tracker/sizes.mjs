// Size budgets of the built files (bytes, gzip -9), shared by the build and the tests.
import { gzipSync } from 'node:zlib';

export const BUDGETS = [
  { files: ['tracker.min.js'], bytes: 3072 },
  { files: ['consent.min.js', 'consent.min.css'], bytes: 2560 },
];

export const gzipSize = (bytes) => gzipSync(bytes, { level: 9 }).length;
