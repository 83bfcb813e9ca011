// Bare Node `http` baseline for bench/run.sh: serves the repo's examples/add function.
// Every POST (any path) runs JSON.stringify(await main(JSON.parse(body), { requestId })).
// Usage: node bench/baselines/node-server.js PORT
'use strict';
const http = require('http');
const path = require('path');
const crypto = require('crypto');
const { main } = require(path.join(__dirname, '..', '..', 'examples', 'add', 'index.js'));

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node node-server.js PORT');
  process.exit(2);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(405, { 'content-type': 'application/json' });
    res.end('{"error":"POST only"}');
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    try {
      const requestId = crypto.randomUUID();
      const out = JSON.stringify(await main(JSON.parse(Buffer.concat(chunks).toString()), { requestId }));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    } catch (e) {
      const out = JSON.stringify({ error: String(e) });
      res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    }
  });
});
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
