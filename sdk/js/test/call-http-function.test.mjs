// cloud.callHTTPFunction against a real `cloudlet serve` and a real HTTP
// function (Node.js's own http server behind `scf_bootstrap`).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { httpFunction, sdk, startServer } from './server.mjs';

let server;
let publishable;
let Cloud;

// Answers with what it was asked; `/chunks` streams five chunks 100 ms
// apart; `/late` answers after 3 s; `/missing` is the function's own 404.
const APP = `const http = require('http')
http.createServer((req, res) => {
  const url = new URL(req.url, 'http://function')
  if (url.pathname === '/chunks') {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    let n = 0
    const tick = setInterval(() => {
      res.write('data: ' + n + '\\n\\n')
      if (++n === 5) { clearInterval(tick); res.end() }
    }, 100)
    return
  }
  if (url.pathname === '/late') return setTimeout(() => res.end('late'), 3000)
  if (url.pathname === '/missing') { res.writeHead(404, { 'x-own': 'yes' }); return res.end('not here') }
  if (url.pathname === '/bytes') return res.end(Buffer.from([0, 1, 2, 255]))
  let body = ''
  req.on('data', (chunk) => (body += chunk))
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-answer': 'yes' })
    res.end(JSON.stringify({ method: req.method, path: url.pathname, query: url.search,
      custom: req.headers['x-custom-header'] ?? null, type: req.headers['content-type'] ?? null, body }))
  })
}).listen(9000)
`;

before(async () => {
  ({ Cloud } = await sdk());
  server = await startServer();
  server.deploy('web', httpFunction(APP));
  publishable = server.cli('envs', 'key', 'default', '--publishable');
});

after(() => server?.stop());

const client = (options = {}) => new Cloud({ endpoint: server.url, accessKey: publishable, ...options });

test('a lower-case post sends data as a JSON body, with the path and headers, and parses the JSON answer', async () => {
  const res = await client().callHTTPFunction({
    name: 'web',
    data: { key: 'value' },
    path: '/api/hello',
    method: 'post',
    header: { 'X-Custom-Header': 'value' },
    timeout: 1500,
  });
  assert.equal(res.statusCode, 200);
  assert.equal(res.errMsg, 'cloud.callHTTPFunction:ok');
  assert.equal(res.header['x-answer'], 'yes');
  assert.deepEqual(res.data, {
    method: 'POST',
    path: '/api/hello',
    query: '',
    custom: 'value',
    type: 'application/json',
    body: '{"key":"value"}',
  });
});

test('a GET puts data in the query string', async () => {
  const res = await client().callHTTPFunction({ name: 'web', path: '/q', method: 'GET', data: { a: 1, b: 'x y' } });
  assert.equal(res.data.method, 'GET');
  assert.equal(res.data.query, '?a=1&b=x%20y');
  assert.equal(res.data.body, '');
});

test('dataType text keeps the body a string, and responseType arraybuffer gives bytes', async () => {
  const text = await client().callHTTPFunction({ name: 'web', path: '/t', dataType: 'text' });
  assert.equal(typeof text.data, 'string');
  assert.equal(JSON.parse(text.data).path, '/t');
  const bytes = await client().callHTTPFunction({ name: 'web', path: '/bytes', responseType: 'arraybuffer' });
  assert.ok(bytes.data instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(bytes.data)], [0, 1, 2, 255]);
});

test('the function\'s own error status is an answer, not a failure', async () => {
  const res = await client().callHTTPFunction({ name: 'web', path: '/missing' });
  assert.equal(res.statusCode, 404);
  assert.equal(res.data, 'not here');
  assert.equal(res.header['x-own'], 'yes');
});

test('an unknown HTTP function fails with errCode -501000', async () => {
  const error = await client().callHTTPFunction({ name: 'nobody', path: '/' }).catch((err) => err);
  assert.equal(error.errCode, -501000);
  assert.equal(error.code, 'FUNCTION_NOT_FOUND');
  assert.match(error.errMsg, /^cloud\.callHTTPFunction:fail /);
});

