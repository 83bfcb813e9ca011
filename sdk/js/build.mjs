// Builds dist/ from src/cloudlet.js: ESM as it is, CommonJS, and a browser
// script that defines `cloudlet` and, where a page has none, `wx.cloud`.
//
// The source is one module without imports whose exports are its last two
// lines, so a bundler would add nothing but a dependency: each build only
// rewrites those lines.
//
// Usage: node build.mjs [OUT_DIR]   (default: dist)

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? join(here, 'dist'));
const source = readFileSync(join(here, 'src/cloudlet.js'), 'utf8');

const EXPORTS = 'export { cloud, wx, Cloud, CloudError, VERSION };\nexport default cloud;\n';
if (!source.endsWith(EXPORTS)) {
  throw new Error('src/cloudlet.js must end with its two export lines, as build.mjs rewrites them');
}
const body = source.slice(0, -EXPORTS.length);
const names = '{ cloud, wx, Cloud, CloudError, VERSION, default: cloud }';

const commonjs = `'use strict';\n${body}module.exports = ${names};\n`;
const browser = `(function () {\n'use strict';\n${body}
globalThis.cloudlet = ${names};
// Page code written for WeChat calls wx.cloud.*: give it ours unless the
// page already has a wx.cloud.
if (typeof globalThis.wx === 'undefined') globalThis.wx = {};
if (!globalThis.wx.cloud) globalThis.wx.cloud = cloud;
})();\n`;

mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'cloudlet.mjs'), source);
writeFileSync(join(out, 'cloudlet.cjs'), commonjs);
writeFileSync(join(out, 'cloudlet.browser.js'), browser);
console.log(`built ${out}`);
