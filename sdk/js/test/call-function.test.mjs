// cloud.callFunction and cloud.CDN against a real `cloudlet serve`.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { ADMIN_KEY, eventually, jsFunction, nodeFunction, sdk, startServer } from './server.mjs';

let server;
let key;
let publishable;
let Cloud;
let wx;

const ADD = 'exports.main = async (event, context) => event.x + event.y\n';

before(async () => {
  ({ Cloud, wx } = await sdk());
  server = await startServer(['--tmp-ttl-seconds', '2']);
  server.deploy('add', jsFunction(ADD));
  server.deploy('add', jsFunction('exports.main = async (event) => `other: ${event.x + event.y}`\n'), 'other');
  server.deploy('echo', jsFunction('exports.main = async (event) => event\n'));
  server.deploy(
    'fail',
    jsFunction("exports.main = async () => { throw new TypeError('no such user') }\n"),
  );
  server.deploy('slow', jsFunction('exports.main = () => new Promise((r) => setTimeout(() => r(1), 3000))\n'));
  const measure = `exports.main = async (event) => {
  const answer = await fetch(event.file)
  const bytes = new Uint8Array(await answer.arrayBuffer())
  let sum = 0
  for (const byte of bytes) sum = (sum + byte) % 65521
  return { status: answer.status, type: answer.headers.get('content-type'), length: bytes.length, sum, url: event.file }
}
`;
  server.deploy('measure', jsFunction(measure));
  server.deploy('measure-node', nodeFunction(measure));
  key = server.cli('envs', 'key', 'default');
  publishable = server.cli('envs', 'key', 'default', '--publishable');
});

after(() => server?.stop());

const client = (options = {}) => new Cloud({ endpoint: server.url, accessKey: publishable, ...options });

function checksum(bytes) {
  let sum = 0;
  for (const byte of bytes) sum = (sum + byte) % 65521;
  return sum;
}

test('the seed promise call resolves with the result, the request ID and errMsg ok', async () => {
  const res = await client().callFunction({ name: 'add', data: { x: 1, y: 2 } });
  assert.equal(res.result, 3);
  assert.equal(res.errMsg, 'cloud.callFunction:ok');
  assert.match(res.requestID, /^[0-9a-f-]{36}$/);
});

test('the seed callback call runs success, then complete', async () => {
  const seen = [];
  await new Promise((resolve) => {
    client().callFunction({
      name: 'add',
      data: { x: 1, y: 2 },
      success: (res) => seen.push(['success', res.result]),
      fail: (err) => seen.push(['fail', err]),
      complete: () => {
        seen.push(['complete']);
        resolve();
      },
    });
  });
  assert.deepEqual(seen, [['success', 3], ['complete']]);
});

test('page code written for wx.cloud runs unchanged after init', async () => {
  wx.cloud.init({ endpoint: server.url, accessKey: publishable });
  const res = await wx.cloud.callFunction({ name: 'add', data: { x: 20, y: 22 } });
  assert.equal(res.result, 42);
});

