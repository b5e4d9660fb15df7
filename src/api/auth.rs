//! API keys: who may call what. Keys are kept only as SHA-256 digests (from the config file, or
//! hashed on load from `FACEGRAPH_API_KEYS`); a presented bearer key is hashed and compared with
//! every known digest in constant time. Each key has a name (recorded as the analyst on decisions)
//! and roles: `ingest`, `analyst`, `admin`.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::settings::ApiKeySetting;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Submit images and candidate matches.
    Ingest,
    /// Read matches, clusters and the review queue; record decisions.
    Analyst,
    /// Preview rule sets.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Role::Ingest, Role::Analyst, Role::Admin];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Analyst => "analyst",
            Self::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Why the configured keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// An entry of `FACEGRAPH_API_KEYS` is not `NAME:ROLES:KEY`.
    #[error("FACEGRAPH_API_KEYS entry {index} is not NAME:ROLES:KEY (roles joined by '+')")]
    Shape {
        /// Its position, from 1.
        index: usize,
    },
    /// A key's name is empty, too long or has characters outside `[A-Za-z0-9_.@-]`.
    #[error("API key name {0:?} is invalid: use 1 to 64 of A-Z a-z 0-9 _ . @ -")]
    Name(String),
    /// An unknown role.
    #[error("API key {name}: unknown role {role:?} (roles are ingest, analyst, admin)")]
    Role {
        /// The key's name.
        name: String,
        /// The role given.
        role: String,
    },
    /// A key too short to be a secret.
    #[error("API key {0}: the key must be at least 16 characters long")]
    TooShort(String),
    /// A configured digest that is not 64 hex digits.
    #[error("API key {0}: sha256 must be the 64 hex digits of the key's SHA-256 (facegraph api-key hash)")]
    Digest(String),
    /// Two keys share a name.
    #[error("API key name {0} is used twice")]
    Duplicate(String),
    /// Two names share one key, so that decisions made with it could not be told apart.
    #[error("API keys {first} and {second} are the same key: give each holder a key of their own")]
    SameKey {
        /// The name given first.
        first: String,
        /// The name given second.
        second: String,
    },
}

/// One key: its holder's name, its roles and the SHA-256 of the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    name: String,
    roles: Vec<Role>,
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// A key from its secret.
    pub fn from_secret(name: &str, roles: &[Role], key: &SecretString) -> Result<Self, KeyError> {
        check_name(name)?;
        if key.expose_secret().chars().count() < 16 {
            return Err(KeyError::TooShort(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            roles: roles.to_vec(),
            digest: digest(key.expose_secret()),
        })
    }

    /// A key from the config file's entry, which holds the digest, never the key.
    pub fn from_setting(s: &ApiKeySetting) -> Result<Self, KeyError> {
        check_name(&s.name)?;
        let roles = parse_roles(&s.name, s.roles.iter().map(String::as_str))?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(s.sha256.trim().to_ascii_lowercase(), &mut digest)
            .map_err(|_| KeyError::Digest(s.name.clone()))?;
        Ok(Self {
            name: s.name.clone(),
            roles,
            digest,
        })
    }

    /// The holder's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the key has the role.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// The SHA-256 of a key in lowercase hex, as the config file's `sha256` holds it.
pub fn hash_key(key: &SecretString) -> String {
    hex::encode(digest(key.expose_secret()))
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(KeyError::Name(name.to_owned()))
    }
}

fn parse_roles<'a>(
    name: &str,
    roles: impl Iterator<Item = &'a str>,
) -> Result<Vec<Role>, KeyError> {
    let mut out = Vec::new();
    for r in roles {
        let role = Role::parse(r.trim()).ok_or_else(|| KeyError::Role {
            name: name.to_owned(),
            role: r.to_owned(),
        })?;
        if !out.contains(&role) {
            out.push(role);
        }
    }
    Ok(out)
}

