//! The native half of Node's signatures in `crypto.js`: reading keys (PEM or
//! DER; PKCS#8, PKCS#1, SPKI and X.509 certificates, with RustCrypto's DER
//! crates) and RSA, ECDSA and Ed25519 signing and verification with ring.
//!
//! A key crosses into JavaScript as a plain descriptor (`type`,
//! `asymmetricKeyType`, the curve, and bytes in the form ring takes) that
//! `crypto.js` keeps in its `KeyObject` and hands back on every sign or verify.
//! Public keys are always reduced to their raw form, so verification never has
//! to parse a container again.

use pkcs8::der::{pem, Decode};
use pkcs8::{ObjectIdentifier, PrivateKeyInfo, SubjectPublicKeyInfoRef};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use rquickjs::{function::Func, Ctx, Object, TypedArray};

use super::ciphers::{bytes, throw, to_js};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Algorithm {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl Algorithm {
    fn from_oids(oid: ObjectIdentifier, curve: Option<ObjectIdentifier>) -> Result<Self, String> {
        match (oid, curve) {
            (RSA_ENCRYPTION, _) => Ok(Self::Rsa),
            (EC_PUBLIC_KEY, Some(P256)) => Ok(Self::EcP256),
            (EC_PUBLIC_KEY, Some(P384)) => Ok(Self::EcP384),
            (EC_PUBLIC_KEY, other) => Err(format!(
                "unsupported elliptic curve {}: P-256 and P-384 are available",
                other.map_or_else(|| "(none)".to_owned(), |oid| oid.to_string())
            )),
            (ED25519, _) => Ok(Self::Ed25519),
            (other, _) => Err(format!("unsupported key algorithm {other}")),
        }
    }

    /// Node's `asymmetricKeyType`.
    fn key_type(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::EcP256 | Self::EcP384 => "ec",
            Self::Ed25519 => "ed25519",
        }
    }

    /// Node's `namedCurve`, for EC keys.
    fn curve(self) -> Option<&'static str> {
        match self {
            Self::EcP256 => Some("prime256v1"),
            Self::EcP384 => Some("secp384r1"),
            Self::Rsa | Self::Ed25519 => None,
        }
    }

    fn from_descriptor(key_type: &str, curve: Option<&str>) -> Result<Self, String> {
        match (key_type, curve) {
            ("rsa", _) => Ok(Self::Rsa),
            ("ec", Some("prime256v1")) => Ok(Self::EcP256),
            ("ec", Some("secp384r1")) => Ok(Self::EcP384),
            ("ed25519", _) => Ok(Self::Ed25519),
            (other, _) => Err(format!("unsupported key type {other}")),
        }
    }
}

/// How a private key's bytes are encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PrivateEncoding {
    Pkcs8,
    /// RSAPrivateKey (PEM label `RSA PRIVATE KEY`).
    Pkcs1,
}

enum Key {
    Private {
        algorithm: Algorithm,
        encoding: PrivateEncoding,
        der: Vec<u8>,
    },
    /// What ring verifies with: RSAPublicKey DER, an EC point, or 32 Ed25519 bytes.
    Public { algorithm: Algorithm, raw: Vec<u8> },
}

fn private_pkcs8(der: Vec<u8>) -> Result<Key, String> {
    let info = PrivateKeyInfo::try_from(der.as_slice()).map_err(|e| e.to_string())?;
    let curve = info.algorithm.parameters_oid().ok();
    let algorithm = Algorithm::from_oids(info.algorithm.oid, curve)?;
    Ok(Key::Private {
        algorithm,
        encoding: PrivateEncoding::Pkcs8,
        der,
    })
}

