//! API authentication: the static bearer token (`api_token_file`) and Mantle's HS256 JWT
//! (`jwt_secret_file`).
//!
//! Mantle's batch submitter, with its `jwt_secret` set, sends `Authorization: Bearer <JWT>`
//! on every request: HS256 over the 32-byte secret, claims `{"iat": now}` minted fresh per
//! request; Mantle's manager accepts an `iat` within 60 s of its clock. Cohort does the same
//! (and honours an `exp` if one is given).
//!
//! HS256 is verified here with `hmac` + `sha2` rather than the `jsonwebtoken` crate: one
//! algorithm is all Mantle uses, a fixed algorithm leaves no `alg` negotiation to get wrong
//! (`none`, RS/HS confusion), the MAC is compared in constant time by `hmac`, and both crates
//! are already in the build (no new C or crypto backend for CI to compile).

use std::path::Path;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::ManagerError;

/// How far `iat` may be from the manager's clock, as Mantle's manager allows.
pub const JWT_MAX_SKEW_SECS: i64 = 60;

/// Why a request was not authenticated; the label of `cohort_manager_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not the static token, and not a JWT whose signature verifies.
    Invalid,
    /// A JWT with a valid signature whose `iat` is too old or too far ahead, or whose `exp`
    /// has passed.
    Expired,
}

impl AuthFailure {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Invalid => "invalid",
            AuthFailure::Expired => "expired",
        }
    }

    /// The message of the 401 answer.
    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing bearer token (Authorization: Bearer <token or JWT>)",
            AuthFailure::Invalid => "wrong bearer token or JWT signature",
            AuthFailure::Expired => "JWT iat is not within 60 s of now, or the JWT has expired",
        }
    }
}

/// The configured credentials; a request passes with any one of them.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The static bearer token (zeroized when dropped).
    pub token: Option<Zeroizing<String>>,
    /// The HS256 JWT secret (zeroized when dropped).
    pub jwt_secret: Option<Zeroizing<Vec<u8>>>,
}

impl Credentials {
    /// Whether the API is open (no credential configured).
    pub fn open(&self) -> bool {
        self.token.is_none() && self.jwt_secret.is_none()
    }

    /// Checks an `Authorization` header value at unix time `now`.
    pub fn check(&self, header: Option<&str>, now: i64) -> Result<(), AuthFailure> {
        if self.open() {
            return Ok(());
        }
        let given = header
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .ok_or(AuthFailure::Missing)?;
        if let Some(token) = &self.token
            && constant_time_eq(given.as_bytes(), token.as_bytes())
        {
            return Ok(());
        }
        match &self.jwt_secret {
            Some(secret) => verify_jwt(secret, given, now),
            None => Err(AuthFailure::Invalid),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads a `jwt_secret_file`: 32 bytes as hex (an optional `0x`), like Mantle's `jwt_secret`.
pub fn read_jwt_secret(path: &Path) -> Result<Zeroizing<Vec<u8>>, ManagerError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| ManagerError::Config(format!("cannot read {}: {e}", path.display())))?,
    );
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let bytes = Zeroizing::new(hex::decode(t).map_err(|_| {
        ManagerError::Config(format!(
            "jwt_secret_file {} does not hold hex (32 bytes, 64 hex digits)",
            path.display()
        ))
    })?);
    if bytes.len() != 32 {
        return Err(ManagerError::Config(format!(
            "jwt_secret_file {} holds {} bytes; Mantle's jwt_secret is 32 bytes (64 hex digits)",
            path.display(),
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Verifies an HS256 JWT: header `alg` HS256, a valid MAC over `header.payload`, an `iat`
/// within [`JWT_MAX_SKEW_SECS`] of `now`, and `exp` (if present) not passed.
pub fn verify_jwt(secret: &[u8], token: &str, now: i64) -> Result<(), AuthFailure> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthFailure::Invalid);
    };
    let header: serde_json::Value = b64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AuthFailure::Invalid)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(AuthFailure::Invalid);
    }
    let sig = b64.decode(s).map_err(|_| AuthFailure::Invalid)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| AuthFailure::Invalid)?;
    mac.update(h.as_bytes());
    mac.update(b".");
    mac.update(p.as_bytes());
    mac.verify_slice(&sig).map_err(|_| AuthFailure::Invalid)?;
    // Only a token with a valid MAC gets its claims read.
    let claims: serde_json::Value = b64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AuthFailure::Invalid)?;
    let number = |v: &serde_json::Value| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64));
    let iat = claims
        .get("iat")
        .and_then(number)
        .ok_or(AuthFailure::Invalid)?;
    if (now - iat).abs() > JWT_MAX_SKEW_SECS {
        return Err(AuthFailure::Expired);
    }
    if let Some(exp) = claims.get("exp") {
        match number(exp) {
            Some(exp) if exp >= now => {}
            _ => return Err(AuthFailure::Expired),
        }
    }
    Ok(())
}

