// The SDK's browser build in a real browser: Debian's chromium, driven by
// playwright-core, opens pages served over HTTP from origins of their own.
// The Rust test that runs this file installs both and names them in
// $CHROMIUM and NODE_PATH.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { REPO, SDK_DIR, jsFunction, readmeBlocks, startServer } from './server.mjs';

const require = createRequire(import.meta.url);
const EXAMPLES = join(REPO, 'examples');

// Seed 002's mini-program code for the Express SSE function, as written.
const SEED_SSE_PAGE_CODE = `wx.cloud.callHTTPFunction({
name: 'express-sse', // 根据需要修改为实际函数名
path: '/sse',
method: 'GET',
enableChunked: true,
onHeadersReceived: (res) => {
console.log("httpFn headers received", res)
},
onChunkedReceived: (res) => {
console.log("chunked",res)
const arrayBuffer = res.data;
const uint8Array = new Uint8Array(arrayBuffer);
let str = '';
for (let i = 0; i < uint8Array.length; i++) {
str += String.fromCharCode(uint8Array[i]);
}
// 尝试解码 utf-8
try {
const decodedStr = decodeURIComponent(escape(str));
console.log('SSE chunk received:', decodedStr);
} catch (e) {
console.log('SSE chunk received (raw):', str);
}
},
});`;

let server;
let browser;
let allowed;
let refused;

/**
 * Serves the README's page, which loads the SDK's browser build, pointed at
 * `endpoint` with `accessKey`.
 */
async function pageServer(endpoint, accessKey) {
  const sdk = readFileSync(join(SDK_DIR, 'cloudlet.browser.js'));
  const [readmePage] = readmeBlocks('html');
  const page = `<!doctype html><meta charset="utf-8"><title>Cloudlet SDK</title>\n${readmePage}`
    .replace("'http://127.0.0.1:8080'", JSON.stringify(endpoint))
    .replace("'pk_…'", JSON.stringify(accessKey));
  const pages = createServer((req, res) => {
    if (req.url === '/cloudlet.browser.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(sdk);
    }
    res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
    res.end(req.url === '/' ? page : '');
  });
  await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve));
  return { pages, origin: `http://127.0.0.1:${pages.address().port}` };
}

function example(name) {
  const files = {};
  for (const file of readdirSync(join(EXAMPLES, name))) files[file] = readFileSync(join(EXAMPLES, name, file), 'utf8');
  return files;
}

before(async () => {
  server = await startServer();
  server.deploy('add', jsFunction('exports.main = async (event, context) => event.x + event.y\n'));
  server.deploy(
    'measure',
    jsFunction(`exports.main = async (event) => {
  const answer = await fetch(event.file)
  return { type: answer.headers.get('content-type'), text: await answer.text() }
}
`),
  );
  server.deploy('express-sse', example('express-sse'));
  const key = server.cli('envs', 'key', 'default', '--publishable');
  allowed = await pageServer(server.url, key);
  refused = await pageServer(server.url, key);
  server.cli('envs', 'cors', 'default', '--origin', allowed.origin);
  const { chromium } = require('playwright-core');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    // This machine has no network beyond loopback: nothing of Chromium's own
    // may try to reach one.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  allowed?.pages.close();
  refused?.pages.close();
  server?.stop();
});

async function openPage(origin) {
  const page = await browser.newPage();
  await page.goto(`${origin}/`);
  return page;
}

test('a page on an allowed origin calls a function with wx.cloud.callFunction', async () => {
  const page = await openPage(allowed.origin);
  const res = await page.evaluate(async () => {
    const res = await wx.cloud.callFunction({ name: 'add', data: { x: 1, y: 2 } });
    return { result: res.result, errMsg: res.errMsg, requestID: res.requestID };
  });
  assert.deepEqual({ ...res, requestID: typeof res.requestID }, { result: 3, errMsg: 'cloud.callFunction:ok', requestID: 'string' });
  await page.close();
});

test('a page uploads a Blob marked with CDN() and the function reads it by URL', async () => {
  const page = await openPage(allowed.origin);
  const res = await page.evaluate(async () => {
    const file = new Blob(['made in a browser'], { type: 'text/plain' });
    const res = await wx.cloud.callFunction({ name: 'measure', data: { file: wx.cloud.CDN(file) } });
    return res.result;
  });
  assert.deepEqual(res, { type: 'text/plain', text: 'made in a browser' });
  await page.close();
});

test('the seed\'s SSE page code runs as written and logs each event as it comes', async () => {
  const page = await openPage(allowed.origin);
  const logged = [];
  const threeEvents = new Promise((resolve) => {
    page.on('console', (message) => {
      logged.push(message.text());
      if (logged.filter((text) => text.startsWith('SSE chunk received:')).length === 3) resolve();
    });
  });
  await page.addScriptTag({ content: SEED_SSE_PAGE_CODE });
  await threeEvents;
  // The README's page logs its own call's result too: look at the seed's lines.
  const seedLines = logged.filter((text) => /^(httpFn headers received|chunked|SSE chunk received)/.test(text));
  assert.ok(seedLines[0].startsWith('httpFn headers received'), seedLines[0]);
  const events = logged.filter((text) => text.startsWith('SSE chunk received:'));
  assert.equal(events[0], 'SSE chunk received: : keep-alive\n\n');
  for (const event of events.slice(1)) {
    const time = JSON.parse(event.match(/^SSE chunk received: data: (.*)\n\n$/)[1]).time;
    assert.ok(Math.abs(Date.parse(time) - Date.now()) < 5000, event);
  }
  await page.close();
});

test('a page reads an HTTP function\'s own headers', async () => {
  const page = await openPage(allowed.origin);
  const header = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const task = wx.cloud.callHTTPFunction({
          name: 'express-sse',
          path: '/sse',
          enableChunked: true,
          onHeadersReceived: (res) => {
            resolve(res.header);
            task.abort();
          },
        });
        task.catch(() => {});
      }),
  );
  assert.equal(header['x-powered-by'], 'Express');
  assert.equal(header['content-type'], 'text/event-stream');
  await page.close();
});

test('a page on an origin the env does not allow is refused', async () => {
  const page = await openPage(refused.origin);
  const error = await page.evaluate(async () => {
    try {
      await wx.cloud.callFunction({ name: 'add', data: { x: 1, y: 2 } });
      return null;
    } catch (error) {
      return { errMsg: error.errMsg, errCode: error.errCode, code: error.code };
    }
  });
  // The server refuses the preflight (403 CORS_ORIGIN_NOT_ALLOWED, in the
  // Rust access tests); a browser shows a refused preflight to the page
  // only as a failed fetch.
  assert.deepEqual(error, {
    errMsg: 'cloud.callFunction:fail request failed: Failed to fetch',
    errCode: -1,
    code: 'NETWORK_ERROR',
  });
  await page.close();
});
