//! The `[[routes]]` tables: routed collections, each split by tenant or month into collections of
//! at most so many faces.

use serde::Deserialize;

use super::SettingsError;
use crate::engine::routing::{Route, RouteKey, Routes, SearchScope};
use crate::model::CollectionId;

/// The `[[routes]]` of the settings file, checked.
pub(super) fn routes(file: Vec<RouteFile>) -> Result<Routes, SettingsError> {
    let invalid = |message: String| SettingsError::Invalid {
        name: "routes",
        message,
    };
    let mut routes = Vec::with_capacity(file.len());
    for r in file {
        let collection_id =
            CollectionId::parse(&r.collection_id).map_err(|e| invalid(e.to_string()))?;
        let key = match r.key.as_str() {
            "tenant" => {
                let sep = r.separator.as_deref().unwrap_or(":");
                let mut chars = sep.chars();
                match (chars.next(), chars.next()) {
                    (Some(separator), None) => RouteKey::Tenant { separator },
                    _ => {
                        return Err(invalid(format!(
                            "route {collection_id}: separator must be one character, not {sep:?}"
                        )))
                    }
                }
            }
            "month" if r.separator.is_none() => RouteKey::Month,
            "month" => {
                return Err(invalid(format!(
                    "route {collection_id}: a separator is for routes by tenant"
                )))
            }
            other => {
                return Err(invalid(format!(
                    "route {collection_id}: key {other:?} is not tenant or month"
                )))
            }
        };
        let search = match r.search.as_deref() {
            None | Some("route") => SearchScope::Route,
            Some("all") => SearchScope::All,
            Some(other) => {
                return Err(invalid(format!(
                    "route {collection_id}: search {other:?} is not route or all"
                )))
            }
        };
        routes.push(Route {
            collection_id,
            key,
            max_faces: r.max_faces,
            search,
        });
    }
    Routes::new(routes).map_err(invalid)
}

/// A `[[routes]]` entry of the settings file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteFile {
    collection_id: String,
    key: String,
    separator: Option<String>,
    max_faces: u64,
    search: Option<String>,
}
