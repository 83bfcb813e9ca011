// Node's Buffer behaviour where LLRT's Buffer differs, for the js engine:
// applied to the Buffer class the first time function code reaches it
// (bootstrap.js), and compiled to bytecode once per process (host.rs).
// `reserve(bytes)` says whether an allocation of that size fits under the
// invocation's memory limit (host.rs).
export default function patchBuffer(Buffer, defineHidden, reserve) {
  // A size function code chose is checked before LLRT allocates it: the
  // allocation would otherwise happen before the memory limit could stop it,
  // and one too large for the machine ends the process.
  for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow']) {
    const allocate = Buffer[name];
    if (typeof allocate !== 'function') continue;
    Buffer[name] = function (size, ...rest) {
      if (typeof size === 'number' && size > 0 && !reserve(size)) throw new RangeError('Array buffer allocation failed');
      return allocate.call(this, size, ...rest);
    };
  }

  // Node's Buffer serialises as {"type":"Buffer","data":[...]} (clients depend on
  // it: wx-server-sdk sends Buffers that way); LLRT's Buffer has no toJSON.
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
      // LLRT refuses lone surrogates; Node encodes them as U+FFFD.
      if (typeof value === 'string' && (encoding === undefined || encoding === 'utf8' || encoding === 'utf-8')) {
        return from.call(this, value.toWellFormed(), 'utf8');
      }
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
      // Node takes the values of other typed arrays, arrays of any numbers
      // (each kept modulo 256) and array-likes ({ length }, { type: 'Buffer',
      // data }) element by element; LLRT copies raw bytes or fails.
      if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array) && !(value instanceof ArrayBuffer) &&
        !(typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer)) {
        const elements = value.type === 'Buffer' && Array.isArray(value.data) ? value.data
          : ArrayBuffer.isView(value) && !(value instanceof DataView) ? value
          : typeof value.length === 'number' ? Array.from(value) : null;
        if (elements !== null) return from.call(this, Uint8Array.from(elements, (v) => Number(v) & 255));
      }
      if (typeof value === 'number') {
        throw Object.assign(new TypeError('The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object. Received type number (' + value + ')'), { code: 'ERR_INVALID_ARG_TYPE' });
      }
      return from.apply(this, given(arguments));
    };
    // Node pads with zeros up to a totalLength beyond the inputs.
    const concat = Buffer.concat;
    Buffer.concat = function (list, totalLength) {
      const joined = concat.apply(this, given(arguments));
      if (typeof totalLength !== 'number' || totalLength <= joined.length) return joined;
      const padded = Buffer.alloc(totalLength);
      padded.set(joined, 0);
      return padded;
    };
    defineHidden(Buffer.prototype, 'toString', function (encoding, start, end) {
      const name = encodingOf(encoding);
      // Node's clamping of start and end; LLRT's native panics on a range
      // it does not expect (start past end), so it only ever gets whole views.
      start = start === undefined || start < 0 ? 0 : Math.trunc(start) || 0;
      end = end === undefined || end > this.length ? this.length : Math.trunc(end) || 0;
      if (end <= start) return '';
      if (!isPatched(name)) {
        const view = start === 0 && end === this.length ? this : this.subarray(start, end);
        return name === undefined ? toString.call(view) : toString.call(view, encoding);
      }
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
    // Strings and bytes are repeated here for every encoding: LLRT's fill
    // writes zeros for them, and divides by zero on an empty string.
    defineHidden(Buffer.prototype, 'fill', function (value, offset, end, encoding) {
      [offset, end, encoding] = encodingLast(offset, end, encoding);
      const start = offset === undefined ? 0 : offset >>> 0;
      const stop = end === undefined ? this.length : Math.min(end >>> 0, this.length);
      let bytes;
      if (typeof value === 'string') {
        bytes = patchedBytes(value, encoding) || Buffer.from(value, encoding === undefined ? 'utf8' : encoding);
      } else if (value instanceof Uint8Array) {
        bytes = value;
      } else {
        Uint8Array.prototype.fill.call(this, (Number(value) || 0) & 255, start, stop);
        return this;
      }
      if (bytes.length === 0) {
        Uint8Array.prototype.fill.call(this, 0, start, stop);
        return this;
      }
      for (let i = start; i < stop; i++) this[i] = bytes[(i - start) % bytes.length];
      return this;
    });
    // Clamped as in Node; LLRT's copy panics on a range past either end.
    defineHidden(Buffer.prototype, 'copy', function copy(target, targetStart, sourceStart, sourceEnd) {
      const at = targetStart === undefined ? 0 : Math.max(0, Math.trunc(targetStart) || 0);
      const from = sourceStart === undefined ? 0 : Math.max(0, Math.trunc(sourceStart) || 0);
      const to = sourceEnd === undefined ? this.length : Math.min(this.length, Math.max(0, Math.trunc(sourceEnd) || 0));
      if (at >= target.length || from >= to) return 0;
      const count = Math.min(to - from, target.length - at);
      target.set(this.subarray(from, from + count), at);
      return count;
    });
    const alloc = Buffer.alloc;
    Buffer.alloc = function (size, value, encoding) {
      // Filled by the fill above, for every encoding (LLRT's own divides by zero on '').
      if (typeof value === 'string' || value instanceof Uint8Array) return alloc.call(this, size).fill(value, encoding);
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
}
