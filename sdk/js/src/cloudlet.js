// The Cloudlet client SDK: `wx.cloud`'s API (callFunction, callHTTPFunction,
// CDN), and Cloudlet's publish, for web pages, Node.js scripts and mini-program code run in a browser,
// spoken to a Cloudlet server over its native HTTP API.
//
// One file with no imports and no dependencies: `build.mjs` makes the ESM,
// CommonJS and browser builds from it by rewriting the export line alone.

const VERSION = '0.1.0';

/** Seed 000's advice: fields above this size should be marked with `CDN()`. */
const LARGE_FIELD_BYTES = 256 * 1024;

/** Seed 002: a callHTTPFunction timeout must not pass this, unless `init` lifts it. */
const HTTP_TIMEOUT_LIMIT_MS = 1500;

/** The default client-side timeout of a call, as `wx.request`'s. */
const DEFAULT_TIMEOUT_MS = 60000;

// WeChat's client error codes (errCode), for Cloudlet's error codes. The
// table is documented in README.md ("Errors"); keep the two together.
const ERR_GENERAL = -1;
const ERR_PERMISSION = -401001;
const ERR_PARAM = -401002;
const ERR_PARAM_TYPE = -401003;
const ERR_UPLOAD_TOO_LARGE = -403001;
const ERR_FUNCTION_FAILED = -404011;
const ERR_NOT_FOUND = -501000;
const ERR_SYSTEM = -501001;
const ERR_TIMEOUT = -504003;

const ERR_CODES = {
  FUNCTION_INVOCATION_FAILED: ERR_FUNCTION_FAILED,
  FUNCTION_MEMORY_LIMIT_EXCEEDED: ERR_FUNCTION_FAILED,
  EXCEED_MAX_RESPONSE_SIZE: ERR_FUNCTION_FAILED,
  FUNCTION_TIME_LIMIT_EXCEEDED: ERR_TIMEOUT,
  FUNCTION_NOT_FOUND: ERR_NOT_FOUND,
  RESOURCE_NOT_FOUND: ERR_NOT_FOUND,
  INVALID_FUNCTION_TYPE: ERR_PARAM,
  INVALID_PARAM: ERR_PARAM,
  EXCEED_REQUEST_SIZE_LIMIT: ERR_PARAM,
  PERMISSION_DENIED: ERR_PERMISSION,
  CORS_ORIGIN_NOT_ALLOWED: ERR_PERMISSION,
  EXCEED_STORAGE_QUOTA: ERR_UPLOAD_TOO_LARGE,
  TIMEOUT: ERR_TIMEOUT,
};

/** The errCode WeChat's client gives for a Cloudlet error code. */
function errCodeOf(code) {
  return ERR_CODES[code] ?? ERR_SYSTEM;
}

/**
 * A failed call, shaped as WeChat's client reports it (`errCode`, `errMsg`),
 * with Cloudlet's own `code` and the `requestID` whose record tells more.
 */
class CloudError extends Error {
  constructor(api, errCode, message, code, requestID) {
    const errMsg = `${api}:fail ${message}`;
    super(errMsg);
    this.name = 'CloudError';
    this.errCode = errCode;
    this.errMsg = errMsg;
    this.code = code;
    this.requestID = requestID;
  }
}

/** A field marked with `cloud.CDN()`: uploaded before the call, replaced by its URL. */
class CDNField {
  constructor(target) {
    this.target = target;
  }
}

/**
 * One configured client: `cloud` is one, and `new Cloud(options)` makes
 * others (as `new wx.cloud.Cloud` does, for a second env or server).
 */
class Cloud {
  constructor(options) {
    this.options = null;
    this.warnedLargeField = false;
    if (options) this.init(options);
  }

