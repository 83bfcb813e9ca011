//! The native half of Node's ciphers and key derivation in `crypto.js`: AES
//! in CBC, ECB, CTR and GCM, and PBKDF2.
//!
//! Each function does one stateless step over bytes; `crypto.js` keeps the
//! state Node's `Cipheriv` objects have between `update` calls (the chained IV,
//! the CTR offset, held-back blocks, padding) and does the argument checks and
//! error messages Node gives. Failures here are guards against misuse of these
//! functions, not user-facing validation.

use std::num::NonZeroU32;
use std::sync::Arc;

use aes::cipher::block_padding::NoPadding;
use aes::cipher::{
    BlockDecryptMut, BlockEncryptMut, KeyInit, KeyIvInit, StreamCipher, StreamCipherSeek,
};
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::AeadInPlace;
use rquickjs::{function::Func, Ctx, Exception, Object, TypedArray};

use super::watchdog::Watchdog;

/// AES works on 16-byte blocks; callers pass whole blocks to the block modes.
const BLOCK: usize = 16;

/// PBKDF2 iterations between two deadline checks: a few hundred microseconds.
const PBKDF2_ITERATIONS_PER_CHECK: u64 = 1024;

const DEADLINE_PASSED: &str = "the invocation's deadline passed during pbkdf2";

/// Runs `$body` with `$aes` as the AES variant for the key's length.
macro_rules! with_aes {
    ($key:expr, $aes:ident => $body:expr) => {
        match $key.len() {
            16 => {
                type $aes = aes::Aes128;
                $body
            }
            24 => {
                type $aes = aes::Aes192;
                $body
            }
            32 => {
                type $aes = aes::Aes256;
                $body
            }
            n => Err(format!("an AES key has 16, 24 or 32 bytes, not {n}")),
        }
    };
}

/// The bytes of a typed array from JavaScript (also for `signatures.rs`).
pub(super) fn bytes<'a>(array: &'a TypedArray<'_, u8>, what: &str) -> Result<&'a [u8], String> {
    array
        .as_bytes()
        .ok_or_else(|| format!("the {what} buffer is detached"))
}

/// For the block modes' padding errors, which cannot happen on whole blocks.
fn failed<E>(_: E) -> String {
    "AES failed on whole blocks".to_owned()
}

fn whole_blocks(data: &[u8]) -> Result<(), String> {
    if data.len().is_multiple_of(BLOCK) {
        Ok(())
    } else {
        Err(format!(
            "the block modes take whole 16-byte blocks, not {} bytes",
            data.len()
        ))
    }
}

