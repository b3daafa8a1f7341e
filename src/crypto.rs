//! All cryptography, bit-compatible with pocket_protector (libsodium via
//! PyNaCl). This is the only module that touches the crypto crates.
//!
//! - Binary values in the file are base64 of a version byte and a payload.
//! - Secrets and owner entries are libsodium sealed boxes
//!   (`crypto_box_seal`): X25519, XSalsa20-Poly1305, BLAKE2b nonce.
//! - A custodian's key comes from their passphrase: `valet =
//!   SHA-512(passphrase || salt || name)`, then Argon2id13 (libsodium
//!   `crypto_pwhash`, parallelism 1) over `valet` with salt
//!   `SHA-512(salt || name)[..16]` for hard and fast keys, or `valet[..32]`
//!   for raw keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use crypto_box::aead::OsRng;
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Size of an X25519 key.
pub const KEY_SIZE: usize = 32;
/// Overhead of a sealed box: ephemeral public key plus Poly1305 tag.
pub const SEAL_OVERHEAD: usize = 48;
/// Salt length in `pwdkm`.
pub const SALT_SIZE: usize = 8;

/// libsodium `OPSLIMIT_SENSITIVE`, the hard (v0) cost.
pub const HARD_OPSLIMIT: u32 = 4;
/// libsodium `MEMLIMIT_MODERATE` (256 MiB), the hard (v0) cost.
pub const HARD_MEMLIMIT: u32 = 256 * 1024 * 1024;
/// libsodium `OPSLIMIT_INTERACTIVE`, the fast cost.
pub const FAST_OPSLIMIT: u32 = 2;
/// libsodium `MEMLIMIT_INTERACTIVE` (64 MiB), the fast cost.
pub const FAST_MEMLIMIT: u32 = 64 * 1024 * 1024;
/// Largest stored opslimit loaded without `PPROTECT_TRUST_KDF_PARAMS`.
pub const MAX_OPSLIMIT: u32 = 4;
/// Largest stored memlimit (1 GiB) loaded without `PPROTECT_TRUST_KDF_PARAMS`.
pub const MAX_MEMLIMIT: u32 = 1024 * 1024 * 1024;
/// Environment variable that lifts the stored-cost ceiling.
pub const TRUST_KDF_ENV: &str = "PPROTECT_TRUST_KDF_PARAMS";

/// Encode bytes as a version-0 value: base64 of `0x00 || bytes`.
pub fn encode_v0(bytes: &[u8]) -> String {
    let mut raw = Vec::with_capacity(bytes.len() + 1);
    raw.push(0u8);
    raw.extend_from_slice(bytes);
    B64.encode(raw)
}

/// Decode standard padded base64, describing failures without the input.
pub fn decode_b64(s: &str) -> std::result::Result<Vec<u8>, String> {
    B64.decode(s.as_bytes())
        .map_err(|_| "is not valid base64".to_string())
}

/// Decode a version-0 value, returning the payload.
pub fn decode_v0(s: &str) -> std::result::Result<Vec<u8>, String> {
    let mut raw = decode_b64(s)?;
    match raw.first() {
        Some(0) => {
            raw.remove(0);
            Ok(raw)
        }
        Some(v) => Err(format!("has unsupported version byte {v}")),
        None => Err("is empty".to_string()),
    }
}

/// How a custodian's key is derived from their passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `pwdkm` v0: Argon2id at the hard cost (opslimit 4, 256 MiB).
    Hard,
    /// `pwdkm` v1: Argon2id at the stored cost (`fast` is 2 / 64 MiB).
    Costed {
        /// Argon2 passes (libsodium opslimit).
        opslimit: u32,
        /// Memory in bytes (libsodium memlimit).
        memlimit: u32,
    },
    /// `pwdkm` v2: no KDF; the passphrase is `P` + 64 hex digits + `P`.
    Raw,
}

impl KeyType {
    /// The `fast` key type of `--key-type fast`.
    pub const FAST: KeyType = KeyType::Costed {
        opslimit: FAST_OPSLIMIT,
        memlimit: FAST_MEMLIMIT,
    };

    /// Argon2 cost `(opslimit, memlimit)`, or `None` for raw keys.
    pub fn cost(self) -> Option<(u32, u32)> {
        match self {
            KeyType::Hard => Some((HARD_OPSLIMIT, HARD_MEMLIMIT)),
            KeyType::Costed { opslimit, memlimit } => Some((opslimit, memlimit)),
            KeyType::Raw => None,
        }
    }
}