  /**
   * `{env, endpoint, accessKey, timeout, maxHTTPTimeout}`: every field is
   * optional. In a browser `endpoint` defaults to the page's origin; in
   * Node.js to `$CLOUDLET_SERVER`, as the `cloudlet` command's.
   */
  init(options = {}) {
    const endpoint = options.endpoint ?? defaultEndpoint();
    this.options = {
      env: options.env ?? 'default',
      endpoint: endpoint && String(endpoint).replace(/\/+$/, ''),
      accessKey: options.accessKey ?? defaultAccessKey(),
      timeout: options.timeout ?? DEFAULT_TIMEOUT_MS,
      maxHTTPTimeout: options.maxHTTPTimeout ?? HTTP_TIMEOUT_LIMIT_MS,
    };
  }

  /** Marks a field to travel through temporary storage rather than inline. */
  CDN(target) {
    return new CDNField(target);
  }

  callFunction(params) {
    return settle('cloud.callFunction', params, () => this.invoke(params));
  }

  callHTTPFunction(params) {
    const controller = new AbortController();
    const promise = settle('cloud.callHTTPFunction', params, () =>
      this.request(params, controller),
    );
    // As `wx.request`'s task: the caller may abort a call in flight.
    promise.abort = () => controller.abort(new CloudError('cloud.callHTTPFunction', ERR_GENERAL, 'abort', 'ABORTED'));
    return promise;
  }

  async invoke(params) {
    const api = 'cloud.callFunction';
    const { name } = params ?? {};
    const { env, endpoint } = this.target(api, params, name);
    const data = await this.uploadMarked(api, env, params.data ?? {});
    const body = this.serialize(data);
    const url = `${endpoint}/v1/envs/${encodeURIComponent(env)}/functions/${encodeURIComponent(name)}`;
    const headers = this.headers({ 'content-type': 'application/json' });
    // Queued on the server's durable queue: answered once it is on disk,
    // with its request ID and no result (its record follows it).
    if (params.config?.async) headers['x-invocation-type'] = 'async';
    const timeout = params.config?.timeout ?? this.options.timeout;
    const init = { method: 'POST', headers, body };
    const { text, requestID } = await exchange(api, url, init, timeout, async (response, requestID) => ({
      text: await response.text(),
      requestID,
    }));
    if (params.config?.async) return { result: undefined, requestID, errMsg: `${api}:ok` };
    const result = text === '' ? undefined : JSON.parse(text);
    return { result, requestID, errMsg: `${api}:ok` };
  }

  /**
   * Publishes `data` to `topic` in the env: every function subscribed to
   * the topic gets it through the server's durable queue. Resolves once
   * each delivery is on disk, with the message's ID and how many there are.
   */
  publish(params) {
    return settle('cloud.publish', params, () => this.send(params));
  }

