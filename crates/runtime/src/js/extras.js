// The parts of the Node environment that the bootstrap adds on first use, so
// that instances that never use them do not carry them: the console methods
// beyond the writers, process.stdout and stderr, the fixes to LLRT's path and
// util, and package.json "exports" resolution. Compiled
// to bytecode once per process, like the bootstrap (host.rs).
export default function extras() {
  function consoleExtras(console, host) {
    const timers = new Map();
    const counts = new Map();
    const label = (l) => (l === undefined ? 'default' : String(l));
    const elapsed = (l) => {
      const ms = (host.monotonicNs() - timers.get(l)) / 1e6;
      return ms < 1000 ? ms.toFixed(3) + 'ms' : (ms / 1000).toFixed(3) + 's';
    };
    return {
      assert(ok, ...data) {
        if (ok) return;
        if (typeof data[0] === 'string') data[0] = 'Assertion failed: ' + data[0];
        else data.unshift('Assertion failed');
        console.error(...data);
      },
      // The label at the outer level, then what follows is indented.
      group(...l) {
        if (l.length > 0) console.log(...l);
        host.logGroup(true);
      },
      groupCollapsed(...l) { console.group(...l); },
      groupEnd() { host.logGroup(false); },
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
    };
  }

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
  function extendUtil(base, formatter) {
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
    util.format = (...args) => formatter().format(...args);
    util.formatWithOptions = (options, ...args) => formatter().formatWithOptions(options, ...args);
    util.inspect = (value, options) => formatter().inspect(value, options);
    util.inspect.custom = Symbol.for('nodejs.util.inspect.custom');
    util.isDeepStrictEqual = (a, b) => deepStrictEqual(a, b, new Map());
    const tag = (v) => Object.prototype.toString.call(v).slice(8, -1);
    const typedArrayTag = (v) => (ArrayBuffer.isView(v) && !(v instanceof DataView) ? v[Symbol.toStringTag] : undefined);
    util.types = {
      isPromise: (v) => v instanceof Promise,
      isDate: (v) => v instanceof Date,
      isRegExp: (v) => v instanceof RegExp,
      isMap: (v) => v instanceof Map,
      isSet: (v) => v instanceof Set,
      isWeakMap: (v) => v instanceof WeakMap,
      isWeakSet: (v) => v instanceof WeakSet,
      isNativeError: (v) => v instanceof Error,
      isArrayBuffer: (v) => v instanceof ArrayBuffer,
      isAnyArrayBuffer: (v) => v instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer),
      isArrayBufferView: (v) => ArrayBuffer.isView(v),
      isDataView: (v) => v instanceof DataView,
      isTypedArray: (v) => typedArrayTag(v) !== undefined,
      isAsyncFunction: (v) => typeof v === 'function' && tag(v) === 'AsyncFunction',
      isGeneratorFunction: (v) => typeof v === 'function' && (tag(v) === 'GeneratorFunction' || tag(v) === 'AsyncGeneratorFunction'),
      isGeneratorObject: (v) => tag(v) === 'Generator',
      isBoxedPrimitive: (v) => v instanceof Number || v instanceof String || v instanceof Boolean || v instanceof BigInt || v instanceof Symbol,
      isNumberObject: (v) => v instanceof Number,
      isStringObject: (v) => v instanceof String,
      isBooleanObject: (v) => v instanceof Boolean,
      isSymbolObject: (v) => typeof v === 'object' && v instanceof Symbol,
      isProxy: () => false,
    };
    for (const name of ['Uint8Array', 'Uint8ClampedArray', 'Uint16Array', 'Uint32Array', 'Int8Array', 'Int16Array', 'Int32Array',
      'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array']) {
      util.types['is' + name] = (v) => typedArrayTag(v) === name;
    }
    return util;
  }

  // Node's isDeepStrictEqual: same prototypes, own enumerable keys (symbols
  // too) and values compared recursively with Object.is, Maps and Sets by
  // content, Dates, RegExps, boxed primitives and errors by what they hold;
  // `seen` pairs objects already being compared, for cycles.
  function deepStrictEqual(a, b, seen) {
    if (Object.is(a, b)) return true;
    if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
    if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
    if (Object.prototype.toString.call(a) !== Object.prototype.toString.call(b)) return false;
    if (seen.get(a) === b) return true;
    seen.set(a, b);
    if (a instanceof Date && a.getTime() !== b.getTime()) return false;
    if (a instanceof RegExp && (a.source !== b.source || a.flags !== b.flags || a.lastIndex !== b.lastIndex)) return false;
    if (a instanceof Error && (a.message !== b.message || a.name !== b.name)) return false;
    for (const Box of [Number, String, Boolean]) {
      if (a instanceof Box && !Object.is(Box.prototype.valueOf.call(a), Box.prototype.valueOf.call(b))) return false;
    }
    if (ArrayBuffer.isView(a) && !(a instanceof DataView)) {
      if (a.length !== b.length) return false;
      for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
    }
    if (Array.isArray(a) && a.length !== b.length) return false;
    if (a instanceof Set) {
      if (a.size !== b.size) return false;
      outer: for (const item of a) {
        if (b.has(item)) continue;
        if (typeof item !== 'object' || item === null) return false;
        for (const other of b) if (deepStrictEqual(item, other, seen)) continue outer;
        return false;
      }
    }
    if (a instanceof Map) {
      if (a.size !== b.size) return false;
      for (const [key, value] of a) {
        if (!b.has(key) || !deepStrictEqual(value, b.get(key), seen)) return false;
      }
    }
    const keysOf = (o) => Object.keys(o).concat(Object.getOwnPropertySymbols(o).filter((s) => Object.prototype.propertyIsEnumerable.call(o, s)));
    const keysA = keysOf(a);
    const keysB = keysOf(b);
    if (keysA.length !== keysB.length) return false;
    for (const key of keysA) {
      if (!Object.prototype.propertyIsEnumerable.call(b, key)) return false;
      if (!deepStrictEqual(a[key], b[key], seen)) return false;
    }
    return true;
  }


  // Node's resolution of a package's "exports" for require(): the conditions
  // "require", "node" and "default", in the order the package lists them;
  // subpath patterns with one "*"; arrays as fallbacks; targets are exact files.
  const CONDITIONS = ['require', 'node', 'default'];
  function resolveExports(packageDir, exportsField, subpath, paths) {
    const isSubpathMap = exportsField !== null && typeof exportsField === 'object' && !Array.isArray(exportsField) &&
      Object.keys(exportsField).some((k) => k.startsWith('.'));
    if (!isSubpathMap) return subpath === '.' ? resolveTarget(paths, packageDir, exportsField, '') : null;
    if (Object.prototype.hasOwnProperty.call(exportsField, subpath) && !subpath.includes('*')) {
      return resolveTarget(paths, packageDir, exportsField[subpath], '');
    }
    let best = null;
    for (const key of Object.keys(exportsField)) {
      const star = key.indexOf('*');
      if (star >= 0) {
        const prefix = key.slice(0, star), suffix = key.slice(star + 1);
        // Node prefers the longer prefix, then the longer key.
        if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length - 1 &&
          (best === null || prefix.length > best.prefix.length || (prefix.length === best.prefix.length && key.length > best.key.length))) {
          best = { key, prefix, match: subpath.slice(prefix.length, subpath.length - suffix.length) };
        }
      } else if (key.endsWith('/') && subpath.startsWith(key) && (best === null || key.length > best.prefix.length)) {
        best = { key, prefix: key, match: subpath.slice(key.length), folder: true };
      }
    }
    if (best === null) return null;
    return resolveTarget(paths, packageDir, exportsField[best.key], best.match, best.folder);
  }

  function resolveTarget(paths, packageDir, target, match, folder) {
    const { normalize, join, hasFile } = paths;
    if (typeof target === 'string') {
      if (!target.startsWith('./')) return null;
      const relative = folder ? target + match : target.split('*').join(match);
      const path = normalize(join(packageDir, relative));
      return path !== null && hasFile(path) ? path : null;
    }
    if (Array.isArray(target)) {
      for (const candidate of target) {
        const found = resolveTarget(paths, packageDir, candidate, match, folder);
        if (found) return found;
      }
      return null;
    }
    if (target !== null && typeof target === 'object') {
      for (const condition of Object.keys(target)) {
        if (CONDITIONS.includes(condition)) {
          const found = resolveTarget(paths, packageDir, target[condition], match, folder);
          if (found) return found;
        }
      }
    }
    return null;
  }

  // Each write is a log line of the invocation (without its final newline):
  // output is captured per invocation rather than streamed to a terminal.
  function outputStream(fd, write) {
    return {
      fd,
      isTTY: false,
      writable: true,
      columns: 80,
      write(chunk, encoding, callback) {
        if (typeof encoding === 'function') callback = encoding;
        const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(typeof encoding === 'string' ? encoding : 'utf8');
        write(text.endsWith('\n') ? text.slice(0, -1) : text);
        if (typeof callback === 'function') Promise.resolve().then(() => callback(null));
        return true;
      },
      end(chunk, encoding, callback) { if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') this.write(chunk, encoding, callback); },
      on() { return this; }, once() { return this; }, off() { return this; }, removeListener() { return this; }, emit() { return false; },
    };
  }

  // The `stack` of an error as Node writes it (see Error.prepareStackTrace in
  // bootstrap.js): its own line, then a line per frame. A module's first line
  // follows its CommonJS wrapper, whose columns come off.
  function formatStack(error, frames, root, wrapperColumns) {
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
      if (line === 1 && file.startsWith(root)) column = Math.max(1, column - wrapperColumns);
      const where = file + (line > 0 ? ':' + line + ':' + column : '');
      stack += '\n    at ' + name + ' (' + where + ')';
    }
    return stack;
  }

  // A prepareStackTrace set by function code, called once the CallSite
  // class's getFunction gives undefined for frames outside the function's
  // own files (bootstrap.js says why).
  let callSitesGuarded = false;
  function guardCallSites(prepare, root) {
    return function prepareStackTrace(error, frames) {
      if (!callSitesGuarded && frames.length > 0) {
        callSitesGuarded = true;
        const callSite = Object.getPrototypeOf(frames[0]);
        const { getFunction, getFileName } = callSite;
        Object.defineProperty(callSite, 'getFunction', {
          value: function getFunction_() {
            const file = getFileName.call(this);
            return typeof file === 'string' && file.startsWith(root) ? getFunction.call(this) : undefined;
          },
          writable: true,
          configurable: true,
          enumerable: false,
        });
      }
      return prepare.call(this, error, frames);
    };
  }

  // context.sse()'s stream: made when an instance's function first asks for
  // one, so that instances that never do carry none of it. `sse` is the
  // host's (sse(0) opens the invocation's stream, false when its caller
  // takes none; sse(1, json) sends an event, which Rust formats and streams;
  // sse(2) ends it); `isCurrent()` tells whether its invocation still runs.
  class EventStream {
    constructor(sse, isCurrent) { this._sse = sse; this._isCurrent = isCurrent; this._ended = false; }
    get closed() { return this._ended || !this._isCurrent(); }
    send(message) {
      if (this.closed) return false;
      this._sse(1, JSON.stringify(message === undefined ? null : message));
      return true;
    }
    end(message) {
      if (this.closed) return;
      if (message !== undefined) this.send(message);
      this._ended = true;
      this._sse(2);
    }
  }

  // The invocation's stream, the same one each time it asks.
  let sseOp = null;
  let asked = { id: undefined, stream: null };
  function eventStream(host, id, isCurrent) {
    if (asked.id !== id) {
      sseOp = sseOp || host.engineModule('sse');
      asked = { id, stream: sseOp(0) ? new EventStream(sseOp, isCurrent) : null };
    }
    return asked.stream;
  }

  return { consoleExtras, fixPath, extendUtil, resolveExports, outputStream, formatStack, guardCallSites, eventStream };
}