/// CBC or ECB over whole blocks, without padding (`crypto.js` pads and unpads).
fn aes_blocks(
    mode: &str,
    encrypt: bool,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, String> {
    whole_blocks(data)?;
    let mut out = data.to_vec();
    let len = out.len();
    let bad_iv = |_| "a CBC IV has 16 bytes".to_owned();
    let bad_key = |_| "invalid AES key".to_owned();
    with_aes!(key, Aes => {
        match (mode, encrypt) {
            ("cbc", true) => cbc::Encryptor::<Aes>::new_from_slices(key, iv)
                .map_err(bad_iv)?
                .encrypt_padded_mut::<NoPadding>(&mut out, len)
                .map(drop)
                .map_err(failed),
            ("cbc", false) => cbc::Decryptor::<Aes>::new_from_slices(key, iv)
                .map_err(bad_iv)?
                .decrypt_padded_mut::<NoPadding>(&mut out)
                .map(drop)
                .map_err(failed),
            ("ecb", true) => ecb::Encryptor::<Aes>::new_from_slice(key)
                .map_err(bad_key)?
                .encrypt_padded_mut::<NoPadding>(&mut out, len)
                .map(drop)
                .map_err(failed),
            ("ecb", false) => ecb::Decryptor::<Aes>::new_from_slice(key)
                .map_err(bad_key)?
                .decrypt_padded_mut::<NoPadding>(&mut out)
                .map(drop)
                .map_err(failed),
            (other, _) => Err(format!("no AES block mode {other}")),
        }
    })?;
    Ok(out)
}

/// AES in counter mode from `counter` advanced by `offset` bytes. `counter_bits`
/// is 128 for CTR (OpenSSL increments the whole block) and 32 for GCM's
/// keystream (which increments only the last four bytes).
fn aes_ctr(
    counter_bits: u32,
    key: &[u8],
    counter: &[u8],
    offset: u64,
    data: &[u8],
) -> Result<Vec<u8>, String> {
    let mut out = data.to_vec();
    let bad_iv = |_| "a counter block has 16 bytes".to_owned();
    let exhausted = |_| "the counter would wrap around".to_owned();
    with_aes!(key, Aes => {
        match counter_bits {
            128 => {
                let mut cipher = ctr::Ctr128BE::<Aes>::new_from_slices(key, counter).map_err(bad_iv)?;
                cipher.try_seek(offset).map_err(exhausted)?;
                cipher.try_apply_keystream(&mut out).map_err(exhausted)
            }
            32 => {
                let mut cipher = ctr::Ctr32BE::<Aes>::new_from_slices(key, counter).map_err(bad_iv)?;
                cipher.try_seek(offset).map_err(exhausted)?;
                cipher.try_apply_keystream(&mut out).map_err(exhausted)
            }
            n => Err(format!("no {n}-bit counter mode")),
        }
    })?;
    Ok(out)
}

/// The full 16-byte GCM tag of `plaintext` under a 12-byte IV. Decryption gets
/// its tag the same way, from the plaintext it recovered, and compares.
fn aes_gcm_tag(key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
    if iv.len() != 12 {
        return Err(format!(
            "GCM takes a 12-byte IV here, not {} bytes",
            iv.len()
        ));
    }
    let mut scratch = plaintext.to_vec();
    let tag = with_aes!(key, Aes => {
        aes_gcm::AesGcm::<Aes, U12>::new_from_slice(key)
            .map_err(|_| "invalid AES key".to_owned())?
            .encrypt_in_place_detached(aes_gcm::Nonce::from_slice(iv), aad, &mut scratch)
            .map_err(|_| "the message is too long for GCM".to_owned())
    })?;
    Ok(tag.to_vec())
}

/// PBKDF2 (RFC 8018) over ring's HMAC.
///
/// Written out rather than calling `ring::pbkdf2::derive`, so that it can stop
/// at the invocation's deadline: a native call is not interrupted by QuickJS,
/// and an iteration count in the billions would otherwise hold the instance
/// for minutes.
fn pbkdf2(
    digest: &str,
    password: &[u8],
    salt: &[u8],
    iterations: NonZeroU32,
    key_len: usize,
    expired: impl Fn() -> bool,
) -> Result<Vec<u8>, String> {
    use ring::hmac;
    let algorithm = match digest {
        "sha1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "sha256" => hmac::HMAC_SHA256,
        "sha384" => hmac::HMAC_SHA384,
        "sha512" => hmac::HMAC_SHA512,
        other => return Err(format!("no PBKDF2 digest {other}")),
    };
    let key = hmac::Key::new(algorithm, password);
    let mut out = vec![0u8; key_len];
    let block_len = algorithm.digest_algorithm().output_len();
    // Rounds over all blocks, so that many short blocks still reach a check.
    let mut rounds: u64 = 0;
    for (index, chunk) in out.chunks_mut(block_len).enumerate() {
        if expired() {
            return Err(DEADLINE_PASSED.to_owned());
        }
        let block_number = u32::try_from(index + 1).map_err(|_| "the key is too long")?;
        let mut first = hmac::Context::with_key(&key);
        first.update(salt);
        first.update(&block_number.to_be_bytes());
        let mut u = first.sign();
        let mut t = u.as_ref().to_vec();
        for _ in 1..iterations.get() {
            rounds += 1;
            if rounds.is_multiple_of(PBKDF2_ITERATIONS_PER_CHECK) && expired() {
                return Err(DEADLINE_PASSED.to_owned());
            }
            u = hmac::sign(&key, u.as_ref());
            for (acc, byte) in t.iter_mut().zip(u.as_ref()) {
                *acc ^= byte;
            }
        }
        chunk.copy_from_slice(&t[..chunk.len()]);
    }
    Ok(out)
}

pub(super) fn throw(ctx: &Ctx<'_>, message: String) -> rquickjs::Error {
    Exception::throw_type(ctx, &message)
}

/// A native step's output as a Uint8Array, or its failure as a TypeError.
pub(super) fn to_js<'js>(
    ctx: &Ctx<'js>,
    result: Result<Vec<u8>, String>,
) -> rquickjs::Result<TypedArray<'js, u8>> {
    match result {
        Ok(out) => TypedArray::new(ctx.clone(), out),
        Err(message) => Err(throw(ctx, message)),
    }
}