/// A custodian's password-derived key material (`pwdkm`): how to derive
/// the key, the salt, and the public key it must produce.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pwdkm {
    /// Derivation type and cost.
    pub key_type: KeyType,
    /// Per-custodian random salt.
    pub salt: [u8; SALT_SIZE],
    /// The custodian's X25519 public key.
    pub public_key: [u8; KEY_SIZE],
}

impl Pwdkm {
    /// Parse a stored `pwdkm` value. `trust_costs` lifts the ceiling on
    /// stored v1 costs (see [`TRUST_KDF_ENV`]). Errors describe the problem
    /// without the value; the caller adds the custodian name.
    pub fn parse(s: &str, trust_costs: bool) -> std::result::Result<Pwdkm, String> {
        let raw = decode_b64(s)?;
        let Some(&version) = raw.first() else {
            return Err("is empty".to_string());
        };
        let expect = |n: usize| {
            if raw.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "pwdkm v{version}: expected {n} bytes, got {}",
                    raw.len()
                ))
            }
        };
        let (key_type, rest) = match version {
            0 => {
                expect(41)?;
                (KeyType::Hard, &raw[1..])
            }
            1 => {
                expect(49)?;
                let opslimit = u32::from_le_bytes(raw[1..5].try_into().expect("4 bytes"));
                let memlimit = u32::from_le_bytes(raw[5..9].try_into().expect("4 bytes"));
                if (opslimit > MAX_OPSLIMIT || memlimit > MAX_MEMLIMIT) && !trust_costs {
                    return Err(format!(
                        "stored KDF params exceed limits: opslimit={opslimit} (max {MAX_OPSLIMIT}), \
                         memlimit={memlimit} (max {MAX_MEMLIMIT}); set {TRUST_KDF_ENV}=1 to load anyway"
                    ));
                }
                (KeyType::Costed { opslimit, memlimit }, &raw[9..])
            }
            2 => {
                expect(41)?;
                (KeyType::Raw, &raw[1..])
            }
            v => return Err(format!("unsupported pwdkm version {v}")),
        };
        Ok(Pwdkm {
            key_type,
            salt: rest[..SALT_SIZE].try_into().expect("length checked"),
            public_key: rest[SALT_SIZE..].try_into().expect("length checked"),
        })
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(49);
        match self.key_type {
            KeyType::Hard => raw.push(0),
            KeyType::Costed { opslimit, memlimit } => {
                raw.push(1);
                raw.extend_from_slice(&opslimit.to_le_bytes());
                raw.extend_from_slice(&memlimit.to_le_bytes());
            }
            KeyType::Raw => raw.push(2),
        }
        raw.extend_from_slice(&self.salt);
        raw.extend_from_slice(&self.public_key);
        B64.encode(raw)
    }

    /// Derive the secret key for `name` and `passphrase`. This is the one
    /// expensive step (Argon2id) of a credentialed command.
    pub fn derive(&self, name: &str, passphrase: &[u8]) -> Result<SecretKey> {
        derive_key(self.key_type, &self.salt, name, passphrase)
    }

    /// Create new key material for `name` with a fresh salt, returning it
    /// with the derived secret key.
    pub fn generate(
        key_type: KeyType,
        name: &str,
        passphrase: &[u8],
    ) -> Result<(Pwdkm, SecretKey)> {
        let mut salt = [0u8; SALT_SIZE];
        getrandom(&mut salt);
        let sk = derive_key(key_type, &salt, name, passphrase)?;
        let pwdkm = Pwdkm {
            key_type,
            salt,
            public_key: sk.public_key(),
        };
        Ok((pwdkm, sk))
    }
}

fn getrandom(buf: &mut [u8]) {
    use crypto_box::aead::rand_core::RngCore;
    OsRng.fill_bytes(buf);
}

/// Generate a raw-key passphrase: `P` + 64 lowercase hex digits + `P`.
pub fn generate_raw_passphrase() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom(&mut bytes[..]);
    let mut s = Zeroizing::new(String::with_capacity(66));
    s.push('P');
    for b in bytes.iter() {
        s.push(char::from_digit(u32::from(b >> 4), 16).expect("nibble"));
        s.push(char::from_digit(u32::from(b & 15), 16).expect("nibble"));
    }
    s.push('P');
    s
}