/// Mints the HS256 JWT Mantle's batch submitter sends (`{"iat": iat}`): for Cohort's own
/// client against a manager with `jwt_secret_file`, and for tests.
pub fn mint_jwt(secret: &[u8], iat: i64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing = format!(
        "{}.{}",
        b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(format!(r#"{{"iat":{iat}}}"#))
    );
    // HMAC takes keys of any length: this cannot fail.
    let tag = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(signing.as_bytes());
            b64.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signing}.{tag}")
}

/// Unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mint(secret: &[u8], header: &str, claims: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signing = format!("{}.{}", b64.encode(header), b64.encode(claims));
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(signing.as_bytes());
        format!("{signing}.{}", b64.encode(mac.finalize().into_bytes()))
    }

    const HS: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    #[test]
    fn jwts_are_checked_like_mantles_manager_does() {
        let secret = [7u8; 32];
        let now = 1_700_000_000;
        let ok = mint(&secret, HS, &format!(r#"{{"iat":{now}}}"#));
        assert_eq!(verify_jwt(&secret, &ok, now), Ok(()));
        assert_eq!(verify_jwt(&secret, &ok, now + 60), Ok(()));
        assert_eq!(
            verify_jwt(&secret, &ok, now + 61),
            Err(AuthFailure::Expired)
        );
        assert_eq!(
            verify_jwt(&secret, &ok, now - 61),
            Err(AuthFailure::Expired)
        );
        assert_eq!(verify_jwt(&[8; 32], &ok, now), Err(AuthFailure::Invalid));
        let none = mint(&secret, r#"{"alg":"none"}"#, &format!(r#"{{"iat":{now}}}"#));
        assert_eq!(verify_jwt(&secret, &none, now), Err(AuthFailure::Invalid));
        let no_iat = mint(&secret, HS, r#"{"sub":"x"}"#);
        assert_eq!(verify_jwt(&secret, &no_iat, now), Err(AuthFailure::Invalid));
        let expired = mint(
            &secret,
            HS,
            &format!(r#"{{"iat":{now},"exp":{}}}"#, now - 1),
        );
        assert_eq!(
            verify_jwt(&secret, &expired, now),
            Err(AuthFailure::Expired)
        );
        let mut tampered = ok.clone();
        tampered.push('A');
        assert_eq!(
            verify_jwt(&secret, &tampered, now),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(verify_jwt(&secret, "a.b", now), Err(AuthFailure::Invalid));
        assert_eq!(verify_jwt(&secret, &mint_jwt(&secret, now), now), Ok(()));

        let creds = Credentials {
            token: Some(Zeroizing::new("static".into())),
            jwt_secret: Some(Zeroizing::new(secret.to_vec())),
        };
        assert_eq!(creds.check(Some("Bearer static"), now), Ok(()));
        assert_eq!(creds.check(Some(&format!("Bearer {ok}")), now), Ok(()));
        assert_eq!(creds.check(None, now), Err(AuthFailure::Missing));
        assert_eq!(creds.check(Some("Basic x"), now), Err(AuthFailure::Missing));
        assert_eq!(
            creds.check(Some("Bearer nope"), now),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(Credentials::default().check(None, now), Ok(()));
    }

    #[test]
    fn the_secret_file_holds_32_bytes_of_hex() {
        let dir = std::env::temp_dir().join(format!("cohort-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwt");
        std::fs::write(&path, format!("0x{}\n", "ab".repeat(32))).unwrap();
        assert_eq!(*read_jwt_secret(&path).unwrap(), vec![0xab; 32]);
        std::fs::write(&path, "ab".repeat(16)).unwrap();
        assert!(
            read_jwt_secret(&path)
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
        std::fs::write(&path, "zz").unwrap();
        assert!(read_jwt_secret(&path).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
