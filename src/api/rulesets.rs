//! `POST /v1/rulesets/what-if`: the verdicts another rule set would change, without changing
//! anything. The body is a rule set in TOML (`application/toml`) or JSON (`application/json`).

use axum::extract::{Request, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{AdminRole, Authorized};
use super::extract::{media_type, parse_json, read_body};
use super::wire::ChangeOut;
use super::{ApiError, AppState};
use crate::adjudication::{Adjudicator, RuleSet, RuleSetError};

/// The route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(what_if))
}

/// What another rule set would change.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhatIfOut {
    /// The version of the rule set given.
    pub rule_set: String,
    /// The version in force.
    pub current_rule_set: String,
    /// The verdicts that would change.
    pub changes: Vec<ChangeOut>,
}

fn rule_set_error(e: RuleSetError) -> ApiError {
    match e {
        RuleSetError::Invalid { field, .. } => ApiError::field(field, e.to_string()),
        RuleSetError::Toml(t) => ApiError::field("body", t.to_string()),
    }
}

/// Preview a rule set: which stored verdicts it would change. Nothing is written.
#[utoipa::path(post, path = "/v1/rulesets/what-if", tag = "rules",
    request_body(content(
        (String = "application/toml"),
        (Object = "application/json")),
        description = "A rule set; settings it does not name keep their defaults"),
    responses(
        (status = 200, description = "The verdicts that would change", body = WhatIfOut),
        (status = 400, description = "Not a valid rule set; the setting is named", body = super::ErrorBody),
        (status = 401, description = "No valid key", body = super::ErrorBody),
        (status = 403, description = "The key lacks the admin role", body = super::ErrorBody),
        (status = 413, description = "Body over 1 MB", body = super::ErrorBody),
        (status = 415, description = "Neither TOML nor JSON", body = super::ErrorBody)),
    security(("bearer" = [])))]
async fn what_if(
    _caller: Authorized<AdminRole>,
    State(state): State<AppState>,
    req: Request,
) -> Result<Json<WhatIfOut>, ApiError> {
    let (parts, body) = req.into_parts();
    let kind = media_type(&parts.headers);
    let toml = match kind.as_deref() {
        Some("application/toml" | "text/toml" | "text/x-toml") => true,
        Some("application/json") => false,
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the rule set must be TOML (application/toml) or JSON (application/json), not {}",
                other.unwrap_or("untyped")
            )))
        }
    };
    let bytes = read_body(&parts.headers, body, state.config().json_limit).await?;
    let rules = if toml {
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::field("body", "TOML must be UTF-8"))?;
        RuleSet::from_toml(text).map_err(rule_set_error)?
    } else {
        let rules: RuleSet = parse_json(&bytes)?;
        rules.validate().map_err(rule_set_error)?;
        rules
    };
    let other = Adjudicator::new(rules);
    let version = other.version().to_owned();
    let (current, changes) = state
        .blocking(move |app| Ok((app.adjudicator().version().to_owned(), app.what_if(&other)?)))
        .await?;
    Ok(Json(WhatIfOut {
        rule_set: version,
        current_rule_set: current,
        changes: changes.iter().map(ChangeOut::from).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_rule_sets_have_one_version() {
        let t =
            RuleSet::from_toml("[bands]\nconfirm_at = 97.0\n[gender]\nenabled = false\n").unwrap();
        let j: RuleSet =
            parse_json(br#"{"gender": {"enabled": false}, "bands": {"confirm_at": 97.0}}"#)
                .unwrap();
        assert_eq!(t, j);
        assert_eq!(t.version(), j.version());
    }
}
