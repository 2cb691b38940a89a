//! Who may write: named ingest keys, each with its scopes.
//!
//! The shop's back end sends `Authorization: Bearer <key>` with `POST /v1/events` (scope
//! `events`) and `PUT /v1/items` / `DELETE /v1/items/{id}` (scope `items`). Keys are distinct
//! from the admin token: a leaked tracking key can add events, never retrain or publish.
//!
//! Keys come from `SESSIONRANK_INGEST_KEYS` (`name:scope,scope:secret`, entries separated by
//! `;` or whitespace) and from the file's `[[ingest_keys]]` tables (`name`, `scopes`, and the
//! secret's sha256 as `key_sha256`, so the file need not hold the secret itself). Only the
//! sha256 of each secret is kept in memory; a given key is hashed and compared with every
//! configured digest in constant time, so neither which key matched nor how much of it did
//! leaks through timing. Names appear in logs, secrets never (`Debug` prints the name).

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Environment variable holding the ingest keys.
pub const INGEST_KEYS_ENV: &str = "SESSIONRANK_INGEST_KEYS";

/// Shortest secret accepted: a guessable key is no key.
pub const MIN_KEY_LEN: usize = 16;

/// What a key may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `POST /v1/events`, `DELETE /v1/sessions/{id}`.
    Events,
    /// `PUT /v1/items`, `DELETE /v1/items/{id}`.
    Items,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Items => "items",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "events" => Some(Self::Events),
            "items" => Some(Self::Items),
            _ => None,
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::Events => 1,
            Self::Items => 2,
        }
    }
}

/// One named key: its name, its scopes and the sha256 of its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct IngestKey {
    pub name: String,
    scopes: u8,
    digest: [u8; 32],
}

impl std::fmt::Debug for IngestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scopes: Vec<&str> = [Scope::Events, Scope::Items]
            .into_iter()
            .filter(|s| self.allows(*s))
            .map(Scope::as_str)
            .collect();
        f.debug_struct("IngestKey").field("name", &self.name).field("scopes", &scopes).finish()
    }
}

impl IngestKey {
    /// A key from its secret.
    pub fn new(name: &str, scopes: &[Scope], secret: &str) -> anyhow::Result<Self> {
        let secret = secret.trim();
        anyhow::ensure!(
            secret.len() >= MIN_KEY_LEN,
            "ingest key `{name}`: the secret must be at least {MIN_KEY_LEN} characters"
        );
        Self::from_digest(name, scopes, Sha256::digest(secret.as_bytes()).into())
    }

    fn from_digest(name: &str, scopes: &[Scope], digest: [u8; 32]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "ingest key name `{name}`: use letters, digits, `-`, `_` and `.`"
        );
        anyhow::ensure!(!scopes.is_empty(), "ingest key `{name}` has no scope");
        let scopes = scopes.iter().fold(0, |acc, s| acc | s.bit());
        Ok(Self { name: name.into(), scopes, digest })
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes & scope.bit() != 0
    }
}

/// An `[[ingest_keys]]` table of the configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestKeyEntry {
    name: String,
    scopes: Vec<Scope>,
    /// sha256 of the secret, 64 hex digits (`printf %s "$KEY" | sha256sum`).
    key_sha256: String,
}

impl IngestKeyEntry {
    pub fn resolve(&self) -> anyhow::Result<IngestKey> {
        let bytes = hex::decode(self.key_sha256.trim()).ok().filter(|b| b.len() == 32);
        let digest: [u8; 32] = bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
            anyhow::anyhow!("ingest key `{}`: key_sha256 must be 64 hex digits", self.name)
        })?;
        IngestKey::from_digest(&self.name, &self.scopes, digest)
    }
}