/// An EC private key in SEC1 form (`openssl ecparam -genkey`), wrapped as the
/// PKCS#8 document ring reads: the same key under an algorithm identifier
/// naming its curve.
fn sec1_as_pkcs8(der: &[u8]) -> Result<Vec<u8>, String> {
    use pkcs8::der::{asn1::AnyRef, Encode};
    let key = sec1::EcPrivateKey::try_from(der).map_err(|e| e.to_string())?;
    let curve = key
        .parameters
        .and_then(|parameters| parameters.named_curve())
        .ok_or("the SEC1 key does not name its curve")?;
    let info = PrivateKeyInfo {
        algorithm: pkcs8::AlgorithmIdentifierRef {
            oid: EC_PUBLIC_KEY,
            parameters: Some(AnyRef::from(&curve)),
        },
        private_key: der,
        public_key: None,
    };
    info.to_der().map_err(|e| e.to_string())
}

fn public_spki(der: &[u8]) -> Result<Key, String> {
    let info = SubjectPublicKeyInfoRef::try_from(der).map_err(|e| e.to_string())?;
    let curve = info.algorithm.parameters_oid().ok();
    Ok(Key::Public {
        algorithm: Algorithm::from_oids(info.algorithm.oid, curve)?,
        raw: info.subject_public_key.raw_bytes().to_vec(),
    })
}

fn certificate(der: &[u8]) -> Result<Key, String> {
    use pkcs8::der::Encode;
    let certificate = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| e.to_string())?;
    public_spki(&spki)
}

/// Reads a key from PEM (by its label) or from DER of the named type.
fn parse(
    input: &[u8],
    format: &str,
    der_type: Option<&str>,
    want_public: bool,
) -> Result<Key, String> {
    let (kind, der) = match format {
        "pem" => {
            let (label, der) = pem::decode_vec(input).map_err(|e| format!("not a PEM key: {e}"))?;
            let kind = match label {
                "PRIVATE KEY" => "pkcs8",
                "RSA PRIVATE KEY" => "pkcs1-private",
                "PUBLIC KEY" => "spki",
                "RSA PUBLIC KEY" => "pkcs1-public",
                "CERTIFICATE" => "x509",
                "EC PRIVATE KEY" => "sec1",
                "ENCRYPTED PRIVATE KEY" => {
                    return Err("encrypted private keys are not supported here".to_owned())
                }
                other => return Err(format!("unsupported PEM label {other}")),
            };
            (kind, der)
        }
        "der" => {
            let kind = match (der_type, want_public) {
                (Some("pkcs8"), _) => "pkcs8",
                (Some("sec1"), _) => "sec1",
                (Some("pkcs1"), false) => "pkcs1-private",
                (Some("pkcs1"), true) => "pkcs1-public",
                (Some("spki"), _) => "spki",
                (Some(other), _) => return Err(format!("unsupported DER key type {other}")),
                (None, _) => {
                    return Err("a DER key needs its type (pkcs8, pkcs1, sec1 or spki)".to_owned())
                }
            };
            (kind, input.to_vec())
        }
        other => return Err(format!("unsupported key format {other}")),
    };
    let key = match kind {
        "pkcs8" => private_pkcs8(der)?,
        "sec1" => private_pkcs8(sec1_as_pkcs8(&der)?)?,
        "pkcs1-private" => Key::Private {
            algorithm: Algorithm::Rsa,
            encoding: PrivateEncoding::Pkcs1,
            der,
        },
        "spki" => public_spki(&der)?,
        "pkcs1-public" => Key::Public {
            algorithm: Algorithm::Rsa,
            raw: der,
        },
        _ => certificate(&der)?,
    };
    // Loading the key pair validates a private key now, as Node does, and
    // gives the public half when that is what is asked for.
    match key {
        Key::Private {
            algorithm,
            encoding,
            der,
        } => {
            let public = public_of(algorithm, encoding, &der)?;
            if want_public {
                Ok(Key::Public {
                    algorithm,
                    raw: public,
                })
            } else {
                Ok(Key::Private {
                    algorithm,
                    encoding,
                    der,
                })
            }
        }
        public => Ok(public),
    }
}

