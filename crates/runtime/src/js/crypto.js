// Node's `crypto` module for the js engine, loaded on the first
// `require('crypto')` (or use of the global `crypto`): host.rs hands it LLRT's
// crypto module and returns what this builds. Compiled to bytecode once per
// process, like the bootstrap; kept out of the bootstrap so that instances
// that never use crypto do not carry it.
//
// It is Node's crypto API over LLRT's hashes, HMACs and random bytes. LLRT's own
// functions take UTF-8 strings or bytes and encode digests only as hex or
// base64; Node takes input encodings and gives digests in any Buffer
// encoding, validates its arguments with RangeErrors, and calls callbacks
// asynchronously. HMAC-MD5 (which LLRT's ring provider lacks) is the RFC 2104
// construction over LLRT's MD5.
export default function nodeCrypto(base) {
  const HASHES = ['md5', 'sha1', 'sha256', 'sha384', 'sha512'];
  const ALIASES = {
    'sha-1': 'sha1', 'sha-256': 'sha256', 'sha-384': 'sha384', 'sha-512': 'sha512',
    'rsa-md5': 'md5', 'rsa-sha1': 'sha1', 'rsa-sha256': 'sha256', 'rsa-sha384': 'sha384', 'rsa-sha512': 'sha512',
  };

  function digestName(name) {
    if (typeof name !== 'string') {
      throw Object.assign(new TypeError('The "algorithm" argument must be of type string. Received ' + typeof name), { code: 'ERR_INVALID_ARG_TYPE' });
    }
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

  // A secret key as Node's KeyObject, which libraries (jsonwebtoken) check with
  // `instanceof` and pass to createHmac; asymmetric keys are not available.
  class KeyObject {
    constructor(type, bytes) {
      if (type !== 'secret') throw Object.assign(new TypeError('only secret keys are available on the js engine'), { code: 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM' });
      this._bytes = bytes;
    }
    get type() { return 'secret'; }
    get symmetricKeySize() { return this._bytes.length; }
    export() { return Buffer.from(this._bytes); }
    equals(other) { return other instanceof KeyObject && timingSafeEqualBytes(this._bytes, other._bytes); }
  }

  function createSecretKey(key, encoding) {
    return new KeyObject('secret', Uint8Array.from(bytesOf(key, encoding, 'key')));
  }

  // Any accepted input as a Uint8Array over the same memory.
  function bytesOf(data, encoding, what) {
    if (data instanceof KeyObject) return data._bytes;
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

  // Node calls these callbacks from its event loop, where a throw is an uncaught
  // exception; from a timer here, a throw fails the invocation the same way
  // (from a promise job it would vanish as an unhandled rejection).
  const later = (fn) => setImmediate(fn);

  function randomBytes(size, callback) {
    checkSize('size', size, MAX_RANDOM_BYTES);
    const bytes = base.randomBytes(size);
    if (typeof callback !== 'function') return bytes;
    later(() => callback(null, bytes));
  }

  // offset and size count elements of a typed array, bytes of anything else.
  function randomFillSync(target, offset, size) {
    if (typeof target === 'string' || target instanceof KeyObject) throw invalidType('buf', target);
    const view = bytesOf(target, undefined, 'buf');
    const unit = target.BYTES_PER_ELEMENT || 1;
    const elements = view.length / unit;
    offset = offset === undefined ? 0 : offset;
    checkSize('offset', offset, elements);
    size = size === undefined ? elements - offset : size;
    checkSize('size', size, elements - offset);
    if (size > 0) view.set(base.randomBytes(size * unit), offset * unit);
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
    if (range >= 2 ** 48) throw outOfRange('max - min', '<= 281474976710655', range);
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

  function timingSafeEqualBytes(x, y) {
    let diff = x.length ^ y.length;
    for (let i = 0; i < x.length && i < y.length; i++) diff |= x[i] ^ y[i];
    return diff === 0;
  }

  function timingSafeEqual(a, b) {
    if (typeof a === 'string') throw invalidType('buf1', a);
    if (typeof b === 'string') throw invalidType('buf2', b);
    const x = bytesOf(a, undefined, 'buf1');
    const y = bytesOf(b, undefined, 'buf2');
    if (x.length !== y.length) {
      throw Object.assign(new RangeError('Input buffers must have the same byte length'), { code: 'ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH' });
    }
    return timingSafeEqualBytes(x, y);
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
    createHash, createHmac, Hash, Hmac, KeyObject, createSecretKey,
    getHashes: () => HASHES.slice(),
    randomBytes, pseudoRandomBytes: randomBytes, randomFillSync, randomFill, randomInt, randomUUID,
    getRandomValues, timingSafeEqual,
    webcrypto, subtle, constants: {},
  };
}
