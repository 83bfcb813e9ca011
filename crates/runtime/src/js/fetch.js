// `fetch` in the js engine. It reads the temporary objects that
// `cloud.CDN()` fields name from this server's store, and sends requests to
// the origins the server allows (`serve --js-fetch-allow`); the invoker's
// fetch.rs decides which, and refuses any other URL. Loaded on the first
// call of `fetch` (js/calls.rs), so that instances that never fetch do not
// carry it; `installObjects(settle, reset)` hands the engine its hooks and
// returns `start(url, method, headers, body)`. Compiled to bytecode once
// per process, like the bootstrap (host.rs).
export default function makeFetch(installObjects) {
  const encoder = new TextEncoder();

  class FetchHeaders {
    constructor(init) {
      this._map = new Map();
      if (init == null) return;
      if (typeof init.forEach === 'function' && !Array.isArray(init)) {
        init.forEach((value, name) => this.append(name, value));
      } else if (Array.isArray(init)) {
        for (const [name, value] of init) this.append(name, value);
      } else {
        for (const name of Object.keys(init)) this.append(name, init[name]);
      }
    }
    append(name, value) {
      const key = String(name).toLowerCase();
      const had = this._map.get(key);
      this._map.set(key, had === undefined ? String(value) : had + ', ' + value);
    }
    set(name, value) { this._map.set(String(name).toLowerCase(), String(value)); }
    delete(name) { this._map.delete(String(name).toLowerCase()); }
    get(name) { return this._map.get(String(name).toLowerCase()) ?? null; }
    has(name) { return this._map.has(String(name).toLowerCase()); }
    forEach(fn, self) { this._map.forEach((value, key) => fn.call(self, value, key, this)); }
    entries() { return this._map.entries(); }
    keys() { return this._map.keys(); }
    values() { return this._map.values(); }
    [Symbol.iterator]() { return this._map.entries(); }
  }

  class FetchResponse {
    constructor(url, status, statusText, headers, body) {
      this.url = url;
      this.status = status;
      this.ok = status >= 200 && status < 300;
      this.statusText = statusText;
      this.headers = headers;
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

  // The request body as an ArrayBuffer, and the content type it implies.
  const bodyOf = (body) => {
    if (body == null) return [new ArrayBuffer(0), null];
    if (typeof body === 'string') return [encoder.encode(body).buffer, 'text/plain;charset=UTF-8'];
    if (body instanceof ArrayBuffer) return [body.slice(0), null];
    if (ArrayBuffer.isView(body)) {
      return [body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength), null];
    }
    if (typeof URLSearchParams === 'function' && body instanceof URLSearchParams) {
      return [encoder.encode(body.toString()).buffer, 'application/x-www-form-urlencoded;charset=UTF-8'];
    }
    return [encoder.encode(String(body)).buffer, 'text/plain;charset=UTF-8'];
  };

  const pending = new Map();
  let start = null;
  // The engine's answer: a status, its reason, headers (names and values
  // in turn) and the body; or (status 0) why there is none.
  const settle = (id, status, statusTextOrReason, headers, body) => {
    const waiting = pending.get(id);
    if (!waiting) return;
    pending.delete(id);
    if (status === 0) {
      waiting.reject(new TypeError('fetch failed: ' + statusTextOrReason));
      return;
    }
    const pairs = [];
    for (let i = 0; i + 1 < headers.length; i += 2) pairs.push([headers[i], headers[i + 1]]);
    waiting.resolve(new FetchResponse(waiting.url, status, statusTextOrReason, new FetchHeaders(pairs), body));
  };
  const reset = () => pending.clear();
  return function fetch(input, init) {
    const request = typeof input === 'object' && input !== null && 'url' in input ? input : null;
    const url = String(request ? request.url : input);
    const method = String(init?.method ?? request?.method ?? 'GET').toUpperCase();
    const headers = new FetchHeaders(init?.headers ?? request?.headers);
    const given = init?.body ?? request?.body;
    if ((method === 'GET' || method === 'HEAD') && given != null) {
      return Promise.reject(new TypeError('Request with GET/HEAD method cannot have body.'));
    }
    const [body, type] = bodyOf(given);
    if (type !== null && !headers.has('content-type')) headers.set('content-type', type);
    const flat = [];
    headers.forEach((value, name) => flat.push(name, value));
    start = start || installObjects(settle, reset);
    return new Promise((resolve, reject) => {
      pending.set(start(url, method, flat, body), { resolve, reject, url });
    });
  };
}