fn rejected(e: ring::error::KeyRejected) -> String {
    format!("the key was rejected: {e}")
}

fn rsa_pair(encoding: PrivateEncoding, der: &[u8]) -> Result<RsaKeyPair, String> {
    match encoding {
        PrivateEncoding::Pkcs8 => RsaKeyPair::from_pkcs8(der),
        PrivateEncoding::Pkcs1 => RsaKeyPair::from_der(der),
    }
    .map_err(rejected)
}

fn ecdsa_pair(
    algorithm: &'static signature::EcdsaSigningAlgorithm,
    der: &[u8],
) -> Result<EcdsaKeyPair, String> {
    EcdsaKeyPair::from_pkcs8(algorithm, der, &SystemRandom::new()).map_err(rejected)
}

fn public_of(
    algorithm: Algorithm,
    encoding: PrivateEncoding,
    der: &[u8],
) -> Result<Vec<u8>, String> {
    Ok(match algorithm {
        Algorithm::Rsa => rsa_pair(encoding, der)?.public().as_ref().to_vec(),
        Algorithm::EcP256 => ecdsa_pair(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der)?
            .public_key()
            .as_ref()
            .to_vec(),
        Algorithm::EcP384 => ecdsa_pair(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, der)?
            .public_key()
            .as_ref()
            .to_vec(),
        Algorithm::Ed25519 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(rejected)?
            .public_key()
            .as_ref()
            .to_vec(),
    })
}

/// How a signature is made: the digest (none for Ed25519), RSA's padding, and
/// ECDSA's signature encoding (`der` or `ieee-p1363`).
struct Scheme<'a> {
    digest: Option<&'a str>,
    pss: bool,
    p1363: bool,
}

fn unavailable(algorithm: Algorithm, scheme: &Scheme<'_>) -> String {
    format!(
        "{} signatures with {} are not available",
        algorithm.key_type(),
        scheme.digest.unwrap_or("no digest")
    )
}

fn sign(
    algorithm: Algorithm,
    encoding: PrivateEncoding,
    der: &[u8],
    scheme: &Scheme<'_>,
    data: &[u8],
) -> Result<Vec<u8>, String> {
    let rng = SystemRandom::new();
    let failed = |_| "signing failed".to_owned();
    match algorithm {
        Algorithm::Rsa => {
            let padding: &'static dyn signature::RsaEncoding = match (scheme.digest, scheme.pss) {
                (Some("sha256"), false) => &signature::RSA_PKCS1_SHA256,
                (Some("sha384"), false) => &signature::RSA_PKCS1_SHA384,
                (Some("sha512"), false) => &signature::RSA_PKCS1_SHA512,
                (Some("sha256"), true) => &signature::RSA_PSS_SHA256,
                (Some("sha384"), true) => &signature::RSA_PSS_SHA384,
                (Some("sha512"), true) => &signature::RSA_PSS_SHA512,
                _ => return Err(unavailable(algorithm, scheme)),
            };
            let pair = rsa_pair(encoding, der)?;
            let mut out = vec![0; pair.public().modulus_len()];
            pair.sign(padding, &rng, data, &mut out).map_err(failed)?;
            Ok(out)
        }
        Algorithm::EcP256 | Algorithm::EcP384 => {
            let ecdsa: &'static signature::EcdsaSigningAlgorithm =
                match (algorithm, scheme.digest, scheme.p1363) {
                    (Algorithm::EcP256, Some("sha256"), false) => {
                        &signature::ECDSA_P256_SHA256_ASN1_SIGNING
                    }
                    (Algorithm::EcP256, Some("sha256"), true) => {
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING
                    }
                    (Algorithm::EcP384, Some("sha384"), false) => {
                        &signature::ECDSA_P384_SHA384_ASN1_SIGNING
                    }
                    (Algorithm::EcP384, Some("sha384"), true) => {
                        &signature::ECDSA_P384_SHA384_FIXED_SIGNING
                    }
                    _ => return Err(unavailable(algorithm, scheme)),
                };
            let pair = ecdsa_pair(ecdsa, der)?;
            Ok(pair.sign(&rng, data).map_err(failed)?.as_ref().to_vec())
        }
        Algorithm::Ed25519 => {
            if scheme.digest.is_some() {
                return Err(unavailable(algorithm, scheme));
            }
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?;
            Ok(pair.sign(data).as_ref().to_vec())
        }
    }
}

