// The real @cloudbase/js-sdk, pointed at Cloudlet as its GATEWAY endpoint,
// with an env key as its access key. The Rust test that runs this file
// installs the package and puts it on NODE_PATH.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';

import { eventually, jsFunction, startServer } from './server.mjs';

const require = createRequire(import.meta.url);

let server;
let app;

before(async () => {
  server = await startServer();
  server.deploy('add', jsFunction('exports.main = async (event, context) => event.x + event.y\n'));
  server.deploy('fail', jsFunction("exports.main = async () => { throw new TypeError('no such user') }\n"));
  const cloudbase = require('@cloudbase/js-sdk');
  app = cloudbase.init({ env: 'default', accessKey: server.cli('envs', 'key', 'default') });
  // The form that works: the endpoint without its scheme, the protocol apart.
  app.registerEndPointWithKey({
    key: 'GATEWAY',
    url: `${server.url.replace(/^https?:/, '')}/v1/envs/default`,
    protocol: 'http',
  });
});

after(() => server?.stop());

test('callFunction resolves with the result and the request ID the client chose', async () => {
  const res = await app.callFunction({ name: 'add', data: { x: 1, y: 2 } });
  assert.equal(res.result, 3);
  assert.match(res.requestId, /^[0-9a-f-]{36}$/);
  // The record is kept under the client's own ID.
  const record = await eventually(() => JSON.parse(server.cli('logs', res.requestId, '--json')));
  assert.equal(record.requestId, res.requestId);
  assert.equal(record.status, 'succeeded');
});

test('a function error resolves with its code and message, as the real gateway\'s does', async () => {
  const res = await app.callFunction({ name: 'fail', data: {} });
  assert.equal(res.code, 'FUNCTION_INVOCATION_FAILED');
  assert.match(res.message, /no such user/);
  assert.match(res.requestId, /^[0-9a-f-]{36}$/);
  assert.equal(res.result, undefined);
});

test('an unknown function resolves with FUNCTION_NOT_FOUND', async () => {
  const res = await app.callFunction({ name: 'nobody', data: {} });
  assert.equal(res.code, 'FUNCTION_NOT_FOUND');
});