/// Adds the cipher and PBKDF2 steps, and the memory check, to the object
/// `crypto.js` receives as `native`.
pub(crate) fn install<'js>(native: &Object<'js>, watchdog: Arc<Watchdog>) -> rquickjs::Result<()> {
    // Asked before allocating what function code sized (random bytes, keys).
    native.set(
        "reserve",
        Func::from(|bytes: f64| crate::heap_meter::reserve(bytes)),
    )?;
    native.set(
        "aesBlocks",
        Func::from(
            |ctx: Ctx<'js>,
             mode: String,
             encrypt: bool,
             key: TypedArray<'js, u8>,
             iv: TypedArray<'js, u8>,
             data: TypedArray<'js, u8>| {
                let result = (|| {
                    aes_blocks(
                        &mode,
                        encrypt,
                        bytes(&key, "key")?,
                        bytes(&iv, "iv")?,
                        bytes(&data, "data")?,
                    )
                })();
                to_js(&ctx, result)
            },
        ),
    )?;
    native.set(
        "aesCtr",
        Func::from(
            |ctx: Ctx<'js>,
             counter_bits: u32,
             key: TypedArray<'js, u8>,
             counter: TypedArray<'js, u8>,
             offset: f64,
             data: TypedArray<'js, u8>| {
                let result = (|| {
                    aes_ctr(
                        counter_bits,
                        bytes(&key, "key")?,
                        bytes(&counter, "counter")?,
                        offset as u64,
                        bytes(&data, "data")?,
                    )
                })();
                to_js(&ctx, result)
            },
        ),
    )?;
    native.set(
        "aesGcmTag",
        Func::from(
            |ctx: Ctx<'js>,
             key: TypedArray<'js, u8>,
             iv: TypedArray<'js, u8>,
             aad: TypedArray<'js, u8>,
             plaintext: TypedArray<'js, u8>| {
                let result = (|| {
                    aes_gcm_tag(
                        bytes(&key, "key")?,
                        bytes(&iv, "iv")?,
                        bytes(&aad, "aad")?,
                        bytes(&plaintext, "data")?,
                    )
                })();
                to_js(&ctx, result)
            },
        ),
    )?;
    native.set(
        "pbkdf2",
        Func::from(
            move |ctx: Ctx<'js>,
                  digest: String,
                  password: TypedArray<'js, u8>,
                  salt: TypedArray<'js, u8>,
                  iterations: u32,
                  key_len: u32| {
                let result = (|| {
                    let iterations =
                        NonZeroU32::new(iterations).ok_or("iterations must be at least 1")?;
                    pbkdf2(
                        &digest,
                        bytes(&password, "password")?,
                        bytes(&salt, "salt")?,
                        iterations,
                        key_len as usize,
                        || watchdog.on_interrupt_check(),
                    )
                })();
                to_js(&ctx, result)
            },
        ),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    // NIST SP 800-38A, F.2.1 (CBC-AES128.Encrypt), first two blocks.
    #[test]
    fn cbc_matches_the_nist_vectors() {
        let key = unhex("2b7e151628aed2a6abf7158809cf4f3c");
        let iv = unhex("000102030405060708090a0b0c0d0e0f");
        let plain = unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let cipher = aes_blocks("cbc", true, &key, &iv, &plain).expect("encrypts");
        assert_eq!(
            cipher,
            unhex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2")
        );
        assert_eq!(
            aes_blocks("cbc", false, &key, &iv, &cipher).expect("decrypts"),
            plain
        );
        assert!(aes_blocks("cbc", true, &key, &iv, &plain[..5]).is_err());
        assert!(aes_blocks("cbc", true, &key[..5], &iv, &plain).is_err());
    }

    // NIST SP 800-38A, F.5.1 (CTR-AES128.Encrypt), resumed mid-block.
    #[test]
    fn ctr_resumes_at_any_offset() {
        let key = unhex("2b7e151628aed2a6abf7158809cf4f3c");
        let counter = unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let plain = unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let expected = unhex("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff");
        assert_eq!(
            aes_ctr(128, &key, &counter, 0, &plain).expect("ctr"),
            expected
        );
        let tail = aes_ctr(128, &key, &counter, 7, &plain[7..]).expect("ctr");
        assert_eq!(tail, expected[7..]);
    }

    // RFC 6070, test vector 2.
    #[test]
    fn pbkdf2_matches_rfc_6070_and_stops_at_the_deadline() {
        let two = NonZeroU32::new(2).expect("nonzero");
        let key = pbkdf2("sha1", b"password", b"salt", two, 20, || false).expect("derives");
        assert_eq!(key, unhex("ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"));
        let many = NonZeroU32::new(1_000_000).expect("nonzero");
        assert!(pbkdf2("sha256", b"pw", b"salt", many, 32, || true).is_err());
    }
}
