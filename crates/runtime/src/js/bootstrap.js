// The JavaScript half of an instance: CommonJS `require` over the package's
// in-memory files, timers, `process`, `console`, and the driver that calls
// the handler.
//
// It runs once per instance, before the function's own module. `host` holds
// the Rust functions it needs (file access to the package only, module
// compilation, built-in modules and the engine's modules loaded on first use,
// log capture, the memory check, a monotonic clock). Everything lives in JS so
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
  // util.promisify(setTimeout) and (setImmediate) resolve with the value, as in Node.
  const promisifyCustom = Symbol.for('nodejs.util.promisify.custom');
  timerApi.setTimeout[promisifyCustom] = (delay, value) => new Promise((resolve) => addTimer(resolve, delay, [value], false));
  timerApi.setImmediate[promisifyCustom] = (value) => new Promise((resolve) => addTimer(resolve, 0, [value], false));
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

  // ---- console --------------------------------------------------------------
  // Lines go into the invocation's logs (host.rs caps them), formatted by
  // Node's util.format rules (inspect.js, loaded on the first line an
  // instance writes). Past the cap, lines are counted without being formatted.
  let formatting = null;
  const formatter = () => formatting || (formatting = host.engineModule('inspect')());
  // The rest of the environment that is made on first use (extras.js).
  let extrasModule = null;
  const extras = () => extrasModule || (extrasModule = host.engineModule('extras')());
  // Lone surrogates (half of a sliced emoji) become U+FFFD, as when Node writes
  // them out as UTF-8; a log line must be valid UTF-8.
  const writer = (level) => function (...args) {
    if (host.logFull()) host.logDropped();
    // A lone string is written as it is (Node formats nothing then).
    else if (args.length === 1 && typeof args[0] === 'string') host.log(level, args[0].toWellFormed());
    else host.log(level, args.length === 0 ? '' : formatter().format(...args).toWellFormed());
  };
  const console = {
    log: writer('info'),
    info: writer('info'),
    debug: writer('debug'),
    warn: writer('warn'),
    error: writer('error'),
  };
  globalThis.console = console;

  // Math.random from the process's generator (host.rs), not QuickJS's per-context one.
  Object.defineProperty(Math, 'random', { value: host.random, writable: true, configurable: true, enumerable: false });

  // ---- errors ---------------------------------------------------------------
  // Node's `stack` starts with the error's own line ("TypeError: bad input"),
  // which code logs with console.error(err.stack); QuickJS's lists only the
  // frames. QuickJS-NG calls Error.prepareStackTrace as V8 does, so the header
  // is added there, and function code may still replace it as in Node.
  Error.prepareStackTrace = function prepareStackTrace(error, frames) {
    return extras().formatStack(error, frames, ROOT, host.wrapperColumns);
  };
  // A call site hands Error.prepareStackTrace its frame's function
  // (getFunction, V8's CallSite API). Frames of the engine's own code, such as
  // the driver's invoke and load, must not reach function code that way: a
  // prepareStackTrace the function sets is wrapped so that, before it first
  // runs, getFunction() is made to give undefined for them, as V8 gives it for
  // frames of strict code. (Patching at start would make every instance build
  // the CallSite class, which most never use.)
  {
    const setPrepare = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace').set;
    let own = Error.prepareStackTrace;
    Object.defineProperty(Error, 'prepareStackTrace', {
      get: () => own,
      set: (fn) => {
        own = fn;
        setPrepare.call(Error, typeof fn === 'function' ? extras().guardCallSites(fn, ROOT) : fn);
      },
      configurable: true,
    });
  }

  // Properties made on first use: until one of `names` is first looked up on
  // `target`, a proxy in its prototype chain stands for them; then `make`
  // defines them all on `target` and the proxy is gone. Every instance would
  // otherwise carry the closures of features most functions never touch.
  function lazyProperties(target, names, make) {
    const fallback = Object.getPrototypeOf(target);
    let made = false;
    const settle = () => {
      if (made) return false;
      made = true;
      Object.setPrototypeOf(target, fallback);
      return true;
    };
    const materialize = () => {
      if (settle()) make();
    };
    // The proxy's target inherits from the original prototype, so that the
    // chain (and `instanceof`) still runs through it.
    Object.setPrototypeOf(target, new Proxy(Object.create(fallback), {
      get(proto, name, receiver) {
        if (!made && names.includes(name)) {
          materialize();
          return target[name];
        }
        return Reflect.get(proto, name, receiver);
      },
      has(proto, name) { return (!made && names.includes(name)) || Reflect.has(proto, name); },
    }));
    // Takes the proxy away without making the properties (their maker ran another way).
    return settle;
  }

  // ---- process --------------------------------------------------------------
  const process = {
    env: host.env,
    argv: ['node', ROOT + 'index.js'],
    platform: 'linux',
    version: 'v18.15.0',
    versions: { node: '18.15.0' },
    pid: 1,
    nextTick: (fn, ...args) => { Promise.resolve().then(() => fn(...args)); },
  };
  // What few functions use, made on first use with the rest below.
  const rarely = () => {
    const hrtime = (prev) => {
      const ns = host.monotonicNs();
      let s = Math.floor(ns / 1e9), n = Math.floor(ns % 1e9);
      if (prev) { s -= prev[0]; n -= prev[1]; if (n < 0) { s -= 1; n += 1e9; } }
      return [s, n];
    };
    hrtime.bigint = () => BigInt(Math.floor(host.monotonicNs()));
    return {
      cwd: () => ROOT.slice(0, -1),
      hrtime,
      emitWarning: (w) => console.warn(String(w && w.message || w)),
      uptime: () => host.monotonicNs() / 1e9,
      memoryUsage: () => ({ rss: 0, heapTotal: 0, heapUsed: 0, external: 0 }),
    };
  };
  // process is an EventEmitter in Node, and has stdout and stderr; they are
  // made on first use. (Only function code emits on it here: listeners for
  // Node's own events, such as 'unhandledRejection', are never called.)
  const EMITTER_METHODS = ['on', 'once', 'off', 'addListener', 'removeListener', 'removeAllListeners', 'prependListener',
    'prependOnceListener', 'emit', 'listeners', 'listenerCount', 'eventNames'];
  lazyProperties(process, [...EMITTER_METHODS, 'stdout', 'stderr', 'cwd', 'hrtime', 'emitWarning', 'uptime', 'memoryUsage'], () => {
    // The emitter itself waits for its first use: a function that asks for
    // process.hrtime need not load the events module.
    let emitter = null;
    for (const method of EMITTER_METHODS) {
      process[method] = function (...args) {
        emitter = emitter || new (loadBuiltin('events'))();
        const result = emitter[method](...args);
        return result === emitter ? process : result;
      };
    }
    Object.assign(process, rarely());
    const { outputStream } = extras();
    process.stdout = outputStream(1, console.log);
    process.stderr = outputStream(2, console.error);
  });
  globalThis.process = process;


  // The console methods beyond the writers, as Node has them, made on first use.
  lazyProperties(console, ['assert', 'group', 'groupCollapsed', 'groupEnd', 'dir', 'dirxml', 'time', 'timeLog', 'timeEnd',
    'count', 'countReset', 'trace', 'table'],
    () => {
      const made = extras().consoleExtras(console, host);
      // What function code assigned meanwhile stays.
      for (const name of Object.keys(made)) if (!Object.prototype.hasOwnProperty.call(console, name)) console[name] = made[name];
    });
  globalThis.global = globalThis;
  globalThis.performance = { now: () => host.monotonicNs() / 1e6, timeOrigin: host.timeOrigin };
  // A host function that loads `fetch` on its first call: a closure here
  // would cost every instance its bytecode, and most functions never fetch.
  globalThis.fetch = host.engineModule('fetch');

  // A property as built-ins have them: writable, configurable, not enumerable.
  const defineHidden = (target, name, value) =>
    Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: false });

  // Buffer's fixes (buffer.js) are loaded the first time one of the
  // functions they replace or add is used: until then each is a stub, or a
  // lookup through lazyProperties, that puts the originals back, loads the
  // fixes and calls on. (Buffer is a global lexical binding, so it cannot be
  // swapped for a getter.) Every instance would otherwise carry the fixes'
  // functions, used or not.
  const BUFFER_STATICS = ['from', 'alloc', 'allocUnsafe', 'allocUnsafeSlow', 'concat', 'byteLength', 'isEncoding', 'compare'];
  const BUFFER_METHODS = ['toJSON', 'toString', 'write', 'fill', 'copy', 'slice', 'indexOf', 'lastIndexOf', 'includes',
    'equals', 'compare', 'swap16', 'swap32', 'swap64'];
  for (const kind of ['BigUInt64', 'BigUint64', 'BigInt64', 'UInt', 'Uint', 'Int']) {
    for (const end of ['BE', 'LE']) BUFFER_METHODS.push('read' + kind + end, 'write' + kind + end);
  }
  let bufferPatched = false;
  function patchBufferOnce() {
    if (bufferPatched) return;
    bufferPatched = true;
    settleMethods();
    // Functions that function code put in place of a stub meanwhile are kept.
    // (A stub is recognised by its name, which no function of Buffer's has.)
    const replaced = [];
    for (const [target, originals] of [[Buffer, staticOriginals], [Buffer.prototype, methodOriginals]]) {
      for (const name of Object.keys(originals)) {
        if (target[name].name !== 'bufferStub') replaced.push([target, name, target[name]]);
        if (originals[name] === undefined) delete target[name];
        else defineHidden(target, name, originals[name]);
      }
    }
    host.engineModule('buffer')(Buffer, defineHidden, host.reserveMemory);
    for (const [target, name, value] of replaced) target[name] = value;
  }
  // A stub for each of `names` that `target` has (all of them with
  // `includeLacking`), which puts the original back before the fixes load.
  // Returns the originals by name (undefined for one `target` lacked).
  function stubBuffer(target, names, includeLacking) {
    const originals = Object.create(null);
    // Compared as strings: a lookup by a name Buffer lacks would make it an
    // atom that every instance then keeps.
    const own = Object.getOwnPropertyNames(target);
    for (const name of names) {
      const has = own.includes(name);
      if (!has && !includeLacking) continue;
      originals[name] = has ? target[name] : undefined;
      defineHidden(target, name, function bufferStub(...args) {
        patchBufferOnce();
        return target[name].apply(this, args);
      });
    }
    return originals;
  }
  // Buffer itself gets stubs for all its statics (it is a constructor: a proxy
  // cannot stand in its prototype chain); the methods Buffer.prototype lacks,
  // most of them, are made by a lookup through lazyProperties.
  const staticOriginals = stubBuffer(Buffer, BUFFER_STATICS, true);
  const methodOriginals = stubBuffer(Buffer.prototype, BUFFER_METHODS, false);
  const present = Object.keys(methodOriginals);
  const settleMethods = lazyProperties(Buffer.prototype, BUFFER_METHODS.filter((name) => !present.includes(name)), patchBufferOnce);

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
      try { main = JSON.parse(stripBom(host.readFile(pkgPath))).main; } catch (e) { main = undefined; }
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
    // A package name ('lodash', '@scope/name') and the subpath after it.
    const parts = request.split('/');
    const nameLength = request.startsWith('@') ? 2 : 1;
    const packageName = parts.slice(0, nameLength).join('/');
    const subpath = parts.length > nameLength ? './' + parts.slice(nameLength).join('/') : '.';
    let dir = fromDir;
    for (;;) {
      const packageDir = normalize(join(join(dir, 'node_modules'), packageName));
      const exportsField = packageDir === null ? undefined : packageExports(packageDir);
      if (exportsField !== undefined) {
        const found = extras().resolveExports(packageDir, exportsField, subpath, { normalize, join, hasFile: host.hasFile });
        if (found) return { path: found };
        const err = new Error("Package subpath '" + subpath + "' is not defined by \"exports\" in " + ROOT + packageDir + '/package.json');
        err.code = 'ERR_PACKAGE_PATH_NOT_EXPORTED';
        throw err;
      }
      const base = normalize(join(join(dir, 'node_modules'), request));
      const found = tryFile(base) || tryDirectory(base);
      if (found) return { path: found };
      if (dir === '') break;
      dir = dirOf(dir);
    }
    throw notFound(request, fromDir);
  }

  // The "exports" field of a package's package.json, if it has one.
  function packageExports(packageDir) {
    const pkgPath = join(packageDir, 'package.json');
    if (!host.hasFile(pkgPath)) return undefined;
    try {
      const exportsField = JSON.parse(stripBom(host.readFile(pkgPath))).exports;
      return exportsField === null ? undefined : exportsField;
    } catch (e) {
      return undefined;
    }
  }

  // Node ignores a byte order mark at the start of a module or a JSON file.
  const stripBom = (text) => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);

  function loadBuiltin(name) {
    if (name in builtinCache) return builtinCache[name];
    let exports;
    if (name === 'timers') exports = Object.assign({}, timerApi);
    else if (name === 'process') exports = process;
    else if (name === 'console') exports = console;
    else exports = host.builtinModule(name);
    if (name === 'util') exports = extras().extendUtil(exports, formatter);
    if (name === 'path') exports = extras().fixPath(exports);
    // Deprecated in Node but still read by packages (buffer-equal-constant-time, under jsonwebtoken).
    if (name === 'buffer' && exports && exports.SlowBuffer === undefined) exports.SlowBuffer = exports.Buffer;
    if (name === 'crypto') {
      // Node's global `crypto` is the Web Crypto object; from now on a plain property.
      defineHidden(globalThis, 'crypto', exports.webcrypto);
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
    set(value) { defineHidden(globalThis, 'crypto', value); },
  });


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
    // Keyed by the absolute file name, as in Node, so that
    // `delete require.cache[require.resolve(x)]` reloads x.
    const cached = cache[ROOT + path];
    if (cached) return cached.exports;
    const module = { id: ROOT + path, filename: ROOT + path, path: ROOT + dirOf(path), exports: {}, loaded: false, children: [] };
    cache[ROOT + path] = module;
    try {
      const source = stripBom(host.readFile(path));
      if (path.endsWith('.json')) {
        module.exports = JSON.parse(source);
      } else {
        const wrapper = host.compile(source, ROOT + path);
        module.require = makeRequire(dirOf(path));
        wrapper.call(module.exports, module.exports, module.require, module, ROOT + path, ROOT + dirOf(path));
      }
    } catch (e) {
      delete cache[ROOT + path];
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
  const state = { settled: false, failed: false, value: undefined, error: undefined, promise: undefined, callbackStyle: false, returned: undefined, deferred: null };
  let handler = null;
  let meta = null;
  let current = 0;
  const DEADLINE = Symbol('deadline');

  function getRemainingTimeInMillis() {
    return Math.max(0, this[DEADLINE] - Date.now());
  }

  // context.sse(), as CloudBase's functions framework has it: server-sent
  // events to a caller that takes them (null for any other caller, whose
  // answer is the return value); extras.js makes the stream.
  function sse() {
    const id = current;
    return extras().eventStream(host, id, () => id === current);
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
    if (state.settled || state.deferred !== null) {
      if (failed || value !== undefined) console.warn('the function produced a second result after the first; it is ignored');
      return;
    }
    state.settled = true; state.failed = failed;
    if (failed) state.error = value; else state.value = value;
  }

  // A callback handler's result, held until the event loop is empty: with
  // `context.callbackWaitsForEmptyEventLoop` left true (the default, read when
  // the callback is called, as on Lambda and SCF), timers the function started
  // still run in this invocation, and their logs are in its record. Rust reads
  // `state.deferred` only to explain a timeout.

  function callbackResult(id, context, failed, value) {
    if (id !== current) return;
    if (state.settled || state.deferred !== null || state.promise !== undefined || context.callbackWaitsForEmptyEventLoop === false) {
      settle(id, failed, value);
    } else {
      state.deferred = { failed, value };
    }
  }

  // Settles with the held callback result, if there is one.
  function releaseDeferred(id) {
    if (state.deferred === null) return false;
    const { failed, value } = state.deferred;
    state.deferred = null;
    settle(id, failed, value);
    return true;
  }

  function invoke(eventOrBytes, requestId, deadlineMs, invokerContext) {
    const id = ++current;
    // A binary event arrives as a Uint8Array, which JSON never makes.
    const event = eventOrBytes instanceof Uint8Array ? Buffer.from(eventOrBytes.buffer) : eventOrBytes;
    state.settled = false; state.failed = false; state.value = undefined; state.error = undefined;
    state.promise = undefined; state.returned = undefined; state.deferred = null;
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
      sse,
    };
    // Symbol-keyed and not enumerable: invisible to JSON, Object.keys and console.log.
    Object.defineProperty(context, DEADLINE, { value: deadlineMs });
    // Link IoT Edge: what the calling function passed as invokerContext.
    if (invokerContext !== undefined) context.invokerContext = JSON.parse(invokerContext);
    // Handlers declared with a callback parameter get one; the first result wins.
    const callback = state.callbackStyle
      ? (err, value) => (err !== undefined && err !== null ? callbackResult(id, context, true, err) : callbackResult(id, context, false, value))
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
    }
    if (state.promise !== undefined) {
      // An async handler that also called its callback: the first result wins, now.
      releaseDeferred(id);
    } else if (!state.callbackStyle) {
      settle(id, false, returned);
    } else if (!(returned instanceof Timeout)) {
      // A callback handler's return value counts only if the callback is never
      // called (the seed `add` returns its sum); see settleIdle.
      state.returned = returned;
    }
  }

  // The event loop is empty and nothing settled: a callback handler's result is
  // what it passed to its callback, else the value it returned, else null
  // (Lambda's rule). Returns false for promise handlers, whose promise can no
  // longer settle.
  function settleIdle() {
    if (!state.callbackStyle) return false;
    if (releaseDeferred(current)) return true;
    state.settled = true; state.failed = false; state.value = state.returned === undefined ? null : state.returned;
    return true;
  }

  return { load, invoke, settleIdle, state, runDueTimers, msUntilNextTimer };
}
