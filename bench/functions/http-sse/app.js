// Server-sent events: GET /?n=N&interval=MS writes N events, one every MS milliseconds, each
// carrying the wall-clock time (in ms, with µs resolution) at which it was written, so that a
// client on the same machine can tell how long each event took to reach it.
const http = require('http');
const { performance } = require('perf_hooks');

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const n = Number(url.searchParams.get('n') || 100);
  const interval = Number(url.searchParams.get('interval') || 15);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let sent = 0;
  const timer = setInterval(() => {
    const now = performance.timeOrigin + performance.now();
    res.write(`id: ${sent}\ndata: ${now.toFixed(3)}\n\n`);
    if (++sent >= n) {
      clearInterval(timer);
      res.end();
    }
  }, interval);
  req.on('close', () => clearInterval(timer));
}).listen(process.env.PORT || 9000);
