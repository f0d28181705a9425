//! The hub's API keys as kept (`hub_api_keys`): what a key may do ([`Scope`]), the hash of its
//! secret, and how a presented key splits into its id and secret. A leaf: no other module of
//! this crate is used here; who may call what is `access`'s.

use serde::{Deserialize, Serialize};

/// What an API key may do.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    Read,
    Invoice,
    Pay,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Invoice => "invoice",
            Scope::Pay => "pay",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        [Scope::Read, Scope::Invoice, Scope::Pay, Scope::Admin]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// An API key as the hub keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// SHA-256 of the secret part.
    pub secret_sha256: [u8; 32],
    pub scopes: Vec<Scope>,
    pub label: String,
    pub created_at_ms: u64,
}

impl ApiKey {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }
}

/// A key's two parts: `dhk_<id>_<secret>`.
pub fn split_key(token: &str) -> Option<(&str, [u8; 32])> {
    let rest = token.strip_prefix("dhk_")?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let secret: [u8; 32] = hex::decode(secret).ok()?.try_into().ok()?;
    Some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_splits_into_its_id_and_secret_and_nothing_else_does() {
        let secret = "ab".repeat(32);
        let good = format!("dhk_0123456789abcdef_{secret}");
        let (id, s) = split_key(&good).unwrap_or_default();
        assert_eq!((id, s), ("0123456789abcdef", [0xab; 32]));
        for bad in [
            format!("dhk_0123456789abcde_{secret}"),
            format!("dhk_0123456789abcdeg_{secret}"),
            format!("dhk_0123456789abcdef_{}", "ab".repeat(31)),
            format!("xhk_0123456789abcdef_{secret}"),
            "dhk_".to_string(),
        ] {
            assert!(split_key(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn admin_allows_every_scope_and_others_only_their_own() {
        let key = |scopes: Vec<Scope>| ApiKey {
            secret_sha256: [0; 32],
            scopes,
            label: String::new(),
            created_at_ms: 0,
        };
        assert!(key(vec![Scope::Admin]).allows(Scope::Pay));
        assert!(key(vec![Scope::Read, Scope::Invoice]).allows(Scope::Invoice));
        assert!(!key(vec![Scope::Read]).allows(Scope::Pay));
        assert!(!key(vec![Scope::Read]).allows(Scope::Admin));
    }
}