/// Parses `FACEGRAPH_API_KEYS`: comma-separated `NAME:ROLES:KEY`, roles joined by `+`. The key is
/// everything after the second colon, so it may itself hold colons.
pub fn parse_env_keys(value: &SecretString) -> Result<Vec<ApiKey>, KeyError> {
    let mut out = Vec::new();
    for (i, entry) in value
        .expose_secret()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .enumerate()
    {
        let mut parts = entry.splitn(3, ':');
        let (Some(name), Some(roles), Some(key)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::Shape { index: i + 1 });
        };
        let roles = parse_roles(name, roles.split('+'))?;
        if roles.is_empty() {
            return Err(KeyError::Shape { index: i + 1 });
        }
        out.push(ApiKey::from_secret(
            name,
            &roles,
            &SecretString::from(key.to_owned()),
        )?);
    }
    Ok(out)
}

/// The keys the server accepts, or none at all when it runs without authentication.
#[derive(Clone, Debug)]
pub struct ApiKeys {
    keys: Vec<ApiKey>,
    insecure: bool,
}

/// The name decisions record when the server runs without authentication.
pub const ANONYMOUS: &str = "anonymous";

impl ApiKeys {
    /// These keys; names and keys must be unique (a key is compared by its digest, and an error
    /// names the holders, never the key).
    pub fn new(keys: Vec<ApiKey>) -> Result<Self, KeyError> {
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.name == k.name) {
                return Err(KeyError::Duplicate(k.name.clone()));
            }
            if let Some(o) = keys[..i].iter().find(|o| o.digest == k.digest) {
                return Err(KeyError::SameKey {
                    first: o.name.clone(),
                    second: k.name.clone(),
                });
            }
        }
        Ok(Self {
            keys,
            insecure: false,
        })
    }

    /// No authentication: every request is let in as `anonymous` with every role.
    pub fn insecure() -> Self {
        Self {
            keys: Vec::new(),
            insecure: true,
        }
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether authentication is off.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The key whose digest matches the presented key. Every known digest is compared, in constant
    /// time, so that the time taken says nothing about which digest came close.
    pub fn authenticate(&self, presented: &str) -> Option<&ApiKey> {
        let d = digest(presented);
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.digest.ct_eq(&d)) {
                found = Some(k);
            }
        }
        found
    }
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The key's name (`anonymous` without authentication).
    pub name: String,
}

/// The roles an endpoint requires, as a type so that the extractor checks them before the body is
/// read.
pub trait Requirement {
    /// The roles of which a key needs one; empty for any valid key.
    const ROLES: &'static [Role];
    /// How a refusal names them.
    const NAMED: &'static str;
}

/// Any valid key.
#[derive(Debug)]
pub struct AnyKey;
/// A key with the `ingest` role.
#[derive(Debug)]
pub struct IngestRole;
/// A key with the `analyst` role.
#[derive(Debug)]
pub struct AnalystRole;
/// A key with the `admin` role.
#[derive(Debug)]
pub struct AdminRole;
/// A key with the `analyst` or the `ingest` role: reading collections and searching them.
#[derive(Debug)]
pub struct AnalystOrIngest;

impl Requirement for AnyKey {
    const ROLES: &'static [Role] = &[];
    const NAMED: &'static str = "any";
}
impl Requirement for IngestRole {
    const ROLES: &'static [Role] = &[Role::Ingest];
    const NAMED: &'static str = "ingest";
}
impl Requirement for AnalystRole {
    const ROLES: &'static [Role] = &[Role::Analyst];
    const NAMED: &'static str = "analyst";
}
impl Requirement for AdminRole {
    const ROLES: &'static [Role] = &[Role::Admin];
    const NAMED: &'static str = "admin";
}
impl Requirement for AnalystOrIngest {
    const ROLES: &'static [Role] = &[Role::Analyst, Role::Ingest];
    const NAMED: &'static str = "analyst or ingest";
}

/// Extracts the caller from `Authorization: Bearer KEY`: 401 without a valid key, 403 when the key
/// lacks the role `R` names.
#[derive(Debug)]
pub struct Authorized<R>(pub Caller, pub PhantomData<R>);

