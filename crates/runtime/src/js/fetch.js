// `fetch` in the js engine, for the temporary objects that `cloud.CDN()`
// fields name: the engine reads them from this server's store (the
// invoker's temporary.rs) and refuses any other URL, as it reaches no other
// host. Loaded on the first call of `fetch` (js/calls.rs), so that instances
// that never fetch do not carry it; `installObjects(settle, reset)` hands
// the engine its hooks and returns `start(url)`. Compiled to bytecode once
// per process, like the bootstrap (host.rs).
export default function makeFetch(installObjects) {
  class FetchHeaders {
    constructor(entries) { this._map = new Map(entries); }
    get(name) { return this._map.get(String(name).toLowerCase()) ?? null; }
    has(name) { return this._map.has(String(name).toLowerCase()); }
    forEach(fn, self) { this._map.forEach((value, key) => fn.call(self, value, key, this)); }
    entries() { return this._map.entries(); }
    keys() { return this._map.keys(); }
    values() { return this._map.values(); }
    [Symbol.iterator]() { return this._map.entries(); }
  }

  class FetchResponse {
    constructor(url, status, type, body) {
      this.url = url;
      this.status = status;
      this.ok = status >= 200 && status < 300;
      this.statusText = status === 200 ? 'OK' : 'Not Found';
      this.headers = new FetchHeaders([['content-type', type], ['content-length', String(body.byteLength)]]);
      this.redirected = false;
      this.type = 'basic';
      this._body = body;
    }
    get bodyUsed() { return this._body === null; }
    _take() {
      if (this._body === null) return Promise.reject(new TypeError('Body is unusable: Body has already been read'));
      const body = this._body;
      this._body = null;
      return Promise.resolve(body);
    }
    arrayBuffer() { return this._take(); }
    bytes() { return this._take().then((body) => new Uint8Array(body)); }
    text() { return this._take().then((body) => new TextDecoder().decode(body)); }
    json() { return this.text().then(JSON.parse); }
  }

  const pending = new Map();
  let start = null;
  // The engine's answer: a status and the object, or (status 0) why not.
  const settle = (id, status, typeOrReason, body) => {
    const waiting = pending.get(id);
    if (!waiting) return;
    pending.delete(id);
    if (status === 0) {
      const error = new TypeError('fetch failed: ' + typeOrReason);
      waiting.reject(error);
    } else {
      waiting.resolve(new FetchResponse(waiting.url, status, typeOrReason, waiting.head ? new ArrayBuffer(0) : body));
    }
  };
  const reset = () => pending.clear();
  return function fetch(input, init) {
    const url = String(typeof input === 'object' && input !== null && 'url' in input ? input.url : input);
    const method = String(init?.method ?? 'GET').toUpperCase();
    if (method !== 'GET' && method !== 'HEAD') {
      return Promise.reject(new TypeError('fetch failed: the js engine reads temporary objects with GET or HEAD only'));
    }
    start = start || installObjects(settle, reset);
    return new Promise((resolve, reject) => {
      pending.set(start(url), { resolve, reject, url, head: method === 'HEAD' });
    });
  };
}
