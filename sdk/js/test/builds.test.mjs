// The builds: CommonJS and the browser script say what the ESM build says.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import vm from 'node:vm';

import { SDK_DIR, sdk } from './server.mjs';

test('the CommonJS build exports what the ESM build does', async () => {
  const esm = await sdk();
  const cjs = createRequire(import.meta.url)(join(SDK_DIR, 'cloudlet.cjs'));
  assert.deepEqual(Object.keys(cjs).sort(), ['Cloud', 'CloudError', 'VERSION', 'cloud', 'default', 'wx']);
  assert.deepEqual(Object.keys(esm).sort(), ['Cloud', 'CloudError', 'VERSION', 'cloud', 'default', 'wx']);
  assert.ok(cjs.cloud instanceof cjs.Cloud);
  assert.equal(cjs.wx.cloud, cjs.cloud);
  assert.equal(cjs.VERSION, esm.VERSION);
});

test('the browser build defines cloudlet and wx.cloud on a page without them', () => {
  const page = vm.createContext({});
  vm.runInContext(readFileSync(join(SDK_DIR, 'cloudlet.browser.js'), 'utf8'), page);
  assert.equal(typeof page.cloudlet.Cloud, 'function');
  assert.equal(page.wx.cloud, page.cloudlet.cloud);
  assert.equal(typeof page.wx.cloud.callHTTPFunction, 'function');
});

test('the browser build leaves a page\'s own wx.cloud alone', () => {
  const own = { callFunction() {} };
  const page = vm.createContext({ wx: { cloud: own, request() {} } });
  vm.runInContext(readFileSync(join(SDK_DIR, 'cloudlet.browser.js'), 'utf8'), page);
  assert.equal(page.wx.cloud, own);
  assert.equal(typeof page.wx.request, 'function');
  assert.equal(typeof page.cloudlet.cloud.callFunction, 'function');
});

test('a failed call is a CloudError and an Error', async () => {
  const { Cloud, CloudError } = await sdk();
  const error = await new Cloud({ endpoint: 'http://127.0.0.1:1' }).callFunction({ name: 'x' }).catch((e) => e);
  assert.ok(error instanceof CloudError);
  assert.ok(error instanceof Error);
  assert.equal(error.errCode, -1);
  assert.equal(error.code, 'NETWORK_ERROR');
  assert.match(error.errMsg, /^cloud\.callFunction:fail request failed: /);
});
