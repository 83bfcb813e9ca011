// A Node.js worker of Cloudlet's node engine (crates/runtime/src/node/).
//
// The engine starts this file with `node`, and it connects back to the
// engine's Unix socket (CLOUDLET_WORKER_SOCKET). It starts generic: the
// engine keeps a few of these warm, and the first message a worker gets
// specialises it for one function version (`load`: its folder, handler,
// environment), so that a cold start costs loading the function's code, not
// starting Node. Then it runs one invocation at a time (`invoke`) and
// answers with the result or the error; console and raw stdout/stderr output
// goes back as `log` messages of the invocation in progress.
//
// Messages are JSON, each framed by its length as a 4-byte big-endian
// integer, in both directions.
'use strict';

const net = require('net');
const path = require('path');
const util = require('util');
const { performance } = require('perf_hooks');

const socket = net.connect(process.env.CLOUDLET_WORKER_SOCKET);
delete process.env.CLOUDLET_WORKER_SOCKET;

function send(message) {
  const body = Buffer.from(JSON.stringify(message));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  socket.write(Buffer.concat([header, body]));
}

// ---- output ------------------------------------------------------------------
// Lines of the invocation in progress, capped (the engine caps them again);
// past the cap they are counted, not formatted or sent.
let logCap = 1024 * 1024;
let logBytes = 0;
let dropped = { bytes: 0, lines: 0 };

function log(level, text) {
  if (logBytes >= logCap) {
    dropped.lines += 1;
    return;
  }
  const room = logCap - logBytes;
  if (Buffer.byteLength(text) > room) {
    const cut = Buffer.from(text).subarray(0, room).toString();
    dropped.bytes += Buffer.byteLength(text) - Buffer.byteLength(cut);
    text = cut;
  }
  logBytes += Buffer.byteLength(text);
  send({ t: 'log', level, msg: text });
}

const writer = (level) => (...args) => log(level, util.format(...args));
console.log = writer('info');
console.info = writer('info');
console.debug = writer('debug');
console.warn = writer('warn');
console.error = writer('error');
console.trace = (...args) => {
  const trace = new Error(util.format(...args)).stack.replace(/^Error/, 'Trace');
  log('error', trace);
};
// Raw writes to stdout and stderr are output of the invocation too.
for (const [stream, level] of [[process.stdout, 'info'], [process.stderr, 'error']]) {
  stream.write = (chunk, encoding, done) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(encoding || 'utf8');
    log(level, text.replace(/\n$/, ''));
    if (typeof encoding === 'function') encoding();
    else if (typeof done === 'function') done();
    return true;
  };
}

// ---- wx-server-sdk's callbacks -----------------------------------------------------
// CloudBase documents callFunction with success/fail/complete callbacks as
// well as a promise, but wx-server-sdk 4.x only returns the promise and never
// calls them. The package is wrapped when a function loads it, so that the
// callbacks are called as documented (and, as in the mini program, no
// promise is returned then); the package itself is not changed.
const Module = require('module');
const WRAPPED = Symbol('cloudlet.wrapped');
const loadModule = Module._load;
Module._load = function (request, parent, isMain) {
  const exports = loadModule.call(this, request, parent, isMain);
  if (request === 'wx-server-sdk' && exports && !exports[WRAPPED]) {
    exports[WRAPPED] = true;
    const Cloud = exports.Cloud;
    if (typeof exports.callFunction === 'function') exports.callFunction = withCallbacks(exports.callFunction);
    if (Cloud && Cloud.prototype && typeof Cloud.prototype.callFunction === 'function') {
      Cloud.prototype.callFunction = withCallbacks(Cloud.prototype.callFunction);
    }
  }
  return exports;
};

function withCallbacks(call) {
  return function (options, ...rest) {
    const { success, fail, complete } = options || {};
    const promise = call.call(this, options, ...rest);
    if (typeof success !== 'function' && typeof fail !== 'function' && typeof complete !== 'function') return promise;
    promise.then((res) => {
      if (typeof success === 'function') success(res);
      if (typeof complete === 'function') complete(res);
    }, (err) => {
      if (typeof fail === 'function') fail(err);
      if (typeof complete === 'function') complete(err);
    });
    return undefined;
  };
}

