//! Validated identifiers. Each newtype can only hold a value that passed its
//! rule, so code further down never re-checks names taken from URLs or files.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {rule}")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
    pub rule: &'static str,
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $rule:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const RULE: &'static str = $rule;

            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                let check: fn(&str) -> bool = $check;
                if check(&value) {
                    Ok(Self(value))
                } else {
                    Err(IdError { kind: $kind, value, rule: $rule })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// An environment, CloudBase's unit of isolation (`envName`, `SCF_NAMESPACE`)
    /// and Function Compute's service (`serviceName`). The rule admits both:
    /// CloudBase env IDs are lower case, FC service names may be upper case
    /// and up to 128 characters (Link IoT Edge's `EdgeFC`). Names differing
    /// only in case are different envs.
    EnvId,
    "env",
    "1 to 128 characters of letters, digits, '_' and '-'",
    |s| (1..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
);

string_id!(
    /// A function's name within its env (CloudBase: letters, digits, '-' and '_', starting with a letter).
    FunctionName,
    "function name",
    "1 to 60 characters of letters, digits, '_' and '-', starting with a letter",
    |s| (1..=60).contains(&s.len())
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
);

string_id!(
    /// The ID of one invocation. Generated IDs are time-ordered (see [`RequestId::generate`]);
    /// a client may send its own in `X-Request-Id`.
    RequestId,
    "request id",
    "1 to 128 characters of letters, digits, '-', '_', '.' and ':'",
    |s| (1..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
);

string_id!(
    /// An immutable deployed version: the hex SHA-256 of the package's normalized content.
    VersionId,
    "version",
    "64 lowercase hex digits",
    |s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
);

impl EnvId {
    /// The env used when a path or command names none.
    pub fn default_env() -> Self {
        Self("default".to_owned())
    }
}

impl VersionId {
    /// The first 12 hex digits, enough to tell versions apart in listings.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl RequestId {
    /// A new UUID-shaped ID whose first 48 bits are the Unix time in milliseconds
    /// (the UUIDv7 layout). Time order keeps the records table append-mostly,
    /// which matters for batched inserts at tens of thousands per second.
    pub fn generate() -> Self {
        let ms = crate::now_unix_ms() as u64;
        let random: u128 = rand::random();
        let mut v = (u128::from(ms) << 80) | (random & ((1u128 << 80) - 1));
        // version 7 and the RFC 4122 variant bits
        v = (v & !(0xF << 76)) | (0x7 << 76);
        v = (v & !(0x3 << 62)) | (0x2 << 62);
        // Written by hand rather than with format!: this runs once per invocation.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(36);
        for i in 0..32 {
            if matches!(i, 8 | 12 | 16 | 20) {
                out.push('-');
            }
            let nibble = (v >> (124 - 4 * i)) & 0xF;
            out.push(char::from(HEX[nibble as usize]));
        }
        Self(out)
    }

    /// The ID of an invocation made for another or for an event
    /// (`msg:{messageId}:{function}`, `{requestId}:onSuccess`,
    /// `timer:{function}:{trigger}:{at}`): `text` itself when it is a request
    /// ID, else `{kind}:` and a digest of it. The same text always makes the
    /// same ID, which is what queues such an invocation once.
    pub fn derived(kind: &str, text: &str) -> Self {
        Self::parse(text).unwrap_or_else(|_| {
            let digest = Sha256::digest(text.as_bytes());
            Self::parse(format!("{kind}:{}", hex::encode(&digest[..16])))
                .unwrap_or_else(|_| Self::generate())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_id_is_its_text_or_a_digest_the_same_text_always_makes() {
        let short = RequestId::derived("msg", "msg:abc:f");
        assert_eq!(short.as_str(), "msg:abc:f");
        let long = format!("msg:{}:f", "a".repeat(128));
        let derived = RequestId::derived("msg", &long);
        assert!(derived.as_str().starts_with("msg:") && derived.as_str().len() == 36);
        assert_eq!(derived, RequestId::derived("msg", &long));
    }

    #[test]
    fn env_rule() {
        assert!(EnvId::parse("prod-env-9x").is_ok());
        assert!(EnvId::parse("EdgeFC").is_ok(), "an FC service name");
        assert!(EnvId::parse("a".repeat(128)).is_ok());
        assert!(EnvId::parse("").is_err());
        assert!(EnvId::parse("a".repeat(129)).is_err());
        assert!(EnvId::parse("../etc").is_err());
        assert!(EnvId::parse("a b").is_err());
    }

    #[test]
    fn function_name_rule() {
        assert!(FunctionName::parse("add").is_ok());
        assert!(FunctionName::parse("get_user-2").is_ok());
        assert!(FunctionName::parse("2add").is_err());
        assert!(FunctionName::parse("../etc").is_err());
    }

    #[test]
    fn generated_request_ids_are_valid_and_ordered() {
        let a = RequestId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = RequestId::generate();
        assert!(RequestId::parse(a.as_str()).is_ok());
        assert_eq!(a.as_str().len(), 36);
        assert_eq!(&a.as_str()[14..15], "7");
        assert!(a < b);
    }
}
