// Node's util.format and util.inspect for the js engine: what console.log
// writes into an invocation's logs and what util.inspect returns. Loaded on
// the first console call of an instance and compiled to bytecode once per
// process, like the bootstrap (host.rs).
//
// Written here rather than taken from LLRT: LLRT's formatter lays objects out
// differently (one property per line), shows Sets and Maps without their
// entries, ignores `depth` and keeps `%%`. This follows Node's rules: the
// format specifiers, a depth of 2, circular references, and Node's layout
// (objects on one line when they fit in 80 columns within the three innermost
// levels; arrays of more than six short items in aligned columns).
export default function inspectModule() {
  const customInspect = Symbol.for('nodejs.util.inspect.custom');
  const defaults = { depth: 2, breakLength: 80, compact: 3, maxArrayLength: 100, maxStringLength: 10000, showHidden: false };
  const ARRAY = 1;
  const OBJECT = 0;

  const identifier = /^[a-zA-Z_][a-zA-Z_0-9]*$/;

  // A string as Node quotes it: single quotes unless the text has some and no
  // double quotes (then double), or has both and no backquote (then backquote).
  function quote(text) {
    let q = "'";
    if (text.includes("'")) {
      if (!text.includes('"')) q = '"';
      else if (!text.includes('`') && !text.includes('${')) q = '`';
    }
    let out = '';
    for (const ch of text) {
      const code = ch.charCodeAt(0);
      if (ch === q || ch === '\\') out += '\\' + ch;
      else if (ch === '\n') out += '\\n';
      else if (ch === '\t') out += '\\t';
      else if (ch === '\r') out += '\\r';
      else if (ch === '\b') out += '\\b';
      else if (ch === '\f') out += '\\f';
      else if (code < 0x20 || code === 0x7f) out += '\\x' + code.toString(16).toUpperCase().padStart(2, '0');
      else out += ch;
    }
    return q + out + q;
  }

  function formatNumber(n) {
    return Object.is(n, -0) ? '-0' : String(n);
  }

  function formatPrimitive(value, ctx) {
    switch (typeof value) {
      case 'string': {
        let text = value;
        let trailer = '';
        if (text.length > ctx.maxStringLength) {
          trailer = '... ' + (text.length - ctx.maxStringLength) + ' more character' + (text.length - ctx.maxStringLength > 1 ? 's' : '');
          text = text.slice(0, ctx.maxStringLength);
        }
        // Long multi-line strings are split at their newlines, as in Node.
        if (ctx.compact !== true && text.length > 16 && text.length > ctx.breakLength - ctx.indentationLvl - 4) {
          const lines = text.split(/(?<=\n)/);
          if (lines.length > 1) return lines.map(quote).join(' +\n' + ' '.repeat(ctx.indentationLvl + 2)) + trailer;
        }
        return quote(text) + trailer;
      }
      case 'number': return formatNumber(value);
      case 'bigint': return value + 'n';
      case 'boolean': return String(value);
      case 'undefined': return 'undefined';
      case 'symbol': return value.toString();
      default: return String(value);
    }
  }

  function functionBase(fn) {
    const source = Function.prototype.toString.call(fn);
    if (source.startsWith('class') && source.endsWith('}')) {
      return '[class ' + (fn.name || '(anonymous)') + ']';
    }
    const kind = Object.prototype.toString.call(fn).slice(8, -1); // Function, AsyncFunction, GeneratorFunction…
    return '[' + kind + (fn.name ? ': ' + fn.name : ' (anonymous)') + ']';
  }

  function constructorName(value) {
    let proto = Object.getPrototypeOf(value);
    if (proto === Object.prototype) return 'Object';
    if (proto === Array.prototype) return 'Array';
    while (proto !== null) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, 'constructor');
      if (descriptor !== undefined && typeof descriptor.value === 'function' && descriptor.value.name !== '') {
        return descriptor.value.name;
      }
      proto = Object.getPrototypeOf(proto);
    }
    return null;
  }

  function formatKey(key) {
    if (typeof key === 'symbol') return '[' + key.toString() + ']';
    return identifier.test(key) ? key : quote(key);
  }

  function formatProperty(ctx, value, recurseTimes, key, type) {
    const descriptor = Object.getOwnPropertyDescriptor(value, key) || { value: value[key], enumerable: true };
    let text;
    if (descriptor.value !== undefined || !('get' in descriptor || 'set' in descriptor)) {
      ctx.indentationLvl += 2;
      text = formatValue(ctx, descriptor.value, recurseTimes);
      ctx.indentationLvl -= 2;
    } else if (descriptor.get !== undefined) {
      text = descriptor.set !== undefined ? '[Getter/Setter]' : '[Getter]';
    } else {
      text = descriptor.set !== undefined ? '[Setter]' : 'undefined';
    }
    if (type === ARRAY) return text;
    return formatKey(key) + ': ' + text;
  }

  function ownKeys(value, ctx) {
    const keys = ctx.showHidden ? Object.getOwnPropertyNames(value) : Object.keys(value);
    for (const symbol of Object.getOwnPropertySymbols(value)) {
      if (ctx.showHidden || Object.prototype.propertyIsEnumerable.call(value, symbol)) keys.push(symbol);
    }
    return keys;
  }

  function formatArrayItems(ctx, value, recurseTimes, length) {
    const output = [];
    const shown = Math.min(ctx.maxArrayLength, length);
    let holes = 0;
    for (let i = 0; i < shown; i++) {
      if (!Object.prototype.hasOwnProperty.call(value, i)) {
        holes++;
        continue;
      }
      if (holes > 0) {
        output.push('<' + holes + ' empty item' + (holes > 1 ? 's' : '') + '>');
        holes = 0;
      }
      output.push(formatProperty(ctx, value, recurseTimes, i, ARRAY));
    }
    if (holes > 0) output.push('<' + holes + ' empty item' + (holes > 1 ? 's' : '') + '>');
    if (length > shown) output.push('... ' + (length - shown) + ' more item' + (length - shown > 1 ? 's' : ''));
    return output;
  }

  function formatValue(ctx, value, recurseTimes) {
    if (value === null) return 'null';
    if (typeof value !== 'object' && typeof value !== 'function') return formatPrimitive(value, ctx);
    if (ctx.customInspect) {
      const custom = value[customInspect];
      if (typeof custom === 'function' && custom !== inspect) {
        const depth = ctx.depth === null ? null : ctx.depth - recurseTimes;
        const result = custom.call(value, depth, Object.assign({}, ctx.options, { depth }), inspect);
        if (result !== value) return typeof result === 'string' ? result : formatValue(ctx, result, recurseTimes);
      }
    }
    if (ctx.seen.includes(value)) {
      let index = ctx.circular.get(value);
      if (index === undefined) {
        index = ctx.circular.size + 1;
        ctx.circular.set(value, index);
      }
      return '[Circular *' + index + ']';
    }
    return formatRaw(ctx, value, recurseTimes);
  }

  function formatRaw(ctx, value, recurseTimes) {
    let keys = ownKeys(value, ctx);
    const name = constructorName(value);
    let base = '';
    let braces;
    let type = OBJECT;
    let formatter = null; // produces the entries
    const prefix = (fallback, size) => {
      const shown = name === null ? '[' + fallback + ': null prototype]' : name;
      return (size !== undefined ? shown + '(' + size + ')' : shown) + ' ';
    };

    if (Array.isArray(value)) {
      keys = keys.filter((k) => typeof k === 'symbol' || !/^(0|[1-9][0-9]*)$/.test(k));
      braces = [(name === 'Array' ? '' : prefix('Array', value.length)) + '[', ']'];
      type = ARRAY;
      if (value.length === 0 && keys.length === 0) return braces[0] + ']';
      formatter = () => formatArrayItems(ctx, value, recurseTimes, value.length);
    } else if (value instanceof Set) {
      braces = [prefix('Set', value.size) + '{', '}'];
      if (value.size === 0 && keys.length === 0) return braces[0] + '}';
      formatter = () => {
        ctx.indentationLvl += 2;
        const out = Array.from(value, (v) => formatValue(ctx, v, recurseTimes));
        ctx.indentationLvl -= 2;
        return out;
      };
    } else if (value instanceof Map) {
      braces = [prefix('Map', value.size) + '{', '}'];
      if (value.size === 0 && keys.length === 0) return braces[0] + '}';
      formatter = () => {
        ctx.indentationLvl += 2;
        const out = Array.from(value, ([k, v]) => formatValue(ctx, k, recurseTimes) + ' => ' + formatValue(ctx, v, recurseTimes));
        ctx.indentationLvl -= 2;
        return out;
      };
    } else if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      if (typeof Buffer === 'function' && value instanceof Buffer) {
        const shown = Array.from(value.subarray(0, 50), (b) => b.toString(16).padStart(2, '0')).join(' ');
        const more = value.length > 50 ? ' ... ' + (value.length - 50) + ' more byte' + (value.length - 50 > 1 ? 's' : '') : '';
        return '<Buffer' + (shown ? ' ' + shown : '') + more + '>';
      }
      keys = keys.filter((k) => typeof k === 'symbol' || !/^(0|[1-9][0-9]*)$/.test(k));
      braces = [prefix(name || 'TypedArray', value.length) + '[', ']'];
      type = ARRAY;
      if (value.length === 0 && keys.length === 0) return braces[0] + ']';
      formatter = () => {
        const out = [];
        const shown = Math.min(ctx.maxArrayLength, value.length);
        for (let i = 0; i < shown; i++) out.push(typeof value[i] === 'bigint' ? value[i] + 'n' : formatNumber(value[i]));
        if (value.length > shown) out.push('... ' + (value.length - shown) + ' more item' + (value.length - shown > 1 ? 's' : ''));
        return out;
      };
    } else if (value instanceof ArrayBuffer) {
      const bytes = new Uint8Array(value);
      const shown = Array.from(bytes.subarray(0, 50), (b) => b.toString(16).padStart(2, '0')).join(' ');
      const more = bytes.length > 50 ? ' ... ' + (bytes.length - 50) + ' more byte' + (bytes.length - 50 > 1 ? 's' : '') : '';
      braces = [prefix('ArrayBuffer') + '{', '}'];
      formatter = () => ['[Uint8Contents]: <' + shown + more + '>', 'byteLength: ' + bytes.length];
    } else {
      braces = ['{', '}'];
      if (typeof value === 'function') {
        base = functionBase(value);
        if (keys.length === 0) return base;
      } else if (value instanceof RegExp) {
        base = RegExp.prototype.toString.call(value);
        if (keys.length === 0) return base;
      } else if (value instanceof Date) {
        base = Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
        if (keys.length === 0) return base;
      } else if (value instanceof Error) {
        base = formatError(value);
        keys = keys.filter((k) => k !== 'stack' && k !== 'message');
        if (keys.length === 0) return base;
      } else if (value instanceof Promise) {
        braces = [prefix('Promise') + '{', '}'];
        formatter = () => ['<unknown>'];
      } else if (value instanceof WeakMap || value instanceof WeakSet) {
        return prefix(value instanceof WeakMap ? 'WeakMap' : 'WeakSet') + '{ <items unknown> }';
      } else if (name === 'Object') {
        if (keys.length === 0) return '{}';
      } else {
        const tag = value[Symbol.toStringTag];
        const label = name === null ? '[Object: null prototype]' : name + (typeof tag === 'string' && tag !== '' && tag !== name ? ' [' + tag + ']' : '');
        braces[0] = label + ' {';
        if (keys.length === 0) return label + ' {}';
      }
    }

    if (recurseTimes > ctx.depth && ctx.depth !== null) {
      return '[' + (name === null ? 'Object' : Array.isArray(value) ? 'Array' : name) + ']';
    }
    recurseTimes += 1;
    ctx.seen.push(value);
    ctx.currentDepth = recurseTimes;
    let output;
    try {
      output = formatter !== null ? formatter() : [];
      for (const key of keys) output.push(formatProperty(ctx, value, recurseTimes, key, OBJECT));
    } finally {
      ctx.seen.pop();
    }
    const index = ctx.circular.get(value);
    if (index !== undefined) {
      const reference = '<ref *' + index + '>';
      if (base === '') braces[0] = reference + ' ' + braces[0];
      else base = reference + ' ' + base;
    }
    return reduceToSingleString(ctx, output, base, braces, type, recurseTimes, value);
  }

  // err.stack when it begins with the error's own line (it does on this
  // engine, see bootstrap.js), else the name and message.
  function formatError(error) {
    const stack = typeof error.stack === 'string' ? error.stack : '';
    const head = Error.prototype.toString.call(error);
    if (stack === '') return '[' + head + ']';
    if (stack.startsWith(head)) return stack;
    // The stack's own first line was written when the error was made, before a
    // subclass's constructor set its name: the current one replaces it.
    const lines = stack.split('\n');
    if (!lines[0].startsWith('    at ')) lines[0] = head;
    else lines.unshift(head);
    return lines.join('\n');
  }

  function groupArrayElements(ctx, output, value) {
    let totalLength = 0;
    let maxLength = 0;
    let outputLength = output.length;
    if (ctx.maxArrayLength < output.length) outputLength--;
    const separatorSpace = 2;
    const dataLen = new Array(outputLength);
    for (let i = 0; i < outputLength; i++) {
      const len = output[i].length;
      dataLen[i] = len;
      totalLength += len + separatorSpace;
      if (maxLength < len) maxLength = len;
    }
    const actualMax = maxLength + separatorSpace;
    if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength && (totalLength / actualMax > 5 || maxLength <= 6)) {
      const averageBias = Math.sqrt(actualMax - totalLength / output.length);
      const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
      const columns = Math.min(
        Math.round(Math.sqrt(2.5 * biasedMax * outputLength) / biasedMax),
        Math.floor((ctx.breakLength - ctx.indentationLvl) / actualMax),
        ctx.compact * 4,
        15,
      );
      if (columns <= 1) return output;
      const maxLineLength = [];
      for (let i = 0; i < columns; i++) {
        let lineLength = 0;
        for (let j = i; j < output.length; j += columns) if (dataLen[j] > lineLength) lineLength = dataLen[j];
        maxLineLength.push(lineLength + separatorSpace);
      }
      let padStart = true;
      if (value !== undefined) {
        for (let i = 0; i < output.length; i++) {
          if (typeof value[i] !== 'number' && typeof value[i] !== 'bigint') {
            padStart = false;
            break;
          }
        }
      }
      const grouped = [];
      for (let i = 0; i < outputLength; i += columns) {
        const max = Math.min(i + columns, outputLength);
        let line = '';
        let j = i;
        for (; j < max - 1; j++) {
          const cell = output[j] + ', ';
          line += padStart ? cell.padStart(maxLineLength[j - i], ' ') : cell.padEnd(maxLineLength[j - i], ' ');
        }
        line += padStart ? output[j].padStart(maxLineLength[j - i] - separatorSpace, ' ') : output[j];
        grouped.push(line);
      }
      if (ctx.maxArrayLength < output.length) grouped.push(output[outputLength]);
      return grouped;
    }
    return output;
  }

  function isBelowBreakLength(ctx, output, start, base) {
    let totalLength = output.length + start;
    if (totalLength + output.length > ctx.breakLength) return false;
    for (const entry of output) {
      totalLength += entry.length;
      if (totalLength > ctx.breakLength) return false;
    }
    return base === '' || !base.includes('\n');
  }

  function reduceToSingleString(ctx, output, base, braces, type, recurseTimes, value) {
    if (ctx.compact !== true) {
      if (typeof ctx.compact === 'number' && ctx.compact >= 1) {
        const entries = output.length;
        if (type === ARRAY && entries > 6) output = groupArrayElements(ctx, output, value);
        if (ctx.currentDepth - recurseTimes < ctx.compact && entries === output.length) {
          const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
          if (isBelowBreakLength(ctx, output, start, base)) {
            const joined = output.join(', ');
            if (!joined.includes('\n')) return (base ? base + ' ' : '') + braces[0] + ' ' + joined + ' ' + braces[1];
          }
        }
      }
      const indentation = '\n' + ' '.repeat(ctx.indentationLvl);
      return (base ? base + ' ' : '') + braces[0] + indentation + '  ' + output.join(',' + indentation + '  ') + indentation + braces[1];
    }
    if (isBelowBreakLength(ctx, output, 0, base)) {
      return braces[0] + (base ? ' ' + base : '') + ' ' + output.join(', ') + ' ' + braces[1];
    }
    const indentation = '\n' + ' '.repeat(ctx.indentationLvl);
    return (base ? base + ' ' : '') + braces[0] + indentation + '  ' + output.join(',' + indentation + '  ') + indentation + braces[1];
  }

  // What formatting a primitive at the top level reads of a context.
  const topLevel = { indentationLvl: 0, breakLength: defaults.breakLength, compact: defaults.compact, maxStringLength: defaults.maxStringLength };
  const isPrimitive = (value) => value === null || (typeof value !== 'object' && typeof value !== 'function');

  function inspect(value, options) {
    // Most console arguments are primitives: no context to build for them.
    if (options === undefined && isPrimitive(value)) return value === null ? 'null' : formatPrimitive(value, topLevel);
    const opts = Object.assign({}, defaults, typeof options === 'object' && options !== null ? options : {});
    if (typeof options === 'boolean') opts.showHidden = options;
    const ctx = {
      depth: opts.depth === Infinity ? null : opts.depth,
      breakLength: opts.breakLength,
      compact: opts.compact,
      maxArrayLength: opts.maxArrayLength === null ? Infinity : opts.maxArrayLength,
      maxStringLength: opts.maxStringLength === null ? Infinity : opts.maxStringLength,
      showHidden: opts.showHidden,
      customInspect: opts.customInspect !== false,
      options: opts,
      seen: [],
      circular: new Map(),
      indentationLvl: 0,
      currentDepth: 0,
    };
    const text = formatValue(ctx, value, 0);
    return text;
  }
  inspect.custom = customInspect;
  inspect.defaultOptions = defaults;

  function formatWithOptions(options, first, ...args) {
    const show = (value) => {
      if (typeof value === 'string') return value;
      if (isPrimitive(value)) return inspect(value);
      return inspect(value, Object.assign({}, options, { compact: 3, colors: false, depth: options.depth === undefined ? 2 : options.depth }));
    };
    if (typeof first !== 'string') return [first, ...args].map(show).join(' ');
    if (args.length === 0) return first;
    let out = '';
    let last = 0;
    let a = 0;
    for (let i = 0; i < first.length - 1; i++) {
      if (first.charCodeAt(i) !== 37) continue; // '%'
      const next = first[++i];
      if (a < args.length) {
        let text;
        switch (next) {
          case 's': {
            const arg = args[a];
            if (typeof arg === 'number') text = formatNumber(arg);
            else if (typeof arg === 'bigint') text = arg + 'n';
            else if (typeof arg !== 'object' || arg === null || !hasBuiltInToString(arg)) text = String(arg);
            else text = inspect(arg, Object.assign({}, options, { depth: 0, colors: false, compact: 3 }));
            break;
          }
          case 'j':
            try { text = JSON.stringify(args[a]); } catch (e) { text = '[Circular]'; }
            break;
          case 'd': {
            const arg = args[a];
            text = typeof arg === 'bigint' ? arg + 'n' : typeof arg === 'symbol' ? 'NaN' : formatNumber(Number(arg));
            break;
          }
          case 'O': text = inspect(args[a], options); break;
          case 'o': text = inspect(args[a], Object.assign({}, options, { showHidden: true, depth: 4 })); break;
          case 'i': {
            const arg = args[a];
            text = typeof arg === 'bigint' ? arg + 'n' : typeof arg === 'symbol' ? 'NaN' : formatNumber(parseInt(arg));
            break;
          }
          case 'f': text = typeof args[a] === 'symbol' ? 'NaN' : formatNumber(parseFloat(args[a])); break;
          case 'c': text = ''; break;
          case '%':
            out += first.slice(last, i);
            last = i + 1;
            continue;
          default:
            continue;
        }
        if (last !== i - 1) out += first.slice(last, i - 1);
        out += text;
        last = i + 1;
        a++;
      } else if (next === '%') {
        out += first.slice(last, i);
        last = i + 1;
      }
    }
    out = last === 0 ? first : out + first.slice(last);
    for (; a < args.length; a++) out += ' ' + show(args[a]);
    return out;
  }

  // Whether `%s` shows the object with inspect (its toString is a built-in
  // one) rather than with its own toString.
  function hasBuiltInToString(value) {
    if (Object.prototype.hasOwnProperty.call(value, 'toString')) return false;
    let proto = value;
    do {
      proto = Object.getPrototypeOf(proto);
    } while (proto !== null && !Object.prototype.hasOwnProperty.call(proto, 'toString'));
    if (proto === null) return true;
    const descriptor = Object.getOwnPropertyDescriptor(proto, 'constructor');
    const ctor = descriptor && descriptor.value;
    return typeof ctor === 'function' && globalThis[ctor.name] === ctor && ctor.prototype === proto;
  }

  const format = (...args) => (args.length === 0 ? '' : formatWithOptions({}, ...args));
  return { format, formatWithOptions, inspect };
}