// ---- the function ----------------------------------------------------------------
// Node's timer class, to tell a returned timer from a returned value.
const Timeout = (() => {
  const probe = setTimeout(() => {}, 0);
  clearTimeout(probe);
  return probe.constructor;
})();
let handler = null;
let meta = null;
let callbackStyle = false;
let current = null;

function errorOf(value) {
  if (value instanceof Error) {
    return { name: value.name || 'Error', message: String(value.message), stack: value.stack || null };
  }
  let message;
  try {
    message = typeof value === 'string' ? value : JSON.stringify(value);
  } catch (e) {
    message = String(value);
  }
  return { name: null, message: message === undefined ? String(value) : message, stack: null };
}

function load(message) {
  process.chdir(message.dir);
  Object.assign(process.env, message.env);
  logCap = message.logCap;
  meta = message.meta;
  const file = path.join(message.dir, message.module);
  const exports = require(file);
  const fn = exports == null ? undefined : exports[message.export];
  if (typeof fn !== 'function') {
    throw new TypeError('the handler ' + message.module + '.' + message.export + ' is ' +
      (fn === undefined ? 'not exported' : 'not a function') + ' by ' + file + '.js');
  }
  handler = fn;
  callbackStyle = fn.length >= 3;
}

// The answer of the invocation in progress; the first one counts.
function finish(id, failed, value) {
  if (current === null || current.id !== id || current.done) {
    if (failed || value !== undefined) console.warn('the function produced a second result after the first; it is ignored');
    return;
  }
  current.done = true;
  const stats = dropped;
  // How long the event loop ran and how long it waited for I/O or timers
  // during the invocation: the engine tells functions bound by the CPU from
  // ones waiting on I/O by it (node/pool.rs). Unlike CPU time against wall
  // time, it does not count the time the process waited for a core.
  const loop = performance.eventLoopUtilization(current.loop);
  const busy = { activeUs: Math.round(loop.active * 1000), idleUs: Math.round(loop.idle * 1000) };
  if (failed) {
    send({ t: 'failed', error: errorOf(value), dropped: stats, busy });
  } else {
    let json;
    try {
      json = JSON.stringify(value === undefined ? null : value);
    } catch (e) {
      send({ t: 'failed', error: errorOf(e), unserialisable: true, dropped: stats, busy });
      return;
    }
    send({ t: 'result', json: json === undefined ? 'null' : json, dropped: stats, busy });
  }
  // Waiting for the next message keeps the process alive again.
  socket.ref();
}

// The variables that change with each invocation (the SDKs' credential,
// endpoint and end user; crates/runtime/src/node/sdk_env.rs): set before the
// handler runs, as SCF does, since the SDKs read process.env when called.
// The engine sends only those that changed since this worker's last
// invocation (mostly the credential alone); null unsets one.
const CREDENTIAL = 'TENCENTCLOUD_SESSIONTOKEN';
const applied = Object.create(null);
let environmentPrefix = null;
function applyEnvironment(env) {
  for (const key of Object.keys(env)) {
    const value = env[key];
    if (value === null) { delete process.env[key]; delete applied[key]; }
    else { process.env[key] = value; applied[key] = value; }
    if (key !== CREDENTIAL) environmentPrefix = null;
  }
}

// SCF's context.environment: the function's variables and the invocation's,
// as JSON text (what tcb.parseContext reads). The invocation's are appended
// to the function's JSON (a key given twice means its last value to
// JSON.parse); all but the credential, which changes every time and needs
// no escaping (digits, letters and a dot), are kept made.
function environmentJson() {
  if (environmentPrefix === null) {
    const others = Object.assign({}, applied);
    delete others[CREDENTIAL];
    const extra = JSON.stringify(others).slice(1, -1);
    const base = meta.environment.slice(0, -1);
    environmentPrefix = extra === '' ? base : base + (base.length > 1 ? ',' : '') + extra;
  }
  const credential = applied[CREDENTIAL];
  if (credential === undefined) return environmentPrefix + '}';
  const separator = environmentPrefix.length > 1 ? ',' : '';
  return environmentPrefix + separator + '"' + CREDENTIAL + '":"' + credential + '"}';
}