  async send(params) {
    const api = 'cloud.publish';
    const { topic } = params;
    if (typeof topic !== 'string' || topic === '') {
      throw new CloudError(api, ERR_PARAM, 'topic must be a non-empty string', 'INVALID_PARAM');
    }
    const { env, endpoint } = this.server(api, params);
    // The topic's levels stay apart: each is encoded, its `/`s are not.
    const path = topic.split('/').map(encodeURIComponent).join('/');
    const url = `${endpoint}/v1/envs/${encodeURIComponent(env)}/topics/${path}/messages`;
    const headers = this.headers({});
    const data = params.data ?? {};
    if (typeof data === 'string') headers['content-type'] = 'text/plain; charset=utf-8';
    if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) headers['content-type'] = 'application/octet-stream';
    const init = { method: 'POST', headers, body: requestBody(data, headers) };
    const timeout = params.config?.timeout ?? this.options.timeout;
    const published = await exchange(api, url, init, timeout, (response) => response.json());
    return { messageId: published.messageId, deliveries: published.deliveries, errMsg: `${api}:ok` };
  }

  async request(params, controller) {
    const api = 'cloud.callHTTPFunction';
    const timeout = this.httpTimeout(api, params.timeout);
    const { url, init } = this.webRequest(api, params);
    const deadline = new Deadline(api, timeout, controller);
    try {
      const response = await deadline.race(fetch(url, { ...init, signal: deadline.signal }));
      const header = headersObject(response.headers);
      const requestID = response.headers.get('x-request-id') ?? undefined;
      // Cloudlet marks its own errors, to tell them from the function's answers.
      if (response.headers.has('x-cloudlet-error')) throw await failure(api, response, requestID);
      const answer = { statusCode: response.status, header, requestID, errMsg: `${api}:ok` };
      if (params.enableChunked) {
        // A stream may go on for as long as the function runs: the
        // timeout covers the wait for its headers.
        deadline.clear();
        params.onHeadersReceived?.({ header, statusCode: response.status });
        answer.data = await deadline.race(readChunks(response, params.onChunkedReceived));
      } else {
        answer.data = await deadline.race(readBody(response, params));
      }
      return answer;
    } finally {
      deadline.clear();
    }
  }

  /** The URL and fetch options of a callHTTPFunction call, as `wx.request` builds them. */
  webRequest(api, params) {
    const { name } = params;
    const { env, endpoint } = this.target(api, params, name);
    const method = String(params.method ?? 'GET').toUpperCase();
    const path = params.path ?? '/';
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new CloudError(api, ERR_PARAM, 'path must be a string that starts with /', 'INVALID_PARAM');
    }
    let url = `${endpoint}/v1/envs/${encodeURIComponent(env)}/functions/${encodeURIComponent(name)}/web${path}`;
    const headers = this.headers(lowerKeys(params.header));
    const init = { method, headers };
    if (method === 'GET' || method === 'HEAD') {
      url = withQuery(url, params.data);
    } else if (params.data !== undefined) {
      init.body = requestBody(params.data, headers);
    }
    return { url, init };
  }

  /** The env and server a call goes to; refuses a call it cannot make. */
  target(api, params, name) {
    if (typeof name !== 'string' || name === '') {
      throw new CloudError(api, ERR_PARAM, 'name must be a non-empty string', 'INVALID_PARAM');
    }
    return this.server(api, params);
  }

  /** The env and server a request goes to, as `config.env` and `init` say. */
  server(api, params) {
    if (!this.options) this.init();
    const env = params.config?.env ?? this.options.env;
    const endpoint = this.options.endpoint;
    if (!endpoint) {
      throw new CloudError(api, ERR_PARAM, 'no endpoint: call cloud.init({endpoint}) first', 'INVALID_PARAM');
    }
    return { env, endpoint };
  }

  httpTimeout(api, timeout) {
    if (timeout === undefined) return this.options.timeout;
    if (typeof timeout !== 'number' || !(timeout > 0)) {
      throw new CloudError(api, ERR_PARAM_TYPE, 'timeout must be a positive number of milliseconds', 'INVALID_PARAM');
    }
    if (timeout > this.options.maxHTTPTimeout) {
      throw new CloudError(
        api,
        ERR_PARAM,
        `timeout must be at most ${this.options.maxHTTPTimeout} ms (cloud.init({maxHTTPTimeout}) raises the limit)`,
        'INVALID_PARAM',
      );
    }
    return timeout;
  }

  headers(extra) {
    const headers = { ...extra };
    if (this.options.accessKey) headers.authorization = `Bearer ${this.options.accessKey}`;
    return headers;
  }

  /** The event's JSON, binary values as seed 000 says a function sees them. */
  serialize(data) {
    const body = JSON.stringify(data, bufferAsJson);
    if (body.length > LARGE_FIELD_BYTES && !this.warnedLargeField) {
      this.warnLargeField(data);
    }
    return body;
  }

  // Only a large event pays for finding its large field.
  warnLargeField(data) {
    for (const [key, value] of Object.entries(data ?? {})) {
      const size = JSON.stringify(value, bufferAsJson)?.length ?? 0;
      if (size > LARGE_FIELD_BYTES) {
        this.warnedLargeField = true;
        console.warn(
          `cloudlet: data.${key} is ${size} bytes; fields over 256 KB travel better marked with cloud.CDN()`,
        );
        return;
      }
    }
  }

  /** Uploads every field marked with `CDN()` and puts its URL in its place. */
  async uploadMarked(api, env, data) {
    if (!hasMarked(data)) return data;
    const copy = Array.isArray(data) ? [...data] : { ...data };
    await Promise.all(
      Object.entries(copy).map(async ([key, value]) => {
        if (value instanceof CDNField) copy[key] = await this.upload(api, env, value.target);
        else if (hasMarked(value)) copy[key] = await this.uploadMarked(api, env, value);
      }),
    );
    return copy;
  }

  async upload(api, env, target) {
    const { body, type } = await uploadBody(api, target);
    const url = `${this.options.endpoint}/v1/envs/${encodeURIComponent(env)}/tmp`;
    const init = { method: 'POST', headers: this.headers({ 'content-type': type }), body };
    const object = await exchange(api, url, init, this.options.timeout, (response) => response.json());
    return object.url;
  }
}

