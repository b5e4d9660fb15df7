//! Routes and the names of their collections. A route names a family of collections behind one
//! routed collection id: `customers` is routed by tenant into `customers.acme.0001`,
//! `customers.acme.0002`, `customers.globex.0001`, ...; by month of upload into
//! `customers.2026-03.0001`, ... The names alone say which route, key and place in the family a
//! collection has, so a family is found by listing the engine's collections.

use crate::model::{CollectionId, SubjectId, Timestamp};

/// What picks a route's family for an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteKey {
    /// The tenant: the subject id up to the first `separator` (`acme` of `acme:customer-17`). An
    /// upload without a subject, or whose subject has no separator, goes to the `default` tenant.
    Tenant {
        /// What ends the tenant in a subject id.
        separator: char,
    },
    /// The month the upload was indexed in, UTC (`2026-03`).
    Month,
}

impl RouteKey {
    /// `tenant` or `month`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Tenant { .. } => "tenant",
            Self::Month => "month",
        }
    }
}

/// Which of a route's collections a search of a face covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SearchScope {
    /// The family of the face's own key (its tenant, or its month): tenants are kept apart.
    #[default]
    Route,
    /// Every collection of the routed id, whatever the key: a face uploaded this month is
    /// compared with every month's.
    All,
}

impl SearchScope {
    /// `route` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Route => "route",
            Self::All => "all",
        }
    }
}

/// One route: the routed collection id, the key, the face limit and the search scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The id callers index into and search; the engine holds it as an empty anchor collection
    /// (created with the route's first collection when missing), and the family beside it.
    pub collection_id: CollectionId,
    /// What picks the family.
    pub key: RouteKey,
    /// A family's newest collection takes faces until it holds this many; then a new one opens.
    pub max_faces: u64,
    /// What a search of a face covers.
    pub search: SearchScope,
}

/// The longest routed collection id: room is left for `.`, a key of up to [`MAX_KEY`] characters,
/// `.` and a four-digit number within Rekognition's 255.
pub const MAX_ROUTED_ID: usize = 255 - 1 - MAX_KEY - 1 - 6;

/// The longest key (a tenant is cut to this many characters).
pub const MAX_KEY: usize = 64;

/// The key of a tenant without one.
pub const DEFAULT_TENANT: &str = "default";

/// A collection of a route's family, as its name says.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    /// The family's key.
    pub key: String,
    /// Its place in the family, from 1; the highest is the newest.
    pub number: u32,
}

impl Route {
    /// The key of an upload of `subject` indexed at `now`.
    pub fn key_for(&self, subject: Option<&SubjectId>, now: Timestamp) -> String {
        match &self.key {
            RouteKey::Tenant { separator } => {
                let tenant = subject
                    .and_then(|s| s.as_str().split_once(*separator))
                    .map(|(t, _)| t)
                    .unwrap_or_default();
                let clean: String = tenant
                    .chars()
                    .take(MAX_KEY)
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                if clean.is_empty() {
                    DEFAULT_TENANT.to_owned()
                } else {
                    clean
                }
            }
            // RFC 3339 begins with the year and the month.
            RouteKey::Month => now.to_string().chars().take(7).collect(),
        }
    }

    /// The id of the family's collection number `number`.
    pub fn member_id(&self, key: &str, number: u32) -> Option<CollectionId> {
        CollectionId::parse(&format!("{}.{key}.{number:04}", self.collection_id)).ok()
    }

    /// Which member of this route `id` names, if any.
    pub fn member(&self, id: &CollectionId) -> Option<Member> {
        let rest = id
            .as_str()
            .strip_prefix(self.collection_id.as_str())?
            .strip_prefix('.')?;
        let (key, number) = rest.rsplit_once('.')?;
        let key_ok = !key.is_empty()
            && key.len() <= MAX_KEY
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let number_ok = number.len() >= 4 && number.bytes().all(|b| b.is_ascii_digit());
        if !(key_ok && number_ok) {
            return None;
        }
        Some(Member {
            key: key.to_owned(),
            number: number.parse().ok().filter(|n| *n > 0)?,
        })
    }
}

/// The routes of the settings, each routed collection id once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes(Vec<Route>);