test('with enableChunked, headers come once, then each chunk as it arrives, in order', async () => {
  const events = [];
  const res = await new Promise((resolve, reject) => {
    client().callHTTPFunction({
      name: 'web',
      path: '/chunks',
      method: 'GET',
      enableChunked: true,
      onHeadersReceived: (head) => events.push({ kind: 'headers', status: head.statusCode, at: Date.now() }),
      onChunkedReceived: (chunk) => {
        assert.ok(chunk.data instanceof ArrayBuffer);
        events.push({ kind: 'chunk', text: new TextDecoder().decode(chunk.data), at: Date.now() });
      },
      success: resolve,
      fail: reject,
    });
  });
  assert.equal(events[0].kind, 'headers');
  assert.equal(events[0].status, 200);
  assert.equal(events.filter((e) => e.kind === 'headers').length, 1);
  const chunks = events.filter((e) => e.kind === 'chunk');
  assert.equal(chunks.map((c) => c.text).join(''), [0, 1, 2, 3, 4].map((n) => `data: ${n}\n\n`).join(''));
  // The chunks were handed over as they came, not at the end.
  assert.ok(chunks.at(-1).at - chunks[0].at >= 250, 'chunks arrived spread over the stream');
  assert.ok(res.data instanceof ArrayBuffer);
  assert.equal(new TextDecoder().decode(res.data), chunks.map((c) => c.text).join(''));
});

test('the seed\'s chunked page code runs as written, its timeout of 1500 ms included', async () => {
  const lines = [];
  await new Promise((resolve, reject) => {
    client().callHTTPFunction({
      name: 'web',
      config: { env: 'default' },
      data: { key: 'value' },
      path: '/chunks',
      method: 'post',
      header: { 'X-Custom-Header': 'value' },
      timeout: 1500,
      enableChunked: true,
      onHeadersReceived: (res) => lines.push(`headers ${res.statusCode}`),
      onChunkedReceived: (res) => {
        const uint8Array = new Uint8Array(res.data);
        let str = '';
        for (let i = 0; i < uint8Array.length; i++) str += String.fromCharCode(uint8Array[i]);
        lines.push(decodeURIComponent(escape(str)));
      },
      success: resolve,
      fail: reject,
    });
  });
  assert.equal(lines[0], 'headers 200');
  assert.equal(lines.slice(1).join(''), [0, 1, 2, 3, 4].map((n) => `data: ${n}\n\n`).join(''));
});

test('a timeout over 1500 ms is refused unless init raises the limit', async () => {
  const error = await client().callHTTPFunction({ name: 'web', path: '/', timeout: 1501 }).catch((err) => err);
  assert.equal(error.errCode, -401002);
  assert.match(error.errMsg, /timeout must be at most 1500 ms/);
  const res = await client({ maxHTTPTimeout: 10000 }).callHTTPFunction({ name: 'web', path: '/', timeout: 5000 });
  assert.equal(res.statusCode, 200);
});

test('the timeout aborts a call whose answer is late', async () => {
  const started = Date.now();
  let completed = false;
  const error = await client()
    .callHTTPFunction({ name: 'web', path: '/late', timeout: 300, complete: () => (completed = true) })
    .catch((err) => err);
  assert.equal(error.errCode, -504003);
  assert.equal(error.errMsg, 'cloud.callHTTPFunction:fail timeout');
  assert.ok(completed);
  assert.ok(Date.now() - started < 2500);
});

test('abort() ends a call in flight', async () => {
  const call = client().callHTTPFunction({ name: 'web', path: '/late' });
  setTimeout(() => call.abort(), 100);
  const error = await call.catch((err) => err);
  assert.equal(error.errMsg, 'cloud.callHTTPFunction:fail abort');
  assert.equal(error.code, 'ABORTED');
  assert.equal(error.errCode, -1);
});
