// Compiled with `tsc --noEmit --strict` by the tests: the types accept the
// seeds' code and refuse what the SDK refuses.
import cloud, { Cloud, CloudError, wx } from 'cloudlet-sdk';

cloud.init({ env: 'default', endpoint: 'http://127.0.0.1:8080', accessKey: 'pk_x', timeout: 5000 });

async function seed000(): Promise<number> {
  const res = await wx.cloud.callFunction<number>({ name: 'add', data: { x: 1, y: 2 } });
  return res.result;
}

wx.cloud.callFunction({
  name: 'add',
  data: { x: 1, y: 2 },
  success: (res) => console.log(res.result, res.requestID),
  fail: (err: CloudError) => console.log(err.errCode, err.errMsg, err.code),
  complete: () => {},
});

const task = wx.cloud.callHTTPFunction({
  name: 'express-sse',
  path: '/sse',
  method: 'GET',
  timeout: 1500,
  enableChunked: true,
  onHeadersReceived: (res) => console.log(res.statusCode, res.header),
  onChunkedReceived: (res) => console.log(new Uint8Array(res.data).length),
});
task.abort();

const other = new cloud.Cloud({ env: 'other' });
const sameClass: Cloud = other;
sameClass.callFunction({ name: 'add', data: { file: cloud.CDN(new ArrayBuffer(8)) }, config: { env: 'x' } });
sameClass.callFunction({ name: 'add', config: { async: true } }).then((res) => console.log(res.requestID));
cloud.CDN({ type: 'filePath', filePath: '/tmp/a' });

// @ts-expect-error: a call needs a function name.
cloud.callFunction({ data: {} });
// @ts-expect-error: CDN() takes no numbers.
cloud.CDN(42);

export { seed000 };

cloud.publish({ topic: 'rooms/kitchen/air', data: { co2: 410 } }).then((res) => console.log(res.messageId, res.deliveries));
cloud.publish({ topic: 'rooms/kitchen/air', data: 'text', success: (res) => console.log(res.errMsg) });
// @ts-expect-error: a publish needs a topic.
cloud.publish({ data: {} });