// context.sse(), as CloudBase's functions framework has it: server-sent
// events to a caller that takes them (null for any other caller, whose
// answer is the return value). The engine formats and streams each event.
class EventStream {
  constructor(id) { this._id = id; this._ended = false; }
  get closed() { return this._ended || current === null || current.id !== this._id || current.done; }
  send(message) {
    if (this.closed) return false;
    send({ t: 'sse_send', msg: JSON.stringify(message === undefined ? null : message) });
    return true;
  }
  end(message) {
    if (this.closed) return;
    if (message !== undefined) this.send(message);
    this._ended = true;
    send({ t: 'sse_end' });
  }
}

function eventStreamFor(message) {
  let stream;
  return () => {
    if (stream === undefined) {
      stream = message.sse === true ? new EventStream(message.id) : null;
      if (stream !== null) send({ t: 'sse_open' });
    }
    return stream;
  };
}

function invoke(message) {
  const id = message.id;
  current = { id, done: false, loop: performance.eventLoopUtilization() };
  logBytes = 0;
  dropped = { bytes: 0, lines: 0 };
  const deadline = message.deadline;
  if (message.env !== undefined) applyEnvironment(message.env);
  const context = {
    requestId: id,
    request_id: id,
    awsRequestId: id,
    functionName: meta.functionName,
    function_name: meta.functionName,
    functionVersion: meta.functionVersion,
    function_version: meta.functionVersion,
    namespace: meta.namespace,
    memory_limit_in_mb: meta.memoryLimitInMb,
    memoryLimitInMB: String(meta.memoryLimitInMb),
    time_limit_in_ms: meta.timeLimitInMs,
    environment: environmentJson(),
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    sse: eventStreamFor(message),
  };
  // Link IoT Edge: what the calling function passed as invokerContext.
  if (message.invokerContext !== undefined) context.invokerContext = JSON.parse(message.invokerContext);
  // A callback's result waits, as on Lambda and SCF, until the event loop is
  // empty ('beforeExit', with the engine's socket not holding it open), unless
  // the function sets context.callbackWaitsForEmptyEventLoop = false. A
  // callback handler that never calls back answers with what it returned
  // (the seed `add` does), or null.
  let called = null;
  const callback = (err, value) => {
    const failed = err !== undefined && err !== null;
    called = { failed, value: failed ? err : value };
    if (context.callbackWaitsForEmptyEventLoop === false) finish(id, called.failed, called.value);
  };
  let returned;
  try {
    const event = message.binary ? Buffer.from(message.event, 'base64') : message.event;
    returned = handler(event, context, callbackStyle ? callback : undefined);
  } catch (e) {
    finish(id, true, e);
    return;
  }
  if (returned !== null && typeof returned === 'object' && typeof returned.then === 'function') {
    Promise.resolve(returned).then((value) => finish(id, false, value), (e) => finish(id, true, e));
  } else if (!callbackStyle) {
    finish(id, false, returned);
  } else {
    const isTimer = returned instanceof Timeout;
    socket.unref();
    process.once('beforeExit', () => {
      if (called !== null) finish(id, called.failed, called.value);
      else finish(id, false, returned === undefined || isTimer ? null : returned);
    });
  }
}

// An exception or a rejection nothing handled: the invocation in progress
// fails with it, and this worker ends, so that the next one starts clean.
function crash(kind) {
  return (reason) => {
    send({ t: 'crash', kind, error: errorOf(reason), dropped });
    socket.end(() => process.exit(70));
  };
}
process.on('uncaughtException', crash('uncaught exception'));
process.on('unhandledRejection', crash('unhandled rejection'));

// ---- messages --------------------------------------------------------------------
let buffered = Buffer.alloc(0);
socket.on('data', (chunk) => {
  buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
  while (buffered.length >= 4) {
    const length = buffered.readUInt32BE(0);
    if (buffered.length < 4 + length) break;
    const message = JSON.parse(buffered.subarray(4, 4 + length).toString());
    buffered = buffered.subarray(4 + length);
    if (message.t === 'load') {
      try {
        load(message);
        send({ t: 'loaded' });
      } catch (e) {
        send({ t: 'load_failed', error: errorOf(e) });
      }
    } else if (message.t === 'invoke') {
      invoke(message);
    }
  }
});
// The engine went away: so does the worker.
socket.on('close', () => process.exit(0));
socket.on('error', () => process.exit(0));
socket.on('connect', () => send({ t: 'ready', pid: process.pid }));