test('config.async queues the call and resolves with its request ID, whose record shows the result', async () => {
  const res = await client().callFunction({ name: 'add', data: { x: 2, y: 3 }, config: { async: true } });
  assert.equal(res.errMsg, 'cloud.callFunction:ok');
  assert.equal(res.result, undefined);
  assert.ok(res.requestID);
  const url = `${server.url}/v1/envs/default/invocations/${res.requestID}`;
  let record;
  for (let attempt = 0; attempt < 100; attempt++) {
    record = await (await fetch(url, { headers: { authorization: `Bearer ${key}` } })).json();
    if (record.status === 'succeeded') break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(record.status, 'succeeded', JSON.stringify(record));
  assert.equal(record.result, '5');
});

test('config.env overrides the env given to init', async () => {
  const cloud = client({ env: 'default', accessKey: ADMIN_KEY });
  const res = await cloud.callFunction({ name: 'add', data: { x: 1, y: 2 }, config: { env: 'other' } });
  assert.equal(res.result, 'other: 3');
});

test('a function that throws rejects with WeChat errCode -404011, the code and the request ID', async () => {
  const cloud = client();
  let failed;
  let completed;
  const error = await cloud
    .callFunction({ name: 'fail', data: {}, fail: (err) => (failed = err), complete: (arg) => (completed = arg) })
    .catch((err) => err);
  assert.equal(error.errCode, -404011);
  assert.match(error.errMsg, /^cloud\.callFunction:fail .*no such user/);
  assert.equal(error.code, 'FUNCTION_INVOCATION_FAILED');
  assert.equal(failed, error);
  assert.equal(completed, error);
  const record = await eventually(() => JSON.parse(server.cli('logs', error.requestID, '--json')));
  assert.equal(record.status, 'failed');
  assert.match(record.error.message, /no such user/);
});

test('an unknown function fails with errCode -501000 and FUNCTION_NOT_FOUND', async () => {
  const error = await client().callFunction({ name: 'nobody', data: {} }).catch((err) => err);
  assert.equal(error.errCode, -501000);
  assert.equal(error.code, 'FUNCTION_NOT_FOUND');
  assert.match(error.errMsg, /^cloud\.callFunction:fail /);
});

test('a wrong access key fails with errCode -401001 and PERMISSION_DENIED', async () => {
  const error = await client({ accessKey: 'pk_wrong' }).callFunction({ name: 'add', data: {} }).catch((e) => e);
  assert.equal(error.errCode, -401001);
  assert.equal(error.code, 'PERMISSION_DENIED');
});

test('a bad parameter fails before any request', async () => {
  const error = await client().callFunction({ data: {} }).catch((err) => err);
  assert.equal(error.errCode, -401002);
  assert.match(error.errMsg, /name must be a non-empty string/);
});

test('the client timeout aborts a call that takes longer', async () => {
  const started = Date.now();
  const error = await client({ timeout: 300 }).callFunction({ name: 'slow', data: {} }).catch((err) => err);
  assert.equal(error.errCode, -504003);
  assert.equal(error.code, 'TIMEOUT');
  assert.ok(Date.now() - started < 2500, 'the timeout, not the function, ended the call');
});

test('binary data reaches the function as seed 000 says: {type: "Buffer", data: [...]}', async () => {
  const bytes = new Uint8Array([17, 1, 255]);
  const res = await client().callFunction({ name: 'echo', data: { buf: bytes.buffer, view: bytes.subarray(1) } });
  assert.deepEqual(res.result, {
    buf: { type: 'Buffer', data: [17, 1, 255] },
    view: { type: 'Buffer', data: [1, 255] },
  });
});

for (const name of ['measure', 'measure-node']) {
  test(`a 1 MB CDN field reaches the ${name === 'measure' ? 'js' : 'node'} engine as a URL it fetches`, async () => {
    const text = 'abcdefghij'.repeat(100 * 1024);
    const res = await client().callFunction({ name, data: { file: client().CDN(text) } });
    assert.equal(res.result.status, 200);
    assert.equal(res.result.length, text.length);
    assert.equal(res.result.sum, checksum(Buffer.from(text)));
    assert.match(res.result.type, /^text\/plain/);
    assert.match(res.result.url, new RegExp(`^${server.url}/v1/tmp/default/`));
  });
}

test('binary CDN fields round-trip byte for byte, from a typed array and from a file', async () => {
  const bytes = createHash('sha256').update('seed').digest();
  const big = new Uint8Array(300 * 1024).map((_, i) => (i * 7) % 256);
  const dir = mkdtempSync(join(tmpdir(), 'cloudlet-cdn-'));
  writeFileSync(join(dir, 'big.bin'), big);
  const cloud = client();
  const fromBytes = await cloud.callFunction({ name: 'measure', data: { file: cloud.CDN(bytes) } });
  assert.equal(fromBytes.result.sum, checksum(bytes));
  assert.equal(fromBytes.result.type, 'application/octet-stream');
  const fromFile = await cloud.callFunction({
    name: 'measure',
    data: { file: cloud.CDN({ type: 'filePath', filePath: join(dir, 'big.bin') }) },
  });
  assert.equal(fromFile.result.length, big.length);
  assert.equal(fromFile.result.sum, checksum(big));
});

test('CDN fields nested in the data are replaced where they stand', async () => {
  const cloud = client();
  const res = await cloud.callFunction({ name: 'echo', data: { list: [1, { doc: cloud.CDN('hello') }], keep: 'me' } });
  assert.equal(res.result.keep, 'me');
  assert.equal(res.result.list[0], 1);
  const text = await (await fetch(res.result.list[1].doc)).text();
  assert.equal(text, 'hello');
});

test('a CDN object expires after the server\'s time to live', async () => {
  const cloud = client();
  const res = await cloud.callFunction({ name: 'echo', data: { file: cloud.CDN('short-lived') } });
  assert.equal((await fetch(res.result.file)).status, 200);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  const late = await fetch(res.result.file);
  assert.equal(late.status, 404);
  assert.equal((await late.json()).code, 'RESOURCE_NOT_FOUND');
});

test('an unmarked field over 256 KB makes the SDK warn once', async (t) => {
  const warnings = [];
  t.mock.method(console, 'warn', (message) => warnings.push(message));
  const cloud = client();
  const big = 'x'.repeat(300 * 1024);
  await cloud.callFunction({ name: 'echo', data: { small: 1, big } });
  await cloud.callFunction({ name: 'echo', data: { small: 1, big } });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /data\.big is \d+ bytes; .*cloud\.CDN\(\)/);
});

test('the publishable key invokes but cannot read records', async () => {
  const res = await client().callFunction({ name: 'add', data: { x: 2, y: 2 } });
  const record = await fetch(`${server.url}/v1/envs/default/invocations/${res.requestID}`, {
    headers: { authorization: `Bearer ${publishable}` },
  });
  assert.equal(record.status, 401);
  const withEnvKey = await fetch(`${server.url}/v1/envs/default/invocations/${res.requestID}`, {
    headers: { authorization: `Bearer ${key}` },
  });
  assert.equal(withEnvKey.status, 200);
});
