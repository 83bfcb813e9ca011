// The JavaScript half of an instance: CommonJS `require` over the package's
// in-memory files, timers, `process`, and the driver that calls the handler.
//
// It runs once per instance, before the function's own module. `host` holds
// the Rust functions it needs (file access to the package only, module
// compilation, built-in modules, a monotonic clock). Everything lives in JS so
// that the Rust side never has to keep JS callbacks across await points.
//
// It is an ES module (strict mode) so that it can be compiled to bytecode once
// per process and loaded from that by every instance (host.rs).
export default function bootstrap(host) {
  const ROOT = '/var/user/';

  // ---- timers ---------------------------------------------------------------
  // Written here rather than taken from llrt_timers: that crate keeps one
  // process-wide list of runtimes, keyed by raw pointer and never pruned, and
  // drives timers from its own task. Instances here are created and discarded
  // all the time, and every timer must be bounded by its invocation's deadline
  // and dropped with its instance, so the event loop below owns them.
  const timers = new Map();
  let nextTimerId = 1;

  class Timeout {
    constructor(id, fn, args, delay, repeat) {
      this._id = id; this._fn = fn; this._args = args; this._delay = delay;
      this._repeat = repeat; this._ref = true; this._due = Date.now() + delay;
    }
    ref() { this._ref = true; return this; }
    unref() { this._ref = false; return this; }
    hasRef() { return this._ref; }
    refresh() { this._due = Date.now() + this._delay; return this; }
    close() { timers.delete(this._id); return this; }
    [Symbol.toPrimitive]() { return this._id; }
  }

  function addTimer(fn, delay, args, repeat) {
    if (typeof fn !== 'function') {
      throw new TypeError('The "callback" argument must be of type function. Received ' + typeof fn);
    }
    delay = Number(delay);
    if (!(delay >= 1 && delay <= 2147483647)) delay = repeat ? 1 : 0;
    const t = new Timeout(nextTimerId++, fn, args, delay, repeat);
    timers.set(t._id, t);
    return t;
  }

  function clearTimer(t) {
    if (t == null) return;
    timers.delete(typeof t === 'object' ? t._id : Number(t));
  }

  const timerApi = {
    setTimeout: (fn, delay, ...args) => addTimer(fn, delay, args, false),
    setInterval: (fn, delay, ...args) => addTimer(fn, delay, args, true),
    setImmediate: (fn, ...args) => addTimer(fn, 0, args, false),
    clearTimeout: clearTimer,
    clearInterval: clearTimer,
    clearImmediate: clearTimer,
    queueMicrotask: (fn) => { Promise.resolve().then(fn); },
  };
  Object.assign(globalThis, timerApi);

  // Runs the timers that are due, in due order. Called by the event loop in Rust.
  function runDueTimers() {
    const now = Date.now();
    const due = [];
    for (const t of timers.values()) if (t._due <= now) due.push(t);
    due.sort((a, b) => a._due - b._due || a._id - b._id);
    for (const t of due) {
      if (!timers.has(t._id)) continue; // cleared by an earlier callback
      if (t._repeat) t._due = now + t._delay; else timers.delete(t._id);
      t._fn.apply(undefined, t._args);
    }
  }

  // Milliseconds until the next referenced timer, or -1 when none keeps the loop alive.
  function msUntilNextTimer() {
    let next = Infinity;
    for (const t of timers.values()) if (t._ref && t._due < next) next = t._due;
    return next === Infinity ? -1 : Math.max(0, next - Date.now());
  }

  // ---- process --------------------------------------------------------------
  const hrtime = (prev) => {
    const ns = host.monotonicNs();
    let s = Math.floor(ns / 1e9), n = Math.floor(ns % 1e9);
    if (prev) { s -= prev[0]; n -= prev[1]; if (n < 0) { s -= 1; n += 1e9; } }
    return [s, n];
  };
  hrtime.bigint = () => BigInt(Math.floor(host.monotonicNs()));
  const process = {
    env: host.env,
    argv: ['node', ROOT + 'index.js'],
    platform: 'linux',
    version: 'v18.15.0',
    versions: { node: '18.15.0' },
    pid: 1,
    cwd: () => ROOT.slice(0, -1),
    hrtime,
    nextTick: (fn, ...args) => { Promise.resolve().then(() => fn(...args)); },
    emitWarning: (w) => console.warn(String(w && w.message || w)),
    uptime: () => host.monotonicNs() / 1e9,
    memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0 }),
  };
  globalThis.process = process;
  globalThis.global = globalThis;
  globalThis.performance = { now: () => host.monotonicNs() / 1e6, timeOrigin: Date.now() };

  // Node's Buffer serialises as {"type":"Buffer","data":[...]} (clients depend on
  // it: wx-server-sdk sends Buffers that way); LLRT's Buffer has no toJSON.
  Object.defineProperty(Buffer.prototype, 'toJSON', {
    value: function toJSON() { return { type: 'Buffer', data: Array.from(this) }; },
    writable: true, configurable: true, enumerable: false,
  });

  // LLRT's Buffer lacks Node's single-byte and URL-safe encodings: it rejects
  // 'binary' and 'base64url', and treats 'latin1' and 'ascii' as UTF-8. Code
  // that decrypts or signs data (WeChat's data decryption, JWT libraries) uses
  // them, so they are done here, one byte per character as in Node.
  (function patchBufferEncodings() {
    const encodingOf = (e) => (typeof e === 'string' ? e.toLowerCase() : undefined);
    const SINGLE_BYTE = { latin1: true, binary: true, ascii: true };
    const from = Buffer.from;
    const toString = Buffer.prototype.toString;
    const byteLength = Buffer.byteLength;
    const isEncoding = Buffer.isEncoding;

    function singleByteBytes(string) {
      const bytes = new Uint8Array(string.length);
      for (let i = 0; i < string.length; i++) bytes[i] = string.charCodeAt(i) & 0xff;
      return bytes;
    }
    function base64FromUrl(string) {
      const base64 = string.replace(/[\s=]+/g, '').replace(/-/g, '+').replace(/_/g, '/');
      return base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    }

    Buffer.from = function (value, encodingOrOffset, length) {
      const encoding = typeof value === 'string' ? encodingOf(encodingOrOffset) : undefined;
      if (encoding !== undefined && SINGLE_BYTE[encoding]) return from.call(this, singleByteBytes(value));
      if (encoding === 'base64url' || encoding === 'base64') return from.call(this, base64FromUrl(value), 'base64');
      // LLRT's natives treat an explicit `undefined` argument as an error: pass on only what was given.
      return from.apply(this, arguments);
    };
    Object.defineProperty(Buffer.prototype, 'toString', {
      value: function (encoding, start, end) {
        const name = encodingOf(encoding);
        if (name !== undefined && (SINGLE_BYTE[name] || name === 'base64url')) {
          const bytes = start === undefined && end === undefined ? this : this.subarray(start, end);
          if (name === 'base64url') {
            return toString.call(bytes, 'base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
          }
          const mask = name === 'ascii' ? 0x7f : 0xff;
          let out = '';
          for (let i = 0; i < bytes.length; i += 8192) {
            const chunk = bytes.subarray(i, i + 8192);
            out += String.fromCharCode.apply(null, mask === 0xff ? chunk : Array.from(chunk, (b) => b & mask));
          }
          return out;
        }
        return toString.apply(this, arguments);
      },
      writable: true, configurable: true, enumerable: false,
    });
    Buffer.byteLength = function (value, encoding) {
      const name = typeof value === 'string' ? encodingOf(encoding) : undefined;
      if (name !== undefined && SINGLE_BYTE[name]) return value.length;
      if (name === 'base64url') return Buffer.from(value, 'base64url').length;
      return byteLength.apply(this, arguments);
    };
    Buffer.isEncoding = function (encoding) {
      const name = encodingOf(encoding);
      return (name !== undefined && (SINGLE_BYTE[name] || name === 'base64url')) || isEncoding.apply(this, arguments);
    };
  })();

  // ---- require --------------------------------------------------------------
  const cache = Object.create(null);
  const builtinCache = Object.create(null);

  function normalize(path) {
    const out = [];
    for (const part of path.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') { if (out.length === 0) return null; out.pop(); } else out.push(part);
    }
    return out.join('/');
  }
  const dirOf = (p) => { const i = p.lastIndexOf('/'); return i < 0 ? '' : p.slice(0, i); };
  const join = (a, b) => (a === '' ? b : a + '/' + b);

  function tryFile(p) {
    if (p === null) return null;
    for (const candidate of [p, p + '.js', p + '.json', p + '.cjs']) {
      if (candidate !== '' && host.hasFile(candidate)) return candidate;
    }
    return null;
  }

  function tryDirectory(p) {
    if (p === null) return null;
    const pkgPath = join(p, 'package.json');
    if (host.hasFile(pkgPath)) {
      let main;
      try { main = JSON.parse(host.readFile(pkgPath)).main; } catch (e) { main = undefined; }
      if (typeof main === 'string' && main !== '') {
        const target = normalize(join(p, main));
        const found = tryFile(target) || tryFile(target === null ? null : join(target, 'index'));
        if (found) return found;
      }
    }
    return tryFile(join(p, 'index'));
  }

  function notFound(request, fromDir, hint) {
    const err = new Error("Cannot find module '" + request + "' from '" + ROOT + fromDir + "'" + (hint ? ': ' + hint : ''));
    err.code = 'MODULE_NOT_FOUND';
    return err;
  }

  function resolve(request, fromDir) {
    if (typeof request !== 'string' || request === '') {
      throw new TypeError('The "id" argument must be a non-empty string');
    }
    const bare = request.startsWith('node:') ? request.slice(5) : request;
    if (host.isBuiltin(bare)) return { builtin: bare };
    const denied = host.isDenied(bare);
    if (denied) throw notFound(request, fromDir, denied);
    if (request.startsWith(ROOT)) request = request.slice(ROOT.length - 1);
    if (request.startsWith('./') || request.startsWith('../') || request.startsWith('/') || request === '.' || request === '..') {
      const base = normalize(request.startsWith('/') ? request : join(fromDir, request));
      const found = tryFile(base) || tryDirectory(base);
      if (found) return { path: found };
      throw notFound(request, fromDir);
    }
    let dir = fromDir;
    for (;;) {
      const base = normalize(join(join(dir, 'node_modules'), request));
      const found = tryFile(base) || tryDirectory(base);
      if (found) return { path: found };
      if (dir === '') break;
      dir = dirOf(dir);
    }
    throw notFound(request, fromDir);
  }

  function loadBuiltin(name) {
    if (name in builtinCache) return builtinCache[name];
    let exports;
    if (name === 'timers') exports = Object.assign({}, timerApi);
    else if (name === 'process') exports = process;
    else if (name === 'console') exports = console;
    else exports = host.builtin(name);
    if (name === 'events' && exports && typeof exports.EventEmitter === 'function') {
      // Node: require('events') is EventEmitter itself, with the named exports on it.
      const EventEmitter = exports.EventEmitter;
      for (const key of Object.keys(exports)) if (!(key in EventEmitter)) EventEmitter[key] = exports[key];
      EventEmitter.EventEmitter = EventEmitter;
      exports = EventEmitter;
    }
    if (name === 'util') exports = extendUtil(exports);
    if (name === 'crypto') {
      exports = nodeCrypto(exports);
      // Node's global `crypto` is the Web Crypto object; from now on a plain property.
      Object.defineProperty(globalThis, 'crypto', { value: exports.webcrypto, writable: true, configurable: true, enumerable: false });
    }
    builtinCache[name] = exports;
    return exports;
  }

  // The global `crypto` loads the module on first use, so instances that never
  // touch it do not pay for it at cold start.
  Object.defineProperty(globalThis, 'crypto', {
    configurable: true,
    enumerable: false,
    get() { return loadBuiltin('crypto').webcrypto; },
    set(value) { Object.defineProperty(globalThis, 'crypto', { value, writable: true, configurable: true, enumerable: false }); },
  });

  // Node's crypto API over LLRT's hashes, HMACs and random bytes. LLRT's own
  // functions take UTF-8 strings or bytes and encode digests only as hex or
  // base64; Node takes input encodings and gives digests in any Buffer
  // encoding, validates its arguments with RangeErrors, and calls callbacks
  // asynchronously. HMAC-MD5 (which LLRT's ring provider lacks) is the RFC 2104
  // construction over LLRT's MD5.
  function nodeCrypto(base) {
    const HASHES = ['md5', 'sha1', 'sha256', 'sha384', 'sha512'];
    const ALIASES = {
      'sha-1': 'sha1', 'sha-256': 'sha256', 'sha-384': 'sha384', 'sha-512': 'sha512',
      'rsa-md5': 'md5', 'rsa-sha1': 'sha1', 'rsa-sha256': 'sha256', 'rsa-sha384': 'sha384', 'rsa-sha512': 'sha512',
    };

    function digestName(name) {
      const lower = String(name).toLowerCase();
      const canonical = ALIASES[lower] || lower;
      if (!HASHES.includes(canonical)) {
        throw new Error('Digest method not supported: ' + name + ' (available: ' + HASHES.join(', ') + ')');
      }
      return canonical;
    }

    function invalidType(what, value) {
      const err = new TypeError('The "' + what + '" argument must be of type string or an instance of Buffer, TypedArray, or DataView. Received ' + (value === null ? 'null' : typeof value));
      err.code = 'ERR_INVALID_ARG_TYPE';
      return err;
    }

    function outOfRange(what, range, value) {
      const err = new RangeError('The value of "' + what + '" is out of range. It must be ' + range + '. Received ' + value);
      err.code = 'ERR_OUT_OF_RANGE';
      return err;
    }

    // Any accepted input as a Uint8Array over the same memory.
    function bytesOf(data, encoding, what) {
      if (typeof data === 'string') return Buffer.from(data, encoding === undefined || encoding === 'buffer' ? 'utf8' : encoding);
      if (data instanceof Uint8Array) return data;
      if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (data instanceof ArrayBuffer) return new Uint8Array(data);
      throw invalidType(what, data);
    }

    function encodeDigest(bytes, encoding) {
      const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      return encoding === undefined || encoding === 'buffer' ? buffer : buffer.toString(encoding);
    }

    class Md5Hmac {
      constructor(key) {
        let k = bytesOf(key, undefined, 'key');
        if (k.length > 64) k = base.createHash('md5').update(k).digest();
        const inner = new Uint8Array(64).fill(0x36);
        const outer = new Uint8Array(64).fill(0x5c);
        for (let i = 0; i < k.length; i++) { inner[i] ^= k[i]; outer[i] ^= k[i]; }
        this._inner = base.createHash('md5').update(inner);
        this._outer = outer;
      }
      update(bytes) { this._inner.update(bytes); }
      digest() { return base.createHash('md5').update(this._outer).update(this._inner.digest()).digest(); }
    }

    class Hash {
      constructor(inner) { this._inner = inner; this._finished = false; }
      update(data, inputEncoding) {
        if (this._finished) throw Object.assign(new Error('Digest already called'), { code: 'ERR_CRYPTO_HASH_FINALIZED' });
        this._inner.update(bytesOf(data, inputEncoding, 'data'));
        return this;
      }
      digest(encoding) {
        if (this._finished) throw Object.assign(new Error('Digest already called'), { code: 'ERR_CRYPTO_HASH_FINALIZED' });
        this._finished = true;
        return encodeDigest(this._inner.digest(), encoding);
      }
    }
    class Hmac extends Hash {}

    function createHash(algorithm) {
      return new Hash(base.createHash(digestName(algorithm)));
    }

    function createHmac(algorithm, key) {
      const name = digestName(algorithm);
      const keyBytes = bytesOf(key, undefined, 'key');
      return new Hmac(name === 'md5' ? new Md5Hmac(keyBytes) : base.createHmac(name, keyBytes));
    }

    const MAX_RANDOM_BYTES = 2147483647;

    function checkSize(what, value, max) {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        throw Object.assign(new TypeError('The "' + what + '" argument must be an integer. Received ' + typeof value), { code: 'ERR_INVALID_ARG_TYPE' });
      }
      if (value < 0 || value > max) throw outOfRange(what, '>= 0 && <= ' + max, value);
    }

    const later = (fn) => Promise.resolve().then(fn);

    function randomBytes(size, callback) {
      checkSize('size', size, MAX_RANDOM_BYTES);
      const bytes = base.randomBytes(size);
      if (typeof callback !== 'function') return bytes;
      later(() => callback(null, bytes));
    }

    function randomFillSync(target, offset, size) {
      const view = bytesOf(target, undefined, 'buf');
      offset = offset === undefined ? 0 : offset;
      checkSize('offset', offset, view.length);
      size = size === undefined ? view.length - offset : size;
      checkSize('size', size, view.length - offset);
      if (size > 0) view.set(base.randomBytes(size), offset);
      return target;
    }

    function randomFill(target, ...rest) {
      const callback = rest.pop();
      if (typeof callback !== 'function') {
        throw Object.assign(new TypeError('The "callback" argument must be of type function'), { code: 'ERR_INVALID_ARG_TYPE' });
      }
      randomFillSync(target, rest[0], rest[1]);
      later(() => callback(null, target));
    }

    function randomInt(min, max, callback) {
      if (max === undefined || typeof max === 'function') { callback = max; max = min; min = 0; }
      if (!Number.isSafeInteger(min)) throw Object.assign(new TypeError('The "min" argument must be a safe integer'), { code: 'ERR_INVALID_ARG_TYPE' });
      if (!Number.isSafeInteger(max)) throw Object.assign(new TypeError('The "max" argument must be a safe integer'), { code: 'ERR_INVALID_ARG_TYPE' });
      if (max <= min) throw outOfRange('max', 'greater than the value of "min" (' + min + ')', max);
      const range = max - min;
      if (range > 2 ** 48) throw outOfRange('max - min', '<= 281474976710655', range);
      // Rejection sampling over 48 random bits, so every value is equally likely.
      const limit = 2 ** 48 - (2 ** 48 % range);
      let value;
      do {
        const b = base.randomBytes(6);
        value = ((b[0] * 256 + b[1]) * 256 + b[2]) * 2 ** 24 + ((b[3] * 256 + b[4]) * 256 + b[5]);
      } while (value >= limit);
      const result = min + (value % range);
      if (typeof callback !== 'function') return result;
      later(() => callback(null, result));
    }

    function getRandomValues(array) {
      if (!ArrayBuffer.isView(array) || array instanceof DataView || array instanceof Float32Array || array instanceof Float64Array) {
        throw Object.assign(new TypeError('The data argument must be an integer-type TypedArray'), { name: 'TypeMismatchError', code: 17 });
      }
      if (array.byteLength > 65536) {
        throw Object.assign(new Error("The ArrayBufferView's byte length (" + array.byteLength + ') exceeds the number of bytes of entropy available via this API (65536)'), { name: 'QuotaExceededError', code: 22 });
      }
      randomFillSync(array);
      return array;
    }

    function timingSafeEqual(a, b) {
      const x = bytesOf(a, undefined, 'buf1');
      const y = bytesOf(b, undefined, 'buf2');
      if (x.length !== y.length) {
        throw Object.assign(new RangeError('Input buffers must have the same byte length'), { code: 'ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH' });
      }
      let diff = 0;
      for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
      return diff === 0;
    }

    const randomUUID = () => base.randomUUID();

    const subtle = {
      // The one Web Crypto operation function code commonly uses; keys, signing
      // and ciphers are not available on the js engine.
      digest(algorithm, data) {
        try {
          const name = typeof algorithm === 'object' && algorithm !== null ? algorithm.name : algorithm;
          const digest = createHash(name).update(bytesOf(data, undefined, 'data')).digest();
          return Promise.resolve(digest.buffer.slice(digest.byteOffset, digest.byteOffset + digest.byteLength));
        } catch (e) {
          return Promise.reject(e);
        }
      },
    };
    const webcrypto = { getRandomValues, randomUUID, subtle };

    return {
      createHash, createHmac, Hash, Hmac,
      getHashes: () => HASHES.slice(),
      randomBytes, pseudoRandomBytes: randomBytes, randomFillSync, randomFill, randomInt, randomUUID,
      getRandomValues, timingSafeEqual,
      webcrypto, subtle, constants: {},
    };
  }

  // LLRT's util has format, inherits and the text codecs; these are the other
  // parts of Node's util that function code commonly reaches for.
  function extendUtil(base) {
    const util = Object.assign({}, base);
    const custom = Symbol.for('nodejs.util.promisify.custom');
    util.promisify = function promisify(fn) {
      if (typeof fn !== 'function') throw new TypeError('The "original" argument must be of type function');
      if (fn[custom]) return fn[custom];
      return function (...args) {
        return new Promise((resolve, reject) => {
          fn.call(this, ...args, (err, ...values) => (err ? reject(err) : resolve(values.length > 1 ? values : values[0])));
        });
      };
    };
    util.promisify.custom = custom;
    util.callbackify = (fn) => function (...args) {
      const cb = args.pop();
      fn.apply(this, args).then((v) => cb(null, v), (e) => cb(e));
    };
    util.deprecate = (fn) => fn;
    util.inspect = (value) => base.format('%O', value);
    util.isDeepStrictEqual = (a, b) => JSON.stringify(a) === JSON.stringify(b);
    util.types = {
      isPromise: (v) => v instanceof Promise,
      isDate: (v) => v instanceof Date,
      isRegExp: (v) => v instanceof RegExp,
      isUint8Array: (v) => v instanceof Uint8Array,
    };
    return util;
  }

  function makeRequire(fromDir) {
    const require = (request) => {
      const target = resolve(request, fromDir);
      return target.builtin !== undefined ? loadBuiltin(target.builtin) : loadFile(target.path);
    };
    require.resolve = (request) => {
      const target = resolve(request, fromDir);
      return target.builtin !== undefined ? target.builtin : ROOT + target.path;
    };
    require.cache = cache;
    return require;
  }

  function loadFile(path) {
    const cached = cache[path];
    if (cached) return cached.exports;
    const module = { id: ROOT + path, filename: ROOT + path, path: ROOT + dirOf(path), exports: {}, loaded: false, children: [] };
    cache[path] = module;
    try {
      const source = host.readFile(path);
      if (path.endsWith('.json')) {
        module.exports = JSON.parse(source);
      } else {
        const wrapper = host.compile(source, ROOT + path);
        module.require = makeRequire(dirOf(path));
        wrapper.call(module.exports, module.exports, module.require, module, ROOT + path, ROOT + dirOf(path));
      }
    } catch (e) {
      delete cache[path];
      throw e;
    }
    module.loaded = true;
    return module.exports;
  }

  // ---- the driver -----------------------------------------------------------
  // One invocation at a time per instance. `state` is what Rust reads after
  // every turn of the event loop: a result from the callback or a plain return
  // value lands in it directly; a returned promise is left in `state.promise`
  // and Rust reads its state, which spares two closures and a derived promise
  // per invocation.
  const state = { settled: false, failed: false, value: undefined, error: undefined, promise: undefined, callbackStyle: false, returned: undefined };
  let handler = null;
  let meta = null;
  let current = 0;
  const DEADLINE = Symbol('deadline');

  function getRemainingTimeInMillis() {
    return Math.max(0, this[DEADLINE] - Date.now());
  }

  function load(modulePath, exportName, functionMeta) {
    meta = functionMeta;
    const exports = loadFile(tryFile(modulePath) || modulePath + '.js');
    const fn = exports == null ? undefined : exports[exportName];
    if (typeof fn !== 'function') {
      throw new TypeError('the handler ' + modulePath + '.' + exportName + ' is ' +
        (fn === undefined ? 'not exported' : 'not a function') + ' by ' + ROOT + modulePath + '.js');
    }
    handler = fn;
    state.callbackStyle = fn.length >= 3;
  }

  function settle(id, failed, value) {
    if (id !== current) return; // a late result from an earlier invocation
    if (state.settled) {
      if (failed || value !== undefined) console.warn('the function produced a second result after the first; it is ignored');
      return;
    }
    state.settled = true; state.failed = failed;
    if (failed) state.error = value; else state.value = value;
  }

  function invoke(event, requestId, deadlineMs) {
    const id = ++current;
    state.settled = false; state.failed = false; state.value = undefined; state.error = undefined;
    state.promise = undefined; state.returned = undefined;
    if (timers.size !== 0) timers.clear();
    const context = {
      requestId,
      request_id: requestId,
      awsRequestId: requestId,
      functionName: meta.functionName,
      function_name: meta.functionName,
      functionVersion: meta.functionVersion,
      function_version: meta.functionVersion,
      namespace: meta.namespace,
      memory_limit_in_mb: meta.memoryLimitInMb,
      memoryLimitInMB: meta.memoryLimitInMB,
      time_limit_in_ms: meta.timeLimitInMs,
      environment: meta.environment,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis,
    };
    context[DEADLINE] = deadlineMs; // symbol-keyed: invisible to JSON and Object.keys
    // Handlers declared with a callback parameter get one; the first result wins.
    const callback = state.callbackStyle
      ? (err, value) => (err !== undefined && err !== null ? settle(id, true, err) : settle(id, false, value))
      : undefined;
    let returned;
    try {
      // A plain call: in strict code `this` is undefined, as with
      // `handler.call(undefined, …)`, without going through Function.prototype.call.
      returned = handler(event, context, callback);
    } catch (e) {
      settle(id, true, e);
      return;
    }
    if (returned instanceof Promise) {
      state.promise = returned;
    } else if (returned !== null && typeof returned === 'object' && typeof returned.then === 'function') {
      // A thenable that is not a native promise.
      state.promise = Promise.resolve(returned);
    } else if (!state.callbackStyle) {
      settle(id, false, returned);
    } else if (!(returned instanceof Timeout)) {
      // A callback handler's return value counts only if the callback is never
      // called (the seed `add` returns its sum); see settleIdle.
      state.returned = returned;
    }
  }

  // The event loop is empty and nothing settled: a callback handler's result is
  // the value it returned, or null (Lambda's rule). Returns false for promise
  // handlers, whose promise can no longer settle.
  function settleIdle() {
    if (!state.callbackStyle) return false;
    state.settled = true; state.failed = false; state.value = state.returned === undefined ? null : state.returned;
    return true;
  }

  return { load, invoke, settleIdle, state, runDueTimers, msUntilNextTimer };
}
