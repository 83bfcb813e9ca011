// context.sse() for the access phase: GET ?n=N&interval=MS sends N events, one every MS
// milliseconds, each carrying the wall-clock time (ms, µs resolution) at which it was sent, as
// bench/functions/http-sse does from a bare Node.js server.
exports.main = async (event, context) => {
  const sse = context.sse();
  const query = event.queryStringParameters || {};
  const n = Number(query.n || 100);
  const interval = Number(query.interval || 15);
  for (let i = 0; i < n; i++) {
    await new Promise((resolve) => setTimeout(resolve, interval));
    sse.send({ id: String(i), data: (performance.timeOrigin + performance.now()).toFixed(3) });
  }
  sse.end();
  return '';
};