impl<R: Requirement> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let keys = state.keys();
        if keys.is_insecure() {
            return Ok(Self(
                Caller {
                    name: ANONYMOUS.to_owned(),
                },
                PhantomData,
            ));
        }
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let key = keys.authenticate(token).ok_or(ApiError::Unauthorized)?;
        if !R::ROLES.is_empty() && !R::ROLES.iter().any(|r| key.has(*r)) {
            return Err(ApiError::Forbidden {
                name: key.name.clone(),
                role: R::NAMED,
            });
        }
        Ok(Self(
            Caller {
                name: key.name.clone(),
            },
            PhantomData,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn env_keys_parse_and_authenticate() {
        let keys = parse_env_keys(&secret(
            "alice:analyst:alice-key-0123456789, loader:ingest+analyst:loader:key:with:colons",
        ))
        .unwrap();
        let keys = ApiKeys::new(keys).unwrap();
        let alice = keys.authenticate("alice-key-0123456789").unwrap();
        assert_eq!(alice.name(), "alice");
        assert!(alice.has(Role::Analyst) && !alice.has(Role::Ingest));
        let loader = keys.authenticate("loader:key:with:colons").unwrap();
        assert!(loader.has(Role::Ingest) && loader.has(Role::Analyst));
        assert!(keys.authenticate("alice-key-012345678").is_none());
        assert!(keys.authenticate("").is_none());
    }

    #[test]
    fn bad_env_keys_are_refused_by_name() {
        for (value, needle) in [
            ("alice:analyst", "entry 1"),
            ("alice:root:0123456789abcdef", "root"),
            ("al ice:analyst:0123456789abcdef", "al ice"),
            ("alice:analyst:short", "16"),
        ] {
            let err = parse_env_keys(&secret(value)).unwrap_err().to_string();
            assert!(err.contains(needle), "{value}: {err}");
            assert!(!err.contains("0123456789abcdef"), "the key leaked: {err}");
        }
        let twice = parse_env_keys(&secret(
            "a:admin:0123456789abcdef,a:ingest:fedcba9876543210",
        ))
        .unwrap();
        assert!(ApiKeys::new(twice).is_err());
    }

    #[test]
    fn one_key_under_two_names_is_refused_naming_both_and_not_the_key() {
        let shared = parse_env_keys(&secret(
            "alice:analyst:shared-key-0123456789,bob:admin:shared-key-0123456789",
        ))
        .unwrap();
        let err = ApiKeys::new(shared).unwrap_err().to_string();
        assert!(err.contains("alice") && err.contains("bob"), "{err}");
        assert!(!err.contains("shared-key"), "the key leaked: {err}");
        // A config entry holding the digest of an environment key is the same key too.
        let key = secret("shared-key-0123456789");
        let setting = ApiKeySetting {
            name: "carol".to_owned(),
            roles: vec!["ingest".to_owned()],
            sha256: hash_key(&key),
        };
        let mixed = vec![
            ApiKey::from_setting(&setting).unwrap(),
            ApiKey::from_secret("dave", &[Role::Ingest], &key).unwrap(),
        ];
        assert!(matches!(
            ApiKeys::new(mixed),
            Err(KeyError::SameKey { first, second }) if first == "carol" && second == "dave"
        ));
    }

    #[test]
    fn configured_digests_match_the_hash_helper() {
        let key = secret("a-long-enough-secret-key");
        let setting = ApiKeySetting {
            name: "bob".to_owned(),
            roles: vec!["admin".to_owned()],
            sha256: hash_key(&key).to_uppercase(),
        };
        let keys = ApiKeys::new(vec![ApiKey::from_setting(&setting).unwrap()]).unwrap();
        assert_eq!(
            keys.authenticate("a-long-enough-secret-key")
                .map(ApiKey::name),
            Some("bob")
        );
        let bad = ApiKeySetting {
            sha256: "abc".to_owned(),
            ..setting
        };
        assert!(ApiKey::from_setting(&bad).is_err());
    }
}
