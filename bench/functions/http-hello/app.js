// The least an HTTP function can do: Node's http module answering every request with "hello".
// It listens on PORT when given one (the benchmark starts it directly that way), else on 9000,
// CloudBase's port, which Cloudlet maps to the instance's own.
require('http').createServer((req, res) => res.end('hello')).listen(process.env.PORT || 9000);
