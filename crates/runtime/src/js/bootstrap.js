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

  // ---- errors ---------------------------------------------------------------
  // Node's `stack` starts with the error's own line ("TypeError: bad input"),
  // which code logs with console.error(err.stack); QuickJS's lists only the
  // frames. QuickJS-NG calls Error.prepareStackTrace as V8 does, so the header
  // is added there, and function code may still replace it as in Node.
  Error.prepareStackTrace = function prepareStackTrace(error, frames) {
    let head;
    try {
      head = Error.prototype.toString.call(error);
    } catch {
      head = 'Error';
    }
    let stack = head;
    for (const frame of frames) {
      const name = frame.getFunctionName() || '<anonymous>';
      if (frame.isNative()) {
        stack += '\n    at ' + name + ' (native)';
        continue;
      }
      const file = frame.getFileName() || '<anonymous>';
      const line = frame.getLineNumber();
      let column = frame.getColumnNumber();
      // A module's first line follows its CommonJS wrapper (host.rs).
      if (line === 1 && file.startsWith(ROOT)) column = Math.max(1, column - host.wrapperColumns);
      const where = file + (line > 0 ? ':' + line + ':' + column : '');
      stack += '\n    at ' + name + ' (' + where + ')';
    }
    return stack;
  };

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
  // Each write is a log line of the invocation (without its final newline):
  // output is captured per invocation rather than streamed to a terminal.
  const outputStream = (fd, write) => ({
    fd,
    isTTY: false,
    writable: true,
    columns: 80,
    write(chunk, encoding, callback) {
      if (typeof encoding === 'function') callback = encoding;
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(typeof encoding === 'string' ? encoding : 'utf8');
      write('%s', text.endsWith('\n') ? text.slice(0, -1) : text);
      if (typeof callback === 'function') Promise.resolve().then(() => callback(null));
      return true;
    },
    end(chunk, encoding, callback) { if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') this.write(chunk, encoding, callback); },
    on() { return this; }, once() { return this; }, off() { return this; }, removeListener() { return this; }, emit() { return false; },
  });
  // process is an EventEmitter in Node (process.on('unhandledRejection', …));
  // the emitter behind these is made on first use.
  let processEvents = null;
  for (const method of ['on', 'once', 'off', 'addListener', 'removeListener', 'removeAllListeners', 'prependListener',
    'prependOnceListener', 'emit', 'listeners', 'listenerCount', 'eventNames']) {
    process[method] = function (...args) {
      if (processEvents === null) processEvents = new (loadBuiltin('events'))();
      const result = processEvents[method](...args);
      return result === processEvents ? process : result;
    };
  }
  process.stdout = outputStream(1, console.log);
  process.stderr = outputStream(2, console.error);
  globalThis.process = process;

  // The console methods beyond the writers (which host.rs provides), as Node has them.
  (function completeConsole() {
    const timers = new Map();
    const counts = new Map();
    const label = (l) => (l === undefined ? 'default' : String(l));
    const elapsed = (l) => {
      const ms = (host.monotonicNs() - timers.get(l)) / 1e6;
      return ms < 1000 ? ms.toFixed(3) + 'ms' : (ms / 1000).toFixed(3) + 's';
    };
    Object.assign(console, {
      dir: (value) => console.log(value),
      dirxml: (...values) => console.log(...values),
      time(l) {
        l = label(l);
        if (timers.has(l)) return console.warn("Warning: Label '%s' already exists for console.time()", l);
        timers.set(l, host.monotonicNs());
      },
      timeLog(l, ...data) {
        l = label(l);
        if (!timers.has(l)) return console.warn("Warning: No such label '%s' for console.timeLog()", l);
        console.log('%s: %s', l, elapsed(l), ...data);
      },
      timeEnd(l) {
        l = label(l);
        if (!timers.has(l)) return console.warn("Warning: No such label '%s' for console.timeEnd()", l);
        console.log('%s: %s', l, elapsed(l));
        timers.delete(l);
      },
      count(l) {
        l = label(l);
        const n = (counts.get(l) || 0) + 1;
        counts.set(l, n);
        console.log('%s: %d', l, n);
      },
      countReset(l) { counts.delete(label(l)); },
      // Node prints the message, then the stack of the call, on stderr.
      trace(...data) {
        const stack = String(new Error().stack || '').split('\n').filter((line) => line.trim().startsWith('at ')).slice(1).join('\n');
        if (typeof data[0] === 'string') data[0] = 'Trace: ' + data[0]; else data.unshift('Trace:');
        console.error(...data);
        if (stack) console.error('%s', stack);
      },
      table(data, columns) {
        if (data === null || typeof data !== 'object') return console.log(data);
        const rows = data instanceof Map ? Array.from(data.entries()).map(([k, v]) => [k, v]) : Object.keys(data).map((k) => [k, data[k]]);
        const keys = [];
        let hasValues = false;
        for (const [, value] of rows) {
          if (value !== null && typeof value === 'object') {
            for (const k of Object.keys(value)) if (!keys.includes(k)) keys.push(k);
          } else {
            hasValues = true;
          }
        }
        const shown = Array.isArray(columns) ? columns.map(String) : keys;
        const cell = (v) => (v === undefined ? '' : typeof v === 'string' ? "'" + v + "'" : typeof v === 'object' && v !== null ? (Array.isArray(v) ? '[Array]' : '[Object]') : String(v));
        const header = ['(index)', ...shown, ...(hasValues ? ['Values'] : [])];
        const body = rows.map(([index, value]) => {
          const isObject = value !== null && typeof value === 'object';
          return [String(index), ...shown.map((k) => (isObject ? cell(value[k]) : '')), ...(hasValues ? [isObject ? '' : cell(value)] : [])];
        });
        const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)) + 2);
        const pad = (text, width) => ' ' + text + ' '.repeat(width - text.length - 1);
        const line = (l, m, r) => l + widths.map((w) => '─'.repeat(w)).join(m) + r;
        const row = (cells) => '│' + cells.map((c, i) => pad(c, widths[i])).join('│') + '│';
        console.log('%s', [line('┌', '┬', '┐'), row(header), line('├', '┼', '┤'), ...body.map(row), line('└', '┴', '┘')].join('\n'));
      },
    });
  })();
  globalThis.global = globalThis;
  globalThis.performance = { now: () => host.monotonicNs() / 1e6, timeOrigin: Date.now() };

  // Node's Buffer serialises as {"type":"Buffer","data":[...]} (clients depend on
  // it: wx-server-sdk sends Buffers that way); LLRT's Buffer has no toJSON.
  // A property as built-ins have them: writable, configurable, not enumerable.
  const defineHidden = (target, name, value) =>
    Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: false });

  defineHidden(Buffer.prototype, 'toJSON', function toJSON() { return { type: 'Buffer', data: Array.from(this) }; });

  // LLRT's Buffer lacks Node's single-byte and URL-safe encodings: it rejects
  // 'binary' and 'base64url', and treats 'latin1' and 'ascii' as UTF-8. Code
  // that decrypts or signs data (WeChat's data decryption, JWT libraries) uses
  // them, so they are done here, one byte per character as in Node.
  (function patchBufferEncodings() {
    const encodingOf = (e) => (typeof e === 'string' ? e.toLowerCase() : undefined);
    const SINGLE_BYTE = { latin1: true, binary: true, ascii: true };
    const isPatched = (name) => name !== undefined && (SINGLE_BYTE[name] === true || name === 'base64url');
    const from = Buffer.from;
    const toString = Buffer.prototype.toString;
    const byteLength = Buffer.byteLength;
    const isEncoding = Buffer.isEncoding;
    // LLRT's natives treat an explicit `undefined` argument as an error: pass on
    // only the arguments that carry a value.
    const given = (args) => {
      let n = args.length;
      while (n > 0 && args[n - 1] === undefined) n--;
      return Array.prototype.slice.call(args, 0, n);
    };

    function singleByteBytes(string) {
      const bytes = new Uint8Array(string.length);
      for (let i = 0; i < string.length; i++) bytes[i] = string.charCodeAt(i) & 0xff;
      return bytes;
    }
    // Node's base64 decoder stops at the first '=' and skips characters outside
    // both alphabets; LLRT's rejects them. Only input LLRT rejects pays for this.
    function lenientBase64(string) {
      const end = string.indexOf('=');
      const base64 = (end < 0 ? string : string.slice(0, end)).replace(/[^A-Za-z0-9+/_-]+/g, '').replace(/[-_]/g, (c) => (c === '-' ? '+' : '/'));
      return base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    }

    // Node decodes hex pair by pair up to the first invalid one (and drops an
    // odd last digit); LLRT rejects the whole string.
    function lenientHex(string) {
      const bytes = new Uint8Array(string.length >>> 1);
      let n = 0;
      for (; n < bytes.length; n++) {
        const pair = string.substr(2 * n, 2);
        if (!/^[0-9a-fA-F]{2}$/.test(pair)) break;
        bytes[n] = parseInt(pair, 16);
      }
      return bytes.subarray(0, n);
    }

    Buffer.from = function (value, encodingOrOffset, length) {
      const encoding = typeof value === 'string' ? encodingOf(encodingOrOffset) : undefined;
      if (encoding !== undefined && SINGLE_BYTE[encoding]) return from.call(this, singleByteBytes(value));
      if (encoding === 'hex') {
        try {
          return from.call(this, value, 'hex');
        } catch (e) {
          return from.call(this, lenientHex(value));
        }
      }
      if (encoding === 'base64url' || encoding === 'base64') {
        try {
          return from.call(this, value, 'base64'); // also takes '-', '_' and missing padding
        } catch (e) {
          return from.call(this, lenientBase64(value), 'base64');
        }
      }
      return from.apply(this, given(arguments));
    };
    defineHidden(Buffer.prototype, 'toString', function (encoding, start, end) {
      const name = encodingOf(encoding);
      if (!isPatched(name)) return toString.apply(this, given(arguments));
      // Node's clamping of start and end.
      start = start === undefined || start < 0 ? 0 : Math.trunc(start) || 0;
      end = end === undefined || end > this.length ? this.length : Math.trunc(end) || 0;
      if (end <= start) return '';
      const bytes = start === 0 && end === this.length ? this : this.subarray(start, end);
      if (name === 'base64url') {
        return toString.call(bytes, 'base64').replace(/[+/=]/g, (c) => (c === '+' ? '-' : c === '/' ? '_' : ''));
      }
      const parts = [];
      for (let i = 0; i < bytes.length; i += 8192) {
        const chunk = bytes.subarray(i, i + 8192);
        parts.push(String.fromCharCode.apply(null, name === 'ascii' ? chunk.map((b) => b & 0x7f) : chunk));
      }
      return parts.join('');
    });
    // Bytes of a string in one of the encodings above, or null for LLRT's own ones.
    function patchedBytes(string, encoding) {
      const name = encodingOf(encoding);
      if (!isPatched(name)) return null;
      return SINGLE_BYTE[name] ? singleByteBytes(string) : Buffer.from(string, 'base64url');
    }
    // Node's (x, encoding), (x, a, encoding) and (x, a, b, encoding) shapes, as [a, b, encoding].
    function encodingLast(a, b, encoding) {
      if (typeof a === 'string') return [undefined, undefined, a];
      if (typeof b === 'string') return [a, undefined, b];
      return [a, b, encoding];
    }
    // In JS for every encoding: LLRT's write fails when given an offset.
    defineHidden(Buffer.prototype, 'write', function (string, offset, length, encoding) {
      [offset, length, encoding] = encodingLast(offset, length, encoding);
      if (typeof string !== 'string') {
        throw Object.assign(new TypeError('The "string" argument must be of type string. Received ' + typeof string), { code: 'ERR_INVALID_ARG_TYPE' });
      }
      const bytes = patchedBytes(string, encoding) || Buffer.from(string, encoding === undefined ? 'utf8' : encoding);
      offset = offset === undefined ? 0 : offset >>> 0;
      if (offset > this.length) throw Object.assign(new RangeError('The value of "offset" is out of range.'), { code: 'ERR_OUT_OF_RANGE' });
      const room = this.length - offset;
      let count = Math.min(bytes.length, length === undefined ? room : Math.min(length >>> 0, room));
      // Node writes no partial UTF-8 character.
      const name = encodingOf(encoding);
      if (count < bytes.length && (name === undefined || name === 'utf8' || name === 'utf-8')) {
        while (count > 0 && (bytes[count] & 0xc0) === 0x80) count--;
      }
      this.set(bytes.subarray(0, count), offset);
      return count;
    });
    const fill = Buffer.prototype.fill;
    defineHidden(Buffer.prototype, 'fill', function (value, offset, end, encoding) {
      [offset, end, encoding] = encodingLast(offset, end, encoding);
      const bytes = typeof value === 'string' ? patchedBytes(value, encoding) : null;
      if (bytes === null) return fill.apply(this, given(arguments));
      const start = offset === undefined ? 0 : offset >>> 0;
      const stop = end === undefined ? this.length : Math.min(end >>> 0, this.length);
      if (bytes.length === 0) return fill.call(this, 0, start, stop);
      for (let i = start; i < stop; i++) this[i] = bytes[(i - start) % bytes.length];
      return this;
    });
    const alloc = Buffer.alloc;
    Buffer.alloc = function (size, value, encoding) {
      if (typeof value === 'string' && patchedBytes('', encoding) !== null) return alloc.call(this, size).fill(value, encoding);
      return alloc.apply(this, given(arguments));
    };
    Buffer.byteLength = function (value, encoding) {
      const name = typeof value === 'string' ? encodingOf(encoding) : undefined;
      if (name !== undefined && SINGLE_BYTE[name]) return value.length;
      if (name === 'base64url') return Buffer.from(value, 'base64url').length;
      if (name === 'hex') return value.length >>> 1;
      return byteLength.apply(this, given(arguments));
    };
    Buffer.isEncoding = function (encoding) {
      const name = encodingOf(encoding);
      return isPatched(name) || isEncoding.apply(this, given(arguments));
    };
  })();

  // Buffer methods LLRT lacks or does differently from Node.
  (function patchBufferMethods() {
    const proto = Buffer.prototype;
    const outOfRange = (what, value) =>
      Object.assign(new RangeError('The value of "' + what + '" is out of range. Received ' + value), { code: 'ERR_OUT_OF_RANGE' });
    const view = (buf) => new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const checkedOffset = (buf, offset, size) => {
      offset = offset === undefined ? 0 : offset;
      if (!Number.isInteger(offset) || offset < 0 || offset + size > buf.length) throw outOfRange('offset', offset);
      return offset;
    };

    // Node's slice shares memory with the buffer, as subarray does; LLRT's copies.
    const subarray = Uint8Array.prototype.subarray;
    defineHidden(proto, 'slice', function slice(start, end) { return subarray.call(this, start, end); });

    // The needle as bytes: a byte value, a string in an encoding, or bytes.
    function needleBytes(value, encoding) {
      if (typeof value === 'number') return Uint8Array.of(value & 0xff);
      if (typeof value === 'string') return Buffer.from(value, encoding);
      if (value instanceof Uint8Array) return value;
      throw Object.assign(new TypeError('The "value" argument must be one of type number or string or an instance of Buffer or Uint8Array.'), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    function matchesAt(buf, needle, at) {
      for (let j = 0; j < needle.length; j++) if (buf[at + j] !== needle[j]) return false;
      return true;
    }
    function search(buf, value, byteOffset, encoding, last) {
      if (typeof byteOffset === 'string') { encoding = byteOffset; byteOffset = undefined; }
      const needle = needleBytes(value, encoding);
      const length = buf.length;
      let from = byteOffset === undefined || Number.isNaN(Number(byteOffset)) ? (last ? length : 0) : Math.trunc(Number(byteOffset));
      if (from < 0) from += length;
      if (needle.length === 0) return last ? Math.min(Math.max(from, 0), length) : Math.min(Math.max(from, 0), length);
      if (last) {
        for (let i = Math.min(from, length - needle.length); i >= 0; i--) if (matchesAt(buf, needle, i)) return i;
      } else {
        for (let i = Math.max(from, 0); i <= length - needle.length; i++) if (matchesAt(buf, needle, i)) return i;
      }
      return -1;
    }
    defineHidden(proto, 'indexOf', function indexOf(value, byteOffset, encoding) { return search(this, value, byteOffset, encoding, false); });
    defineHidden(proto, 'lastIndexOf', function lastIndexOf(value, byteOffset, encoding) { return search(this, value, byteOffset, encoding, true); });
    defineHidden(proto, 'includes', function includes(value, byteOffset, encoding) { return search(this, value, byteOffset, encoding, false) !== -1; });

    // 64-bit integers as BigInt, through a DataView.
    for (const [name, method, little] of [
      ['BigUInt64BE', 'BigUint64', false], ['BigUInt64LE', 'BigUint64', true],
      ['BigInt64BE', 'BigInt64', false], ['BigInt64LE', 'BigInt64', true],
    ]) {
      const read = function (offset) { return view(this)['get' + method](checkedOffset(this, offset, 8), little); };
      const write = function (value, offset) {
        offset = checkedOffset(this, offset, 8);
        view(this)['set' + method](offset, value, little);
        return offset + 8;
      };
      defineHidden(proto, 'read' + name, read);
      defineHidden(proto, 'write' + name, write);
      if (name.startsWith('BigUInt')) {
        defineHidden(proto, 'read' + name.replace('UInt', 'Uint'), read);
        defineHidden(proto, 'write' + name.replace('UInt', 'Uint'), write);
      }
    }

    // Integers of 1 to 6 bytes.
    const checkedLength = (byteLength) => {
      if (!Number.isInteger(byteLength) || byteLength < 1 || byteLength > 6) throw outOfRange('byteLength', byteLength);
      return byteLength;
    };
    function readUnsigned(buf, offset, byteLength, little) {
      checkedLength(byteLength);
      offset = checkedOffset(buf, offset, byteLength);
      let value = 0;
      for (let i = 0; i < byteLength; i++) value = value * 256 + buf[offset + (little ? byteLength - 1 - i : i)];
      return value;
    }
    function writeUnsigned(buf, value, offset, byteLength, little) {
      checkedLength(byteLength);
      offset = checkedOffset(buf, offset, byteLength);
      let rest = value;
      for (let i = 0; i < byteLength; i++) {
        buf[offset + (little ? i : byteLength - 1 - i)] = rest & 0xff;
        rest = Math.floor(rest / 256);
      }
      return offset + byteLength;
    }
    for (const little of [false, true]) {
      const end = little ? 'LE' : 'BE';
      const readU = function (offset, byteLength) { return readUnsigned(this, offset, byteLength, little); };
      const readS = function (offset, byteLength) {
        const value = readUnsigned(this, offset, byteLength, little);
        const limit = 2 ** (8 * byteLength - 1);
        return value >= limit ? value - 2 * limit : value;
      };
      const writeU = function (value, offset, byteLength) { return writeUnsigned(this, value, offset, byteLength, little); };
      const writeS = function (value, offset, byteLength) {
        checkedLength(byteLength);
        return writeUnsigned(this, value < 0 ? value + 2 ** (8 * byteLength) : value, offset, byteLength, little);
      };
      for (const [name, fn] of [['readUInt', readU], ['readUint', readU], ['readInt', readS], ['writeUInt', writeU], ['writeUint', writeU], ['writeInt', writeS]]) {
        if (typeof proto[name + end] !== 'function') defineHidden(proto, name + end, fn);
      }
    }

    // Byte order swaps, in place.
    for (const bits of [16, 32, 64]) {
      const size = bits / 8;
      defineHidden(proto, 'swap' + bits, function () {
        if (this.length % size !== 0) {
          throw Object.assign(new RangeError('Buffer size must be a multiple of ' + bits + '-bits'), { code: 'ERR_INVALID_BUFFER_SIZE' });
        }
        for (let i = 0; i < this.length; i += size) subarray.call(this, i, i + size).reverse();
        return this;
      });
    }
  })();

  // Byte comparisons LLRT's Buffer lacks (Node's `equals` and `compare`).
  (function addBufferComparisons() {
    const bytesOf = (value, what) => {
      if (value instanceof Uint8Array) return value;
      throw Object.assign(new TypeError('The "' + what + '" argument must be an instance of Buffer or Uint8Array.'), { code: 'ERR_INVALID_ARG_TYPE' });
    };
    function compareBytes(a, b) {
      const n = Math.min(a.length, b.length);
      for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
      return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
    }
    const define = (target, name, value) => {
      if (typeof target[name] !== 'function') defineHidden(target, name, value);
    };
    define(Buffer, 'compare', (a, b) => compareBytes(bytesOf(a, 'buf1'), bytesOf(b, 'buf2')));
    define(Buffer.prototype, 'equals', function equals(other) {
      return compareBytes(this, bytesOf(other, 'otherBuffer')) === 0;
    });
    define(Buffer.prototype, 'compare', function compare(target, targetStart, targetEnd, sourceStart, sourceEnd) {
      const t = bytesOf(target, 'target');
      return compareBytes(this.subarray(sourceStart || 0, sourceEnd === undefined ? this.length : sourceEnd),
        t.subarray(targetStart || 0, targetEnd === undefined ? t.length : targetEnd));
    });
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
        const found = resolveExports(packageDir, exportsField, subpath);
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

  // Node's resolution of a package's "exports" for require(): the conditions
  // "require", "node" and "default", in the order the package lists them;
  // subpath patterns with one "*"; arrays as fallbacks; targets are exact files.
  const CONDITIONS = ['require', 'node', 'default'];
  function resolveExports(packageDir, exportsField, subpath) {
    const isSubpathMap = exportsField !== null && typeof exportsField === 'object' && !Array.isArray(exportsField) &&
      Object.keys(exportsField).some((k) => k.startsWith('.'));
    if (!isSubpathMap) return subpath === '.' ? resolveTarget(packageDir, exportsField, '') : null;
    if (Object.prototype.hasOwnProperty.call(exportsField, subpath) && !subpath.includes('*')) {
      return resolveTarget(packageDir, exportsField[subpath], '');
    }
    let best = null;
    for (const key of Object.keys(exportsField)) {
      const star = key.indexOf('*');
      if (star >= 0) {
        const prefix = key.slice(0, star), suffix = key.slice(star + 1);
        if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length - 1 &&
          (best === null || prefix.length > best.prefix.length)) {
          best = { key, prefix, match: subpath.slice(prefix.length, subpath.length - suffix.length) };
        }
      } else if (key.endsWith('/') && subpath.startsWith(key) && (best === null || key.length > best.prefix.length)) {
        best = { key, prefix: key, match: subpath.slice(key.length), folder: true };
      }
    }
    if (best === null) return null;
    return resolveTarget(packageDir, exportsField[best.key], best.match, best.folder);
  }

  function resolveTarget(packageDir, target, match, folder) {
    if (typeof target === 'string') {
      if (!target.startsWith('./')) return null;
      const relative = folder ? target + match : target.split('*').join(match);
      const path = normalize(join(packageDir, relative));
      return path !== null && host.hasFile(path) ? path : null;
    }
    if (Array.isArray(target)) {
      for (const candidate of target) {
        const found = resolveTarget(packageDir, candidate, match, folder);
        if (found) return found;
      }
      return null;
    }
    if (target !== null && typeof target === 'object') {
      for (const condition of Object.keys(target)) {
        if (CONDITIONS.includes(condition)) {
          const found = resolveTarget(packageDir, target[condition], match, folder);
          if (found) return found;
        }
      }
    }
    return null;
  }

  // Node ignores a byte order mark at the start of a module or a JSON file.
  const stripBom = (text) => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);

  function loadBuiltin(name) {
    if (name in builtinCache) return builtinCache[name];
    let exports;
    if (name === 'timers') exports = Object.assign({}, timerApi);
    else if (name === 'process') exports = process;
    else if (name === 'console') exports = console;
    else exports = host.builtin(name);
    if (name === 'util') exports = extendUtil(exports);
    if (name === 'path') exports = fixPath(exports);
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


  // LLRT's path drops leading '..' segments and the '.' of an empty result, and
  // has no `posix`; normalize and join are Node's POSIX rules here.
  function fixPath(base) {
    const path = {};
    for (const key of Object.getOwnPropertyNames(base)) path[key] = base[key];
    // Resolves '.' and '..' segments and repeated slashes; '..' above the start
    // is kept for relative paths and dropped at the root of absolute ones.
    function normalizeSegments(text, keepAboveStart) {
      const out = [];
      for (const segment of text.split('/')) {
        if (segment === '' || segment === '.') continue;
        if (segment === '..') {
          if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
          else if (keepAboveStart) out.push('..');
        } else {
          out.push(segment);
        }
      }
      return out.join('/');
    }
    const checkString = (value) => {
      if (typeof value !== 'string') {
        throw Object.assign(new TypeError('The "path" argument must be of type string. Received ' + typeof value), { code: 'ERR_INVALID_ARG_TYPE' });
      }
    };
    path.normalize = function normalize(text) {
      checkString(text);
      if (text === '') return '.';
      const absolute = text.startsWith('/');
      const trailing = text.endsWith('/');
      let result = normalizeSegments(text, !absolute);
      if (result === '') return absolute ? '/' : trailing ? './' : '.';
      if (trailing) result += '/';
      return absolute ? '/' + result : result;
    };
    path.join = function join(...parts) {
      for (const part of parts) checkString(part);
      const joined = parts.filter((part) => part !== '').join('/');
      return joined === '' ? '.' : path.normalize(joined);
    };
    path.posix = path;
    return path;
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
      const source = stripBom(host.readFile(path));
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
  const state = { settled: false, failed: false, value: undefined, error: undefined, promise: undefined, callbackStyle: false, returned: undefined, deferred: null };
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

  function invoke(event, requestId, deadlineMs) {
    const id = ++current;
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
    };
    context[DEADLINE] = deadlineMs; // symbol-keyed: invisible to JSON and Object.keys
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