/** Runs `call`, then the callbacks; the promise is the result either way. */
function settle(api, params, call) {
  const promise = (async () => {
    if (params === null || typeof params !== 'object') {
      throw new CloudError(api, ERR_PARAM_TYPE, 'the parameter must be an object', 'INVALID_PARAM');
    }
    return call();
  })().catch((error) => {
    throw error instanceof CloudError ? error : new CloudError(api, ERR_GENERAL, String(error?.message ?? error), 'SYS_ERR');
  });
  const { success, fail, complete } = params ?? {};
  if (!success && !fail && !complete) return promise;
  const done = promise.then(
    (answer) => {
      success?.(answer);
      complete?.(answer);
      return answer;
    },
    (error) => {
      fail?.(error);
      complete?.(error);
      throw error;
    },
  );
  // With callbacks, the caller may not look at the promise: its rejection
  // has been handed to `fail` and must not be reported as unhandled.
  done.catch(() => {});
  return done;
}

/** A call's client-side timeout: it aborts the fetch and is reported as a timeout. */
class Deadline {
  constructor(api, timeout, controller = new AbortController()) {
    this.api = api;
    this.signal = controller.signal;
    const timedOut = () => controller.abort(new CloudError(api, ERR_TIMEOUT, 'timeout', 'TIMEOUT'));
    // setTimeout fires at once past 2^31 - 1 ms: so long a timeout is none.
    const finite = Number.isFinite(timeout) && timeout < 2 ** 31;
    this.timer = finite ? setTimeout(timedOut, timeout) : undefined;
  }

  /** Awaits one step of a fetch; a failure comes out as a CloudError. */
  async race(step) {
    try {
      return await step;
    } catch (error) {
      if (this.signal.aborted) throw this.signal.reason;
      if (error instanceof CloudError) throw error;
      const reason = error?.cause?.message ?? error?.message ?? String(error);
      throw new CloudError(this.api, ERR_GENERAL, `request failed: ${reason}`, 'NETWORK_ERROR');
    }
  }

  clear() {
    clearTimeout(this.timer);
  }
}

/**
 * One request under a client timeout: a 2xx answer read by `read(response,
 * requestID)`, anything else a CloudError.
 */
async function exchange(api, url, init, timeout, read) {
  const deadline = new Deadline(api, timeout);
  try {
    const response = await deadline.race(fetch(url, { ...init, signal: deadline.signal }));
    const requestID = response.headers.get('x-request-id') ?? undefined;
    if (!response.ok) throw await failure(api, response, requestID);
    return await deadline.race(read(response, requestID));
  } finally {
    deadline.clear();
  }
}

/** The CloudError for an error answer of Cloudlet's. */
async function failure(api, response, requestID) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = { message: `HTTP ${response.status}` };
  }
  const code = body.code ?? 'SYS_ERR';
  const message = body.message ?? `HTTP ${response.status}`;
  return new CloudError(api, errCodeOf(code), message, code, body.requestId ?? requestID);
}

