// The README's client-SDK example, run as written against a real server
// serving the repository's examples: only its server address and the SDK's
// path are swapped for the test's.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { REPO, SDK_DIR, readmeBlocks, startServer } from './server.mjs';

let server;
let key;

before(async () => {
  server = await startServer();
  for (const name of ['add', 'word-count', 'express-sse']) server.cli('deploy', join(REPO, 'examples', name));
  key = server.cli('envs', 'key', 'default', '--publishable');
});

after(() => server?.stop());

test('the README\'s Node.js example prints what its comments say', () => {
  const [example] = readmeBlocks('js');
  const script = example
    .replace("'./sdk/js/dist/cloudlet.mjs'", JSON.stringify(join(SDK_DIR, 'cloudlet.mjs')))
    .replace("'http://127.0.0.1:8080'", JSON.stringify(server.url));
  const file = join(mkdtempSync(join(tmpdir(), 'cloudlet-readme-')), 'example.mjs');
  writeFileSync(file, script);
  const printed = execFileSync('node', [file], { env: { ...process.env, CLOUDLET_KEY: key }, encoding: 'utf8' });
  const lines = printed.trim().split('\n');
  assert.equal(lines.length, 5, printed);
  assert.equal(lines[0], '3');
  assert.equal(lines[1], '6');
  assert.match(lines[2], /^data: \{"time":"[^"]+"\}$/);
  assert.equal(lines[3], 'cloud.callHTTPFunction:fail abort');
  assert.equal(lines[4], '-501000 FUNCTION_NOT_FOUND');
});