/// Whether `p` has the raw-key form `P` + 64 lowercase hex digits + `P`.
pub fn is_raw_passphrase(p: &[u8]) -> bool {
    p.len() == 66
        && p[0] == b'P'
        && p[65] == b'P'
        && p[1..65]
            .iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn derive_key(key_type: KeyType, salt: &[u8], name: &str, passphrase: &[u8]) -> Result<SecretKey> {
    let mut hasher = Sha512::new();
    hasher.update(passphrase);
    hasher.update(salt);
    hasher.update(name.as_bytes());
    let mut valet = Zeroizing::new([0u8; 64]);
    valet.copy_from_slice(&hasher.finalize());
    let mut out = Zeroizing::new([0u8; KEY_SIZE]);
    match key_type.cost() {
        None => out.copy_from_slice(&valet[..KEY_SIZE]),
        Some((opslimit, memlimit)) => {
            let mut h = Sha512::new();
            h.update(salt);
            h.update(name.as_bytes());
            let kdf_salt = h.finalize();
            argon2id(
                &valet[..],
                &kdf_salt[..16],
                opslimit,
                memlimit,
                &mut out[..],
            )?;
        }
    }
    Ok(SecretKey::from_bytes(*out))
}

/// libsodium `crypto_pwhash` with `ALG_ARGON2ID13`: parallelism 1, memory
/// `memlimit / 1024` KiB, `opslimit` passes, a 16-byte salt.
///
/// With the `libsodium` feature (the default) this is libsodium's own
/// implementation; without it, the pure-Rust `argon2` crate. Both give the
/// same bytes (tested against the same vectors).
pub fn argon2id(
    password: &[u8],
    salt: &[u8],
    opslimit: u32,
    memlimit: u32,
    out: &mut [u8],
) -> Result<()> {
    let _span = tracing::debug_span!(
        "argon2id",
        opslimit,
        memlimit_kib = memlimit / 1024,
        backend = ARGON2_BACKEND
    )
    .entered();
    check_cost(opslimit, memlimit)?;
    tracing::debug!("argon2id derivation");
    #[cfg(feature = "libsodium")]
    {
        sodium::argon2id(password, salt, opslimit, memlimit, out)
    }
    #[cfg(not(feature = "libsodium"))]
    {
        argon2id_pure_rust(password, salt, opslimit, memlimit, out)
    }
}

/// Which Argon2id implementation [`argon2id`] uses.
pub const ARGON2_BACKEND: &str = if cfg!(feature = "libsodium") {
    "libsodium"
} else {
    "argon2 (pure Rust)"
};

fn check_cost(opslimit: u32, memlimit: u32) -> Result<()> {
    if opslimit < 1 || memlimit < 8192 {
        return Err(Error::invalid(
            None,
            format!("invalid KDF cost: opslimit={opslimit}, memlimit={memlimit}"),
        ));
    }
    Ok(())
}

/// The pure-Rust Argon2id (RustCrypto `argon2`), same contract as
/// [`argon2id`].
pub fn argon2id_pure_rust(
    password: &[u8],
    salt: &[u8],
    opslimit: u32,
    memlimit: u32,
    out: &mut [u8],
) -> Result<()> {
    check_cost(opslimit, memlimit)?;
    let params = argon2::Params::new(memlimit / 1024, opslimit, 1, Some(out.len()))
        .map_err(|e| Error::invalid(None, format!("invalid KDF cost: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    a.hash_password_into(password, salt, out)
        .map_err(|e| Error::invalid(None, format!("key derivation failed: {e}")))
}

/// libsodium's Argon2id, the one place with `unsafe` code (an FFI call).
#[cfg(feature = "libsodium")]
#[allow(unsafe_code)]
mod sodium {
    use std::sync::Once;

    use crate::error::{Error, Result};

    static INIT: Once = Once::new();

    /// `crypto_pwhash(..., crypto_pwhash_ALG_ARGON2ID13)`.
    pub fn argon2id(
        password: &[u8],
        salt: &[u8],
        opslimit: u32,
        memlimit: u32,
        out: &mut [u8],
    ) -> Result<()> {
        if salt.len() != 16 || out.len() < 16 {
            return Err(Error::invalid(
                None,
                "key derivation needs a 16-byte salt".into(),
            ));
        }
        // SAFETY: sodium_init is safe to call at any time, from any thread,
        // any number of times; Once keeps it to one call.
        INIT.call_once(|| unsafe {
            libsodium_sys::sodium_init();
        });
        // SAFETY: every pointer is valid for the length passed with it:
        // `out` for `out.len()` writable bytes, `password` for its length,
        // `salt` for the 16 bytes crypto_pwhash reads (checked above).
        let rc = unsafe {
            libsodium_sys::crypto_pwhash(
                out.as_mut_ptr(),
                out.len() as u64,
                password.as_ptr().cast(),
                password.len() as u64,
                salt.as_ptr(),
                u64::from(opslimit),
                memlimit as usize,
                libsodium_sys::crypto_pwhash_ALG_ARGON2ID13 as i32,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(Error::invalid(
                None,
                "key derivation failed (out of memory?)".into(),
            ))
        }
    }
}

/// An X25519 secret key (a custodian's or a domain's). Zeroized on drop;
/// its `Debug` prints nothing of the key.
pub struct SecretKey(crypto_box::SecretKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        SecretKey(crypto_box::SecretKey::generate(&mut OsRng))
    }

    /// From raw bytes.
    pub fn from_bytes(mut bytes: [u8; KEY_SIZE]) -> Self {
        let k = SecretKey(crypto_box::SecretKey::from_bytes(bytes));
        bytes.zeroize();
        k
    }

    /// Raw bytes, zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_SIZE]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> [u8; KEY_SIZE] {
        self.0.public_key().to_bytes()
    }

    /// Open a sealed box addressed to this key.
    pub fn unseal(&self, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < SEAL_OVERHEAD {
            return None;
        }
        self.0.unseal(sealed).ok().map(Zeroizing::new)
    }
}

/// Seal `plaintext` to `public_key` (libsodium `crypto_box_seal`).
pub fn seal(public_key: &[u8; KEY_SIZE], plaintext: &[u8]) -> Vec<u8> {
    crypto_box::PublicKey::from_bytes(*public_key)
        .seal(&mut OsRng, plaintext)
        .expect("sealing in memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn argon2id_matches_libsodium_vector_on_both_backends() {
        // Computed with PyNaCl (libsodium) crypto_pwhash argon2id.
        let want = "624c7366e8482564426d7a39ff9732aa61687c97788d0588af477b2885b3e437";
        let mut out = [0u8; 32];
        argon2id(&[b'x'; 64], &[b'y'; 16], 4, HARD_MEMLIMIT, &mut out).unwrap();
        assert_eq!(hex(&out), want);
        let mut out = [0u8; 32];
        argon2id_pure_rust(&[b'x'; 64], &[b'y'; 16], 4, HARD_MEMLIMIT, &mut out).unwrap();
        assert_eq!(hex(&out), want);
    }

    #[test]
    fn backends_agree_at_other_costs() {
        for (ops, mem) in [(1u32, 8192u32), (2, FAST_MEMLIMIT), (3, 1 << 20)] {
            let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
            argon2id(b"password", &[7u8; 16], ops, mem, &mut a).unwrap();
            argon2id_pure_rust(b"password", &[7u8; 16], ops, mem, &mut b).unwrap();
            assert_eq!(a, b, "opslimit {ops}, memlimit {mem}");
        }
    }

    #[test]
    fn pwdkm_round_trip_and_errors() {
        let p = Pwdkm {
            key_type: KeyType::FAST,
            salt: [7; 8],
            public_key: [9; 32],
        };
        assert_eq!(Pwdkm::parse(&p.encode(), false).unwrap(), p);
        let big = Pwdkm {
            key_type: KeyType::Costed {
                opslimit: 1000,
                memlimit: 8192,
            },
            ..p.clone()
        };
        let err = Pwdkm::parse(&big.encode(), false).unwrap_err();
        assert!(err.contains(TRUST_KDF_ENV), "{err}");
        assert!(Pwdkm::parse(&big.encode(), true).is_ok());
        assert!(
            Pwdkm::parse(&B64.encode([3u8; 41]), false)
                .unwrap_err()
                .contains("version 3")
        );
        assert!(
            Pwdkm::parse(&B64.encode([0u8; 40]), false)
                .unwrap_err()
                .contains("expected 41")
        );
        assert!(Pwdkm::parse("@@", false).is_err());
    }

    #[test]
    fn seal_round_trip() {
        let sk = SecretKey::generate();
        let sealed = seal(&sk.public_key(), b"hello");
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(&sk.unseal(&sealed).unwrap()[..], b"hello");
        assert!(SecretKey::generate().unseal(&sealed).is_none());
        assert!(sk.unseal(&sealed[..20]).is_none());
    }

    #[test]
    fn raw_passphrases() {
        let p = generate_raw_passphrase();
        assert!(is_raw_passphrase(p.as_bytes()));
        assert!(!is_raw_passphrase(b"P0123P"));
    }
}