/** Reads a streamed body chunk by chunk, each handed on as an ArrayBuffer. */
async function readChunks(response, onChunk) {
  const parts = [];
  let length = 0;
  if (response.body) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      length += value.byteLength;
      onChunk?.({ data: value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) });
    }
  }
  const all = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.byteLength;
  }
  return all.buffer;
}

/** JSON.stringify's replacer for seed 000's rule on binary data. */
function bufferAsJson(_key, value) {
  if (value instanceof ArrayBuffer) return { type: 'Buffer', data: Array.from(new Uint8Array(value)) };
  if (ArrayBuffer.isView(value)) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    return { type: 'Buffer', data: Array.from(bytes) };
  }
  return value;
}

function hasMarked(value) {
  if (value instanceof CDNField) return true;
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return false;
  }
  return Object.values(value).some(hasMarked);
}

/** The bytes and type of a `CDN()` target. */
async function uploadBody(api, target) {
  if (typeof target === 'string') return { body: target, type: 'text/plain; charset=utf-8' };
  if (target instanceof ArrayBuffer || ArrayBuffer.isView(target)) {
    return { body: target, type: 'application/octet-stream' };
  }
  if (typeof Blob !== 'undefined' && target instanceof Blob) {
    return { body: target, type: target.type || 'application/octet-stream' };
  }
  if (target && target.type === 'filePath' && typeof target.filePath === 'string') {
    if (typeof process === 'undefined' || !process.versions?.node) {
      throw new CloudError(api, ERR_PARAM, 'CDN({type: "filePath"}) needs Node.js', 'INVALID_PARAM');
    }
    const { readFile } = await import('node:fs/promises');
    return { body: await readFile(target.filePath), type: 'application/octet-stream' };
  }
  throw new CloudError(
    api,
    ERR_PARAM_TYPE,
    'CDN() takes a string, an ArrayBuffer, a typed array, a Blob or {type: "filePath", filePath}',
    'INVALID_PARAM',
  );
}

/** An answer without streaming, as `dataType` and `responseType` ask. */
async function readBody(response, params) {
  if (params.responseType === 'arraybuffer') return response.arrayBuffer();
  const text = await response.text();
  return (params.dataType ?? 'json') === 'json' ? parseOrKeep(text) : text;
}

/** `wx.request`'s body: strings and bytes as they are, anything else as JSON. */
function requestBody(data, headers) {
  if (typeof data === 'string' || data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data;
  if (!('content-type' in headers)) headers['content-type'] = 'application/json';
  return JSON.stringify(data);
}

/** `wx.request`'s GET: an object's fields become the query string. */
function withQuery(url, data) {
  if (data === undefined || data === null) return url;
  const query =
    typeof data === 'string'
      ? data
      : Object.entries(data)
          .map(([key, value]) => {
            const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
            return `${encodeURIComponent(key)}=${encodeURIComponent(text)}`;
          })
          .join('&');
  if (query === '') return url;
  return `${url}${url.includes('?') ? '&' : '?'}${query}`;
}

function lowerKeys(header) {
  const headers = {};
  for (const [key, value] of Object.entries(header ?? {})) headers[key.toLowerCase()] = String(value);
  return headers;
}

function headersObject(headers) {
  const object = {};
  headers.forEach((value, key) => {
    object[key] = value;
  });
  return object;
}

function parseOrKeep(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function defaultEndpoint() {
  if (typeof location !== 'undefined' && location.origin && location.origin !== 'null') return location.origin;
  if (typeof process !== 'undefined') return process.env?.CLOUDLET_SERVER;
  return undefined;
}

function defaultAccessKey() {
  if (typeof process !== 'undefined') return process.env?.CLOUDLET_KEY;
  return undefined;
}

const cloud = new Cloud();
cloud.Cloud = Cloud;
/** `wx.cloud`: page code written for WeChat runs against `wx.cloud` unchanged. */
const wx = { cloud };

export { cloud, wx, Cloud, CloudError, VERSION };
export default cloud;