fn verify(
    algorithm: Algorithm,
    raw: &[u8],
    scheme: &Scheme<'_>,
    data: &[u8],
    sig: &[u8],
) -> Result<bool, String> {
    use signature::VerificationAlgorithm as V;
    let verifier: &'static dyn V = match (algorithm, scheme.digest, scheme.pss, scheme.p1363) {
        (Algorithm::Rsa, Some("sha1"), false, _) => {
            &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
        }
        (Algorithm::Rsa, Some("sha256"), false, _) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (Algorithm::Rsa, Some("sha384"), false, _) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (Algorithm::Rsa, Some("sha512"), false, _) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (Algorithm::Rsa, Some("sha256"), true, _) => &signature::RSA_PSS_2048_8192_SHA256,
        (Algorithm::Rsa, Some("sha384"), true, _) => &signature::RSA_PSS_2048_8192_SHA384,
        (Algorithm::Rsa, Some("sha512"), true, _) => &signature::RSA_PSS_2048_8192_SHA512,
        (Algorithm::EcP256, Some("sha256"), _, false) => &signature::ECDSA_P256_SHA256_ASN1,
        (Algorithm::EcP256, Some("sha384"), _, false) => &signature::ECDSA_P256_SHA384_ASN1,
        (Algorithm::EcP384, Some("sha256"), _, false) => &signature::ECDSA_P384_SHA256_ASN1,
        (Algorithm::EcP384, Some("sha384"), _, false) => &signature::ECDSA_P384_SHA384_ASN1,
        (Algorithm::EcP256, Some("sha256"), _, true) => &signature::ECDSA_P256_SHA256_FIXED,
        (Algorithm::EcP384, Some("sha384"), _, true) => &signature::ECDSA_P384_SHA384_FIXED,
        (Algorithm::Ed25519, None, _, _) => &signature::ED25519,
        _ => return Err(unavailable(algorithm, scheme)),
    };
    Ok(signature::UnparsedPublicKey::new(verifier, raw)
        .verify(data, sig)
        .is_ok())
}

/// The descriptor `crypto.js` keeps for a key.
fn descriptor<'js>(ctx: &Ctx<'js>, key: Key) -> rquickjs::Result<Object<'js>> {
    let out = Object::new(ctx.clone())?;
    let (algorithm, bytes, encoding) = match key {
        Key::Private {
            algorithm,
            encoding,
            der,
        } => {
            out.set("type", "private")?;
            let encoding = match encoding {
                PrivateEncoding::Pkcs8 => "pkcs8",
                PrivateEncoding::Pkcs1 => "pkcs1",
            };
            (algorithm, der, encoding)
        }
        Key::Public { algorithm, raw } => {
            out.set("type", "public")?;
            (algorithm, raw, "raw")
        }
    };
    out.set("asymmetricKeyType", algorithm.key_type())?;
    out.set("namedCurve", algorithm.curve())?;
    out.set("encoding", encoding)?;
    out.set("bytes", TypedArray::new(ctx.clone(), bytes)?)?;
    Ok(out)
}

/// A key descriptor's parts, as `crypto.js` passes them back.
struct Described<'js> {
    key_type: String,
    curve: Option<String>,
    encoding: String,
    bytes: TypedArray<'js, u8>,
}

