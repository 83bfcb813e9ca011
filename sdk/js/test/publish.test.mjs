// cloud.publish against a real `cloudlet serve`: a message reaches the
// functions subscribed to its topic through the durable queue.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { jsFunction, sdk, startServer } from './server.mjs';

let server;
let key;
let publishable;
let Cloud;

const KIND = `exports.main = async (event) => Buffer.isBuffer(event) ? 'buffer ' + event.toString('hex') : event\n`;

before(async () => {
  ({ Cloud } = await sdk());
  server = await startServer();
  const triggers = [{ name: 'in', type: 'topic', config: 'rooms/+/air' }];
  server.deploy('air', jsFunction(KIND, { timeout: 10, triggers }));
  key = server.cli('envs', 'key', 'default');
  publishable = server.cli('envs', 'key', 'default', '--publishable');
});

after(() => server?.stop());

const client = () => new Cloud({ endpoint: server.url, accessKey: publishable });

/** The record of the delivery of `messageId` to `air`, once it succeeded. */
async function delivery(messageId) {
  const url = `${server.url}/v1/envs/default/invocations/msg:${messageId}:air`;
  let record;
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
    if (response.ok) record = await response.json();
    if (record?.status === 'succeeded') return record;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`the delivery of ${messageId} never succeeded: ${JSON.stringify(record)}`);
}

test('an object is delivered as JSON to each subscriber and publish answers with its message ID', async () => {
  const res = await client().publish({ topic: 'rooms/kitchen/air', data: { co2: 410 } });
  assert.equal(res.errMsg, 'cloud.publish:ok');
  assert.equal(res.deliveries, 1);
  const record = await delivery(res.messageId);
  assert.equal(record.result, '{"co2":410}');
  assert.equal(record.trigger, 'topic:rooms/kitchen/air');
});

test('a string arrives as text and bytes as a Buffer', async () => {
  const text = await client().publish({ topic: 'rooms/hall/air', data: 'stale' });
  assert.equal((await delivery(text.messageId)).result, '"stale"');
  const bytes = await client().publish({ topic: 'rooms/hall/air', data: new Uint8Array([7, 8]) });
  assert.equal((await delivery(bytes.messageId)).result, '"buffer 0708"');
});

test('a topic with a level that needs encoding keeps its levels', async () => {
  const res = await client().publish({ topic: 'rooms/living room/air', data: {} });
  assert.equal(res.deliveries, 1);
  assert.equal((await delivery(res.messageId)).trigger, 'topic:rooms/living room/air');
});

test('a topic nobody subscribes to is accepted with no deliveries', async () => {
  const res = await client().publish({ topic: 'garden/air', data: {} });
  assert.equal(res.deliveries, 0);
});

test('a wildcard in the topic fails with INVALID_PARAM through fail and complete', async () => {
  const seen = [];
  await client()
    .publish({
      topic: 'rooms/#',
      fail: (err) => seen.push(['fail', err.code, err.errCode]),
      complete: () => seen.push(['complete']),
    })
    .catch(() => {});
  assert.deepEqual(seen, [['fail', 'INVALID_PARAM', -401002], ['complete']]);
});

test('a publish without a topic is refused before any request', async () => {
  await assert.rejects(client().publish({ data: {} }), (err) => {
    assert.equal(err.code, 'INVALID_PARAM');
    assert.equal(err.errMsg, 'cloud.publish:fail topic must be a non-empty string');
    return true;
  });
});
