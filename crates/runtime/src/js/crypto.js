// Node's `crypto` module for the js engine, loaded on the first
// `require('crypto')` (or use of the global `crypto`): host.rs hands it LLRT's
// crypto module and returns what this builds. Compiled to bytecode once per
// process, like the bootstrap; kept out of the bootstrap so that instances
// that never use crypto do not carry it.
//
// It is Node's crypto API over LLRT's hashes, HMACs and random bytes, and over
// `native`: AES block and counter steps, GCM tags and PBKDF2 (ciphers.rs), and
// key parsing, signing and verifying (signatures.rs). LLRT's own
// functions take UTF-8 strings or bytes and encode digests only as hex or
// base64; Node takes input encodings and gives digests in any Buffer
// encoding, validates its arguments with RangeErrors, and calls callbacks
// asynchronously. HMAC-MD5 (which LLRT's ring provider lacks) is the RFC 2104
// construction over LLRT's MD5.
export default function nodeCrypto(base, native) {
  const HASHES = ['md5', 'sha1', 'sha256', 'sha384', 'sha512'];
  // The other names OpenSSL (and so Node) knows the digests by, lowercased.
  const ALIASES = {
    'sha-1': 'sha1', 'sha-256': 'sha256', 'sha-384': 'sha384', 'sha-512': 'sha512',
    'rsa-md5': 'md5', 'rsa-sha1': 'sha1', 'rsa-sha256': 'sha256', 'rsa-sha384': 'sha384', 'rsa-sha512': 'sha512',
    sha1withrsaencryption: 'sha1', sha256withrsaencryption: 'sha256', sha384withrsaencryption: 'sha384', sha512withrsaencryption: 'sha512',
    'ecdsa-with-sha256': 'sha256', 'ecdsa-with-sha384': 'sha384', 'ecdsa-with-sha512': 'sha512',
  };
  // What signatures and PBKDF2 take (the SHA family only).
  const SHA_DIGESTS = ['sha1', 'sha256', 'sha384', 'sha512'];
  // A digest's canonical name when it is one of `allowed`, else undefined.
  function knownDigest(name, allowed) {
    const lower = name.toLowerCase();
    const canonical = ALIASES[lower] || lower;
    return allowed.includes(canonical) ? canonical : undefined;
  }

  function digestName(name) {
    if (typeof name !== 'string') {
      throw Object.assign(new TypeError('The "algorithm" argument must be of type string. Received ' + typeof name), { code: 'ERR_INVALID_ARG_TYPE' });
    }
    const canonical = knownDigest(name, HASHES);
    if (canonical === undefined) {
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

  const withCode = (error, code) => Object.assign(error, { code });
  // How Node's argument errors describe the value they got.
  function received(value) {
    if (value === null || value === undefined) return 'Received ' + value;
    if (typeof value === 'function') return 'Received function ' + (value.name || '<anonymous>');
    if (typeof value === 'object') {
      const name = value.constructor && value.constructor.name;
      return name ? 'Received an instance of ' + name : 'Received ' + String(value);
    }
    const shown = typeof value === 'string' ? "'" + value.slice(0, 25) + "'" : String(value);
    return 'Received type ' + typeof value + ' (' + shown + ')';
  }
  // The chunks given to update(), in one array.
  function joinChunks(chunks) {
    let length = 0;
    for (const chunk of chunks) length += chunk.length;
    const joined = new Uint8Array(length);
    let at = 0;
    for (const chunk of chunks) { joined.set(chunk, at); at += chunk.length; }
    return joined;
  }

  const asBuffer = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const argumentType = (name, type, value) =>
    withCode(new TypeError('The "' + name + '" argument must be of type ' + type + '. ' + received(value)), 'ERR_INVALID_ARG_TYPE');

  const invalidKeyType = (type, expected) =>
    withCode(new TypeError('Invalid key object type ' + type + ', expected ' + expected + '.'), 'ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE');

  // Node's KeyObject, which libraries (jsonwebtoken) check with `instanceof`.
  // A secret key holds its bytes; a private or public key holds the
  // descriptor signatures.rs made of it (type, algorithm, bytes as ring takes them).
  class KeyObject {
    constructor(type, handle) {
      if (type === 'secret') {
        this._bytes = handle;
      } else if ((type === 'private' || type === 'public') && handle !== null && typeof handle === 'object' && handle.type === type) {
        this._key = handle;
      } else {
        throw withCode(new TypeError('The argument "type" is invalid. Received ' + String(type)), 'ERR_INVALID_ARG_VALUE');
      }
      this._type = type;
    }
    get type() { return this._type; }
    get symmetricKeySize() { return this._type === 'secret' ? this._bytes.length : undefined; }
    get asymmetricKeyType() { return this._type === 'secret' ? undefined : this._key.asymmetricKeyType; }
    get asymmetricKeyDetails() {
      if (this._type === 'secret') return undefined;
      return this._key.namedCurve ? { namedCurve: this._key.namedCurve } : {};
    }
    export() {
      if (this._type === 'secret') return Buffer.from(this._bytes);
      throw withCode(new Error('exporting ' + this._type + ' keys is not available on the js engine'), 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM');
    }
    equals(other) {
      if (!(other instanceof KeyObject) || other._type !== this._type) return false;
      const mine = this._type === 'secret' ? this._bytes : this._key.bytes;
      const theirs = other._type === 'secret' ? other._bytes : other._key.bytes;
      return timingSafeEqualBytes(mine, theirs);
    }
  }

  function createSecretKey(key, encoding) {
    return new KeyObject('secret', Uint8Array.from(bytesOf(key, encoding, 'key')));
  }

  // A private or public key from what Node's key arguments take: PEM text (a
  // string or bytes), a KeyObject, or { key, format: 'pem' | 'der', type,
  // passphrase }. A public key may be read from a private key or a certificate.
  function asymmetricKey(input, wantPublic) {
    const want = wantPublic ? 'public' : 'private';
    if (input instanceof KeyObject) {
      if (input._type === want) return input;
      if (wantPublic && input._type === 'private') return new KeyObject('public', native.publicOf(input._key));
      throw invalidKeyType(input._type, want);
    }
    let key = input, format = 'pem', derType;
    if (input !== null && typeof input === 'object' && !ArrayBuffer.isView(input) && !(input instanceof ArrayBuffer)) {
      if (input.key instanceof KeyObject) return asymmetricKey(input.key, wantPublic);
      if (input.passphrase !== undefined) {
        throw withCode(new Error('encrypted private keys are not available on the js engine'), 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM');
      }
      if (input.format === 'jwk') throw withCode(new Error('JWK keys are not available on the js engine'), 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM');
      key = input.key;
      format = input.format === undefined ? 'pem' : input.format;
      derType = input.type;
    }
    if (typeof key !== 'string' && !ArrayBuffer.isView(key) && !(key instanceof ArrayBuffer)) {
      throw argumentType('key', 'string or an instance of ArrayBuffer, Buffer, TypedArray, DataView, KeyObject, or CryptoKey', key);
    }
    const parsed = parseKey(format, Uint8Array.from(bytesOf(key, input.encoding, 'key')), derType, wantPublic);
    // A public key where a private one is needed: OpenSSL fails to decode it as private.
    if (parsed.type !== want) throw decodeError('a ' + parsed.type + ' key, not a ' + want + ' key');
    return new KeyObject(want, parsed);
  }

  function parseKey(format, bytes, derType, wantPublic) {
    try {
      return native.parseKey(bytes, format, derType, wantPublic);
    } catch (e) {
      throw decodeError(e.message);
    }
  }

  // OpenSSL's error for a key it cannot decode, with the reason here.
  const decodeError = (reason) =>
    withCode(new Error('error:1E08010C:DECODER routines::unsupported (' + reason + ')'), 'ERR_OSSL_UNSUPPORTED');

  const createPrivateKey = (key) => asymmetricKey(key, false);
  const createPublicKey = (key) => asymmetricKey(key, true);

  function signatureDigest(algorithm) {
    if (algorithm === null || algorithm === undefined) return undefined;
    if (typeof algorithm !== 'string') throw argumentType('algorithm', 'string', algorithm);
    const digest = knownDigest(algorithm, SHA_DIGESTS);
    if (digest === undefined) throw withCode(new TypeError('Invalid digest'), 'ERR_CRYPTO_INVALID_DIGEST');
    return digest;
  }

  const RSA_PKCS1_PADDING = 1;
  const RSA_PKCS1_PSS_PADDING = 6;
  const RSA_PSS_SALTLEN_DIGEST = -1;
  const DIGEST_LENGTHS = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

  // Padding and encoding options that may come with the key ({ key, padding,
  // saltLength, dsaEncoding }). PSS uses a salt as long as the digest, which
  // Node's verify accepts whatever salt length it expects by default.
  function signatureOptions(options, digest) {
    const given = options !== null && typeof options === 'object' && !(options instanceof KeyObject) && !ArrayBuffer.isView(options) ? options : {};
    const padding = given.padding === undefined ? RSA_PKCS1_PADDING : given.padding;
    if (padding !== RSA_PKCS1_PADDING && padding !== RSA_PKCS1_PSS_PADDING) {
      throw withCode(new Error('padding ' + padding + ' is not available for signatures on the js engine'), 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM');
    }
    const saltLength = given.saltLength;
    if (padding === RSA_PKCS1_PSS_PADDING && saltLength !== undefined && saltLength !== RSA_PSS_SALTLEN_DIGEST && saltLength !== DIGEST_LENGTHS[digest]) {
      throw withCode(new Error('PSS salts of ' + saltLength + ' bytes are not available on the js engine; it uses salts as long as the digest'), 'ERR_FEATURE_UNAVAILABLE_ON_PLATFORM');
    }
    const dsaEncoding = given.dsaEncoding === undefined ? 'der' : given.dsaEncoding;
    if (dsaEncoding !== 'der' && dsaEncoding !== 'ieee-p1363') {
      throw withCode(new TypeError("The property 'options.dsaEncoding' is invalid. Received '" + dsaEncoding + "'"), 'ERR_INVALID_ARG_VALUE');
    }
    return { padding: padding === RSA_PKCS1_PSS_PADDING ? 'pss' : 'pkcs1', dsaEncoding };
  }

  function signWith(digest, data, privateKey) {
    const key = asymmetricKey(privateKey, false);
    const options = signatureOptions(privateKey, digest);
    try {
      return asBuffer(native.sign(key._key, digest, options.padding, options.dsaEncoding, data));
    } catch (e) {
      throw withCode(new Error(e.message), 'ERR_CRYPTO_OPERATION_FAILED');
    }
  }

  function verifyWith(digest, data, publicKey, signature) {
    const key = asymmetricKey(publicKey, true);
    const options = signatureOptions(publicKey, digest);
    try {
      return native.verify(key._key, digest, options.padding, options.dsaEncoding, data, signature);
    } catch (e) {
      throw withCode(new Error(e.message), 'ERR_CRYPTO_OPERATION_FAILED');
    }
  }

  // Collects the data of createSign/createVerify; the key comes last.
  class SignatureData {
    constructor(algorithm) {
      this._digest = signatureDigest(algorithm);
      this._chunks = [];
      this._done = false;
    }
    update(data, inputEncoding) {
      if (this._done) throw withCode(new Error('Not initialised'), 'ERR_CRYPTO_INVALID_STATE');
      this._chunks.push(Uint8Array.from(bytesOf(data, inputEncoding, 'data')));
      return this;
    }
    _take() {
      if (this._done) throw withCode(new Error('Not initialised'), 'ERR_CRYPTO_INVALID_STATE');
      this._done = true;
      const data = joinChunks(this._chunks);
      this._chunks = [];
      return data;
    }
  }

  class Sign extends SignatureData {
    sign(privateKey, outputEncoding) {
      const signature = signWith(this._digest, this._take(), privateKey);
      return outputEncoding === undefined || outputEncoding === 'buffer' ? signature : signature.toString(outputEncoding);
    }
  }

  class Verify extends SignatureData {
    verify(publicKey, signature, signatureEncoding) {
      const sig = Uint8Array.from(bytesOf(signature, signatureEncoding, 'signature'));
      return verifyWith(this._digest, this._take(), publicKey, sig);
    }
  }

  const createSign = (algorithm) => new Sign(algorithm);
  const createVerify = (algorithm) => new Verify(algorithm);

  // crypto.sign / crypto.verify: one call, with the callback form Node has.
  function sign(algorithm, data, key, callback) {
    const signature = signWith(signatureDigest(algorithm), Uint8Array.from(bytesOf(data, undefined, 'data')), key);
    if (typeof callback !== 'function') return signature;
    later(() => callback(null, signature));
  }

  function verify(algorithm, data, key, signature, callback) {
    const ok = verifyWith(signatureDigest(algorithm), Uint8Array.from(bytesOf(data, undefined, 'data')), key, Uint8Array.from(bytesOf(signature, undefined, 'signature')));
    if (typeof callback !== 'function') return ok;
    later(() => callback(null, ok));
  }

  // Any accepted input as a Uint8Array over the same memory.
  function bytesOf(data, encoding, what) {
    if (data instanceof KeyObject) {
      if (data._type !== 'secret') throw invalidKeyType(data._type, 'secret');
      return data._bytes;
    }
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

  const allocationFailed = () => new RangeError('Array buffer allocation failed');

  function randomBytes(size, callback) {
    checkSize('size', size, MAX_RANDOM_BYTES);
    if (!native.reserve(size)) throw allocationFailed();
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


  // ---- ciphers --------------------------------------------------------------
  // AES in CBC, ECB, CTR and GCM, as OpenSSL does them under Node: CBC and ECB
  // pad with PKCS#7 unless setAutoPadding(false), a decipher holds back its
  // last block until final() so it can unpad it, and CTR and GCM output as
  // much as they are given. GCM's update() returns the CTR keystream applied
  // (as Node does, unauthenticated until final()); the tag is computed over
  // the plaintext at final().
  const CIPHERS = {};
  for (const bits of [128, 192, 256]) {
    for (const mode of ['cbc', 'ecb', 'ctr', 'gcm']) {
      CIPHERS['aes-' + bits + '-' + mode] = { keyLength: bits / 8, mode, ivLength: mode === 'ecb' ? 0 : mode === 'gcm' ? 12 : 16 };
    }
    CIPHERS['aes' + bits] = CIPHERS['aes-' + bits + '-cbc'];
  }
  const BLOCK = 16;
  const EMPTY = new Uint8Array(0);

  const invalidState = (operation) => withCode(new Error('Invalid state for operation ' + operation), 'ERR_CRYPTO_INVALID_STATE');
  const opensslError = (reason, code, hex) =>
    Object.assign(new Error('error:' + hex + ':Provider routines::' + reason), { code, library: 'Provider routines', reason });
  const badDecrypt = () => opensslError('bad decrypt', 'ERR_OSSL_BAD_DECRYPT', '1C800064');
  const wrongFinalBlockLength = () => opensslError('wrong final block length', 'ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH', '1C80006B');
  const unauthenticated = () => new Error('Unsupported state or unable to authenticate data');

  function concatBytes(a, b) {
    if (a.length === 0) return b;
    if (b.length === 0) return a;
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }


  // Turns output chunks into strings the way Node's StringDecoder does: bytes
  // that do not yet make a whole character (UTF-8) or a whole group (base64,
  // UTF-16) wait for the next chunk, so update() + final() always concatenate
  // to the encoding of the whole output.
  class OutputText {
    constructor(encoding) {
      this.encoding = String(encoding).toLowerCase();
      this.pending = EMPTY;
    }
    write(bytes) {
      const all = concatBytes(this.pending, bytes);
      const keep = this.incompleteTail(all);
      this.pending = all.slice(all.length - keep);
      return asBuffer(all.subarray(0, all.length - keep)).toString(this.encoding);
    }
    end(bytes) {
      const all = concatBytes(this.pending, bytes);
      this.pending = EMPTY;
      return asBuffer(all).toString(this.encoding);
    }
    incompleteTail(all) {
      switch (this.encoding) {
        case 'base64': case 'base64url': return all.length % 3;
        case 'utf16le': case 'utf-16le': case 'ucs2': case 'ucs-2': return all.length % 2;
        case 'utf8': case 'utf-8': {
          // A lead byte within the last three whose sequence is not complete.
          for (let back = 1; back <= 3 && back <= all.length; back++) {
            const byte = all[all.length - back];
            if ((byte & 0xc0) === 0x80) continue; // a continuation byte
            const needs = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
            return needs > back ? back : 0;
          }
          return 0;
        }
        default: return 0;
      }
    }
  }

  function cipherKey(key) {
    if (key instanceof KeyObject) return key._bytes;
    if (typeof key === 'string') return Buffer.from(key, 'utf8');
    if (ArrayBuffer.isView(key) || key instanceof ArrayBuffer) return Uint8Array.from(bytesOf(key, undefined, 'key'));
    throw invalidType('key', key);
  }

  function cipherIv(iv, spec) {
    if (iv === null || iv === undefined) {
      if (spec.ivLength === 0) return EMPTY;
      throw withCode(new TypeError('Invalid initialization vector'), 'ERR_CRYPTO_INVALID_IV');
    }
    const bytes = typeof iv === 'string' ? Buffer.from(iv, 'utf8') : Uint8Array.from(bytesOf(iv, undefined, 'iv'));
    if (bytes.length !== spec.ivLength) {
      if (spec.mode === 'gcm' && bytes.length > 0) {
        throw withCode(new TypeError('Invalid initialization vector: GCM takes a 12-byte IV on the js engine (got ' + bytes.length + ' bytes)'), 'ERR_CRYPTO_INVALID_IV');
      }
      throw withCode(new TypeError('Invalid initialization vector'), 'ERR_CRYPTO_INVALID_IV');
    }
    return bytes;
  }

  function checkTagLength(length) {
    if (!(length === 4 || length === 8 || (length >= 12 && length <= 16))) {
      throw withCode(new TypeError('Invalid authentication tag length: ' + length), 'ERR_CRYPTO_INVALID_AUTH_TAG');
    }
  }

  class CipherBase {
    constructor(encrypting, algorithm, key, iv, options) {
      if (typeof algorithm !== 'string') {
        throw argumentType('cipher', 'string', algorithm);
      }
      const spec = CIPHERS[algorithm.toLowerCase()];
      if (spec === undefined) throw withCode(new Error('Unknown cipher'), 'ERR_CRYPTO_UNKNOWN_CIPHER');
      const keyBytes = cipherKey(key);
      if (keyBytes.length !== spec.keyLength) throw withCode(new RangeError('Invalid key length'), 'ERR_CRYPTO_INVALID_KEYLEN');
      this._encrypting = encrypting;
      this._mode = spec.mode;
      this._key = keyBytes;
      this._iv = cipherIv(iv, spec);
      this._padding = true;
      this._pending = EMPTY; // CBC/ECB: input not yet processed
      this._offset = 0; // CTR/GCM: bytes processed so far
      this._finished = false;
      this._text = null;
      if (spec.mode === 'gcm') {
        const tagLength = options && options.authTagLength !== undefined ? options.authTagLength : 16;
        checkTagLength(tagLength);
        this._tagLength = tagLength;
        this._aad = EMPTY;
        this._plaintext = [];
        this._tag = null;
        // GCM's keystream starts at the counter block after IV || 00000001.
        this._counter = new Uint8Array(16);
        this._counter.set(this._iv, 0);
        this._counter[15] = 2;
      }
    }

    update(data, inputEncoding, outputEncoding) {
      if (this._finished) throw new Error('Trying to add data in unsupported state');
      const input = bytesOf(data, inputEncoding, 'data');
      return this._emit(this._process(input), outputEncoding, false);
    }

    final(outputEncoding) {
      if (this._finished) throw withCode(new Error('Invalid state'), 'ERR_CRYPTO_INVALID_STATE');
      this._finished = true;
      return this._emit(this._finish(), outputEncoding, true);
    }

    setAutoPadding(autoPadding) {
      if (this._finished) throw invalidState('setAutoPadding');
      this._padding = autoPadding !== false;
      return this;
    }

    setAAD(aad) {
      if (this._mode !== 'gcm' || this._offset > 0 || this._finished) throw invalidState('setAAD');
      this._aad = Uint8Array.from(bytesOf(aad, undefined, 'buffer'));
      return this;
    }

    getAuthTag() {
      if (this._mode !== 'gcm' || !this._encrypting || !this._finished) throw invalidState('getAuthTag');
      return Buffer.from(this._tag);
    }

    setAuthTag(tag) {
      if (this._mode !== 'gcm' || this._encrypting || this._finished || this._tag !== null) throw invalidState('setAuthTag');
      const bytes = Uint8Array.from(bytesOf(tag, undefined, 'buffer'));
      checkTagLength(bytes.length);
      this._tag = bytes;
      return this;
    }

    _emit(bytes, outputEncoding, last) {
      if (outputEncoding === undefined || outputEncoding === null || outputEncoding === 'buffer') return asBuffer(bytes);
      if (this._text === null) this._text = new OutputText(outputEncoding);
      return last ? this._text.end(bytes) : this._text.write(bytes);
    }

    _process(input) {
      if (this._mode === 'ctr' || this._mode === 'gcm') return this._stream(input);
      const all = concatBytes(this._pending, input);
      // A padded decipher keeps its last whole block: final() unpads it.
      let ready = all.length - (all.length % BLOCK);
      if (!this._encrypting && this._padding && ready === all.length && ready > 0) ready -= BLOCK;
      this._pending = all.slice(ready);
      return this._blocks(all.subarray(0, ready));
    }

    _blocks(bytes) {
      if (bytes.length === 0) return EMPTY;
      const out = native.aesBlocks(this._mode, this._encrypting, this._key, this._iv, bytes);
      if (this._mode === 'cbc') {
        // The next call chains from the last ciphertext block.
        const ciphertext = this._encrypting ? out : bytes;
        this._iv = ciphertext.slice(ciphertext.length - BLOCK);
      }
      return out;
    }

    _stream(input) {
      if (input.length === 0) return EMPTY;
      const counterBits = this._mode === 'gcm' ? 32 : 128;
      const counter = this._mode === 'gcm' ? this._counter : this._iv;
      const out = native.aesCtr(counterBits, this._key, counter, this._offset, input);
      this._offset += input.length;
      // A copy: the caller owns what update() returns and may change it before final().
      if (this._mode === 'gcm') this._plaintext.push(Uint8Array.from(this._encrypting ? input : out));
      return out;
    }

    _finish() {
      if (this._mode === 'ctr') return EMPTY;
      if (this._mode === 'gcm') return this._finishGcm();
      const rest = this._pending;
      this._pending = EMPTY;
      if (this._encrypting) {
        if (!this._padding) {
          if (rest.length !== 0) throw wrongFinalBlockLength();
          return EMPTY;
        }
        const pad = BLOCK - rest.length;
        const padded = new Uint8Array(BLOCK).fill(pad);
        padded.set(rest, 0);
        return this._blocks(padded);
      }
      if (rest.length === 0) {
        if (this._padding) throw wrongFinalBlockLength();
        return EMPTY;
      }
      if (rest.length !== BLOCK) throw wrongFinalBlockLength();
      const last = this._blocks(rest);
      if (!this._padding) return last;
      const pad = last[BLOCK - 1];
      if (pad < 1 || pad > BLOCK) throw badDecrypt();
      for (let i = BLOCK - pad; i < BLOCK; i++) if (last[i] !== pad) throw badDecrypt();
      return last.subarray(0, BLOCK - pad);
    }

    _finishGcm() {
      const plaintext = joinChunks(this._plaintext);
      this._plaintext = [];
      const tag = native.aesGcmTag(this._key, this._iv, this._aad, plaintext);
      if (this._encrypting) {
        this._tag = tag.slice(0, this._tagLength);
      } else if (this._tag === null || !timingSafeEqualBytes(this._tag, tag.subarray(0, this._tag.length))) {
        throw unauthenticated();
      }
      return EMPTY;
    }
  }

  class Cipheriv extends CipherBase {
    constructor(algorithm, key, iv, options) { super(true, algorithm, key, iv, options); }
  }
  class Decipheriv extends CipherBase {
    constructor(algorithm, key, iv, options) { super(false, algorithm, key, iv, options); }
  }

  const createCipheriv = (algorithm, key, iv, options) => new Cipheriv(algorithm, key, iv, options);
  const createDecipheriv = (algorithm, key, iv, options) => new Decipheriv(algorithm, key, iv, options);

  // ---- key derivation -------------------------------------------------------
  function pbkdf2Sync(password, salt, iterations, keylen, digest) {
    const passwordBytes = Uint8Array.from(bytesOf(password, undefined, 'password'));
    const saltBytes = Uint8Array.from(bytesOf(salt, undefined, 'salt'));
    if (typeof iterations !== 'number' || !Number.isInteger(iterations)) {
      throw argumentType('iterations', 'number', iterations);
    }
    if (iterations < 1 || iterations > 2147483647) throw outOfRange('iterations', '>= 1 && <= 2147483647', iterations);
    checkSize('keylen', keylen, 2147483647);
    if (typeof digest !== 'string') {
      throw argumentType('digest', 'string', digest);
    }
    const name = knownDigest(digest, SHA_DIGESTS);
    if (name === undefined) throw withCode(new TypeError('Invalid digest: ' + digest), 'ERR_CRYPTO_INVALID_DIGEST');
    if (!native.reserve(keylen)) throw allocationFailed();
    return asBuffer(native.pbkdf2(name, passwordBytes, saltBytes, iterations, keylen));
  }

  function pbkdf2(password, salt, iterations, keylen, digest, callback) {
    if (typeof callback !== 'function') {
      throw argumentType('callback', 'function', callback);
    }
    const key = pbkdf2Sync(password, salt, iterations, keylen, digest);
    later(() => callback(null, key));
  }

  const randomUUID = () => base.randomUUID();

  const subtle = {
    // The one Web Crypto operation function code commonly uses; Web Crypto
    // keys, signing and ciphers are not available on the js engine.
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
    createCipheriv, createDecipheriv, Cipheriv, Decipheriv,
    createPrivateKey, createPublicKey, createSign, createVerify, Sign, Verify, sign, verify,
    getCiphers: () => Object.keys(CIPHERS).sort(),
    pbkdf2, pbkdf2Sync,
    webcrypto, subtle,
    constants: { RSA_PKCS1_PADDING, RSA_PKCS1_PSS_PADDING, RSA_PSS_SALTLEN_DIGEST, RSA_PSS_SALTLEN_MAX_SIGN: -2, RSA_PSS_SALTLEN_AUTO: -2 },
  };
}