impl<'js> Described<'js> {
    fn read(key: &Object<'js>) -> rquickjs::Result<Self> {
        Ok(Self {
            key_type: key.get("asymmetricKeyType")?,
            curve: key.get("namedCurve")?,
            encoding: key.get("encoding")?,
            bytes: key.get("bytes")?,
        })
    }

    fn private_encoding(&self) -> PrivateEncoding {
        match self.encoding.as_str() {
            "pkcs1" => PrivateEncoding::Pkcs1,
            _ => PrivateEncoding::Pkcs8,
        }
    }

    fn algorithm(&self) -> Result<Algorithm, String> {
        Algorithm::from_descriptor(&self.key_type, self.curve.as_deref())
    }
}

fn scheme_of<'a>(digest: &'a Option<String>, padding: &str, dsa_encoding: &str) -> Scheme<'a> {
    Scheme {
        digest: digest.as_deref(),
        pss: padding == "pss",
        p1363: dsa_encoding == "ieee-p1363",
    }
}

/// Adds `parseKey`, `sign` and `verify` to the object `crypto.js` receives as `native`.
pub(crate) fn install<'js>(native: &Object<'js>) -> rquickjs::Result<()> {
    native.set(
        "parseKey",
        Func::from(
            |ctx: Ctx<'js>,
             input: TypedArray<'js, u8>,
             format: String,
             der_type: Option<String>,
             want_public: bool| {
                let parsed = bytes(&input, "key")
                    .and_then(|input| parse(input, &format, der_type.as_deref(), want_public));
                match parsed {
                    Ok(key) => descriptor(&ctx, key),
                    Err(message) => Err(throw(&ctx, message)),
                }
            },
        ),
    )?;
    native.set(
        "publicOf",
        Func::from(|ctx: Ctx<'js>, key: Object<'js>| {
            let key = Described::read(&key)?;
            let encoding = key.private_encoding();
            let result = key.algorithm().and_then(|algorithm| {
                let der = bytes(&key.bytes, "key")?;
                Ok(Key::Public {
                    algorithm,
                    raw: public_of(algorithm, encoding, der)?,
                })
            });
            match result {
                Ok(public) => descriptor(&ctx, public),
                Err(message) => Err(throw(&ctx, message)),
            }
        }),
    )?;
    native.set(
        "sign",
        Func::from(
            |ctx: Ctx<'js>,
             key: Object<'js>,
             digest: Option<String>,
             padding: String,
             dsa_encoding: String,
             data: TypedArray<'js, u8>| {
                let key = Described::read(&key)?;
                let encoding = key.private_encoding();
                let scheme = scheme_of(&digest, &padding, &dsa_encoding);
                let result = key.algorithm().and_then(|algorithm| {
                    sign(
                        algorithm,
                        encoding,
                        bytes(&key.bytes, "key")?,
                        &scheme,
                        bytes(&data, "data")?,
                    )
                });
                to_js(&ctx, result)
            },
        ),
    )?;
    native.set(
        "verify",
        Func::from(
            |ctx: Ctx<'js>,
             key: Object<'js>,
             digest: Option<String>,
             padding: String,
             dsa_encoding: String,
             data: TypedArray<'js, u8>,
             sig: TypedArray<'js, u8>| {
                let key = Described::read(&key)?;
                let scheme = scheme_of(&digest, &padding, &dsa_encoding);
                let result = key.algorithm().and_then(|algorithm| {
                    verify(
                        algorithm,
                        bytes(&key.bytes, "key")?,
                        &scheme,
                        bytes(&data, "data")?,
                        bytes(&sig, "signature")?,
                    )
                });
                result.map_err(|message| throw(&ctx, message))
            },
        ),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_containers_say_what_to_do() {
        let encrypted =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let error = parse(encrypted, "pem", None, false).err().expect("refused");
        assert!(error.contains("encrypted"), "{error}");
        let error = parse(b"\x30\x00", "der", None, true)
            .err()
            .expect("refused");
        assert!(error.contains("needs its type"), "{error}");
    }
}