/// Parse `SESSIONRANK_INGEST_KEYS`: `name:scope[,scope]:secret` entries separated by `;` or
/// whitespace. Errors name the entry by its name or position, never by its secret.
pub fn parse_env_keys(text: &str) -> anyhow::Result<Vec<IngestKey>> {
    let mut keys = Vec::new();
    for (i, entry) in
        text.split(|c: char| c == ';' || c.is_whitespace()).filter(|e| !e.is_empty()).enumerate()
    {
        let mut parts = entry.splitn(3, ':');
        let (Some(name), Some(scopes), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            anyhow::bail!("{INGEST_KEYS_ENV}: entry {} is not `name:scopes:secret`", i + 1);
        };
        let scopes = scopes
            .split(',')
            .map(|s| {
                Scope::parse(s.trim()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{INGEST_KEYS_ENV}: key `{name}` has an unknown scope `{s}` \
                         (expected events, items)"
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        keys.push(IngestKey::new(name, &scopes, secret)?);
    }
    Ok(keys)
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No key, or one that is not configured (401).
    Unauthenticated,
    /// A configured key without the scope (403), named.
    WrongScope { name: String },
}

/// The configured keys. With none, every write is refused as unauthenticated.
#[derive(Debug, Clone, Default)]
pub struct IngestKeys(Vec<IngestKey>);

impl IngestKeys {
    pub fn new(keys: Vec<IngestKey>) -> anyhow::Result<Self> {
        for (i, k) in keys.iter().enumerate() {
            anyhow::ensure!(
                !keys[..i].iter().any(|o| o.name == k.name),
                "two ingest keys are named `{}`",
                k.name
            );
        }
        Ok(Self(keys))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|k| k.name.as_str())
    }

    /// The name of the key `secret` is, if it holds `scope`. Every configured digest is
    /// compared (no early exit), each in constant time.
    pub fn check(&self, secret: Option<&str>, scope: Scope) -> Result<&str, Denied> {
        let Some(secret) = secret else { return Err(Denied::Unauthenticated) };
        let given: [u8; 32] = Sha256::digest(secret.trim().as_bytes()).into();
        let mut found = u32::MAX;
        for (i, k) in self.0.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            found = u32::conditional_select(&found, &i, given.ct_eq(&k.digest));
        }
        let key = usize::try_from(found).ok().and_then(|i| self.0.get(i));
        match key {
            None => Err(Denied::Unauthenticated),
            Some(k) if k.allows(scope) => Ok(&k.name),
            Some(k) => Err(Denied::WrongScope { name: k.name.clone() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-secret";

    #[test]
    fn env_keys_parse_with_their_scopes() {
        let keys =
            parse_env_keys(&format!(" shop:events,items:{SECRET};tracker:events:{SECRET}x\n"))
                .expect("parses");
        assert_eq!(keys.len(), 2);
        assert!(keys[0].allows(Scope::Items) && keys[0].allows(Scope::Events));
        assert!(keys[1].allows(Scope::Events) && !keys[1].allows(Scope::Items));
        let keys = IngestKeys::new(keys).expect("distinct names");
        assert_eq!(keys.check(Some(SECRET), Scope::Items), Ok("shop"));
        let tracker = format!("{SECRET}x");
        assert_eq!(
            keys.check(Some(tracker.as_str()), Scope::Items),
            Err(Denied::WrongScope { name: "tracker".into() })
        );
        assert_eq!(
            keys.check(Some("nope-nope-nope-nope"), Scope::Events),
            Err(Denied::Unauthenticated)
        );
        assert_eq!(keys.check(None, Scope::Events), Err(Denied::Unauthenticated));
        assert_eq!(
            IngestKeys::default().check(Some(SECRET), Scope::Events),
            Err(Denied::Unauthenticated)
        );
    }

    #[test]
    fn bad_entries_are_refused_without_echoing_the_secret() {
        for bad in ["shop:events", "shop:likes:0123456789abcdef", "shop:events:short", "a b:events"]
        {
            let e = parse_env_keys(bad).expect_err(bad).to_string();
            assert!(!e.contains("0123456789abcdef"), "{e}");
        }
        let twice =
            parse_env_keys(&format!("a:events:{SECRET} a:items:{SECRET}y")).expect("parses");
        assert!(IngestKeys::new(twice).is_err());
    }

    #[test]
    fn debug_names_the_key_not_its_secret() {
        let k = IngestKey::new("shop", &[Scope::Events], SECRET).expect("key");
        let text = format!("{k:?}");
        assert!(text.contains("shop") && !text.contains(SECRET), "{text}");
    }

    #[test]
    fn file_entries_hold_the_digest() {
        let digest = hex::encode(Sha256::digest(SECRET.as_bytes()));
        let entry: IngestKeyEntry = toml::from_str(&format!(
            "name = \"shop\"\nscopes = [\"items\"]\nkey_sha256 = \"{digest}\"\n"
        ))
        .expect("parses");
        let keys = IngestKeys::new(vec![entry.resolve().expect("valid")]).expect("keys");
        assert_eq!(keys.check(Some(SECRET), Scope::Items), Ok("shop"));
    }
}