impl Routes {
    /// Checks the routes: each routed id once, short enough to name its family, none a member of
    /// another, and a face limit of at least 1.
    pub fn new(routes: Vec<Route>) -> Result<Self, String> {
        for (i, r) in routes.iter().enumerate() {
            if r.collection_id.as_str().len() > MAX_ROUTED_ID {
                return Err(format!(
                    "routed collection id {} is longer than {MAX_ROUTED_ID} characters, which leaves \
                     no room for its family's names",
                    r.collection_id
                ));
            }
            if r.max_faces == 0 {
                return Err(format!(
                    "route {}: max_faces must be at least 1",
                    r.collection_id
                ));
            }
            for other in &routes[..i] {
                if other.collection_id == r.collection_id {
                    return Err(format!("collection {} is routed twice", r.collection_id));
                }
            }
            for other in &routes {
                if other.member(&r.collection_id).is_some() {
                    return Err(format!(
                        "routed collection id {} is named like a collection of route {}",
                        r.collection_id, other.collection_id
                    ));
                }
            }
        }
        Ok(Self(routes))
    }

    /// No route.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The routes.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.0.iter()
    }

    /// The route of a routed collection id.
    pub fn route(&self, id: &CollectionId) -> Option<&Route> {
        self.0.iter().find(|r| &r.collection_id == id)
    }

    /// The route whose family `id` belongs to, and its place there.
    pub fn member_of(&self, id: &CollectionId) -> Option<(&Route, Member)> {
        self.0.iter().find_map(|r| r.member(id).map(|m| (r, m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(key: RouteKey) -> Route {
        Route {
            collection_id: CollectionId::parse("customers").unwrap(),
            key,
            max_faces: 10,
            search: SearchScope::Route,
        }
    }

    #[test]
    fn tenants_come_from_the_subjects_prefix() {
        let r = route(RouteKey::Tenant { separator: ':' });
        let now = Timestamp::from_millis(0);
        let subject = |s: &str| SubjectId::parse(s).unwrap();
        assert_eq!(r.key_for(Some(&subject("acme:c-17")), now), "acme");
        assert_eq!(r.key_for(Some(&subject("c-17")), now), DEFAULT_TENANT);
        assert_eq!(r.key_for(None, now), DEFAULT_TENANT);
        assert_eq!(r.key_for(Some(&subject("a.b c:x")), now), "a_b_c");
    }

    #[test]
    fn months_come_from_the_clock_in_utc() {
        let r = route(RouteKey::Month);
        // 2026-03-31T23:59:59.999Z.
        assert_eq!(
            r.key_for(None, Timestamp::from_millis(1_775_001_599_999)),
            "2026-03"
        );
        assert_eq!(
            r.key_for(None, Timestamp::from_millis(1_775_001_600_000)),
            "2026-04"
        );
    }

    #[test]
    fn member_names_say_their_key_and_place() {
        let r = route(RouteKey::Month);
        let id = r.member_id("2026-03", 2).unwrap();
        assert_eq!(id.as_str(), "customers.2026-03.0002");
        assert_eq!(
            r.member(&id),
            Some(Member {
                key: "2026-03".to_owned(),
                number: 2
            })
        );
        for other in [
            "customers",
            "customers.x",
            "customers.a.b.0001",
            "customersx.a.0001",
            "customers.a.01",
            "customers.a.0000",
        ] {
            assert_eq!(
                r.member(&CollectionId::parse(other).unwrap()),
                None,
                "{other}"
            );
        }
        assert_eq!(
            r.member(&CollectionId::parse("customers.a.12345").unwrap())
                .map(|m| m.number),
            Some(12345)
        );
    }

    #[test]
    fn routes_are_checked() {
        let r = route(RouteKey::Month);
        assert!(Routes::new(vec![r.clone(), r.clone()]).is_err());
        let zero = Route {
            max_faces: 0,
            ..r.clone()
        };
        assert!(Routes::new(vec![zero]).is_err());
        let member = Route {
            collection_id: CollectionId::parse("customers.acme.0001").unwrap(),
            ..r.clone()
        };
        assert!(Routes::new(vec![r, member]).is_err());
    }
}
