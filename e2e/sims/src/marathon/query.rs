//! Query parameters read the way Marathon's JAX-RS resources (Jersey 2) read them:
//! a single-valued parameter is the **first** of its values
//! (`MultivaluedMap.getFirst`); a blank value counts as absent and takes the
//! `@DefaultValue`; a `Boolean` is `Boolean.valueOf`, so any case of `true` is true and
//! everything else (`yes`, `1`, ` true`) is false (Jersey's `PrimitiveValueOfExtractor`).
//! A multi-valued parameter (`java.util.Set[String]`, e.g. `embed`) is every value,
//! never split at commas.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// `application/x-www-form-urlencoded` pairs in order; a malformed query has none.
    pub fn parse(query: &str) -> Params {
        let pairs = format!("/?{query}")
            .parse::<axum::http::Uri>()
            .ok()
            .and_then(|u| Query::<Vec<(String, String)>>::try_from_uri(&u).ok())
            .map(|Query(v)| v)
            .unwrap_or_default();
        Params(pairs)
    }

    /// The first value of `name`, as `@QueryParam` binds a `String`.
    pub fn get(&self, name: &str) -> Option<&String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Every value of `name`, as `@QueryParam` binds a `java.util.Set[String]`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `@QueryParam(name) @DefaultValue(default) x: Boolean`.
    pub fn flag(&self, name: &str, default: bool) -> bool {
        match self.get(name) {
            Some(v) if !v.trim().is_empty() => v.eq_ignore_ascii_case("true"),
            _ => default,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_as_jax_rs_reads_them() {
        for (query, default, want) in [
            ("force=true", false, true),
            ("force=True", false, true),
            ("force=TRUE", false, true),
            ("force=tRuE", false, true),
            ("force=yes", false, false),
            ("force=1", false, false),
            ("force=%20true", false, false),
            ("force=false", true, false),
            ("force=", true, true),
            ("force=%20", false, false),
            ("force", true, true),
            ("", true, true),
            ("", false, false),
            ("force=true&force=false", false, true),
            ("force=false&force=true", false, false),
        ] {
            assert_eq!(
                Params::parse(query).flag("force", default),
                want,
                "{query:?} default {default}"
            );
        }
    }

    #[test]
    fn multi_valued_parameters_are_not_split() {
        let p = Params::parse("embed=apps.tasks&embed=apps.counts,apps.deployments&id=%2Fweb");
        assert_eq!(
            p.all("embed").collect::<Vec<_>>(),
            vec!["apps.tasks", "apps.counts,apps.deployments"]
        );
        assert_eq!(p.get("id").map(String::as_str), Some("/web"));
        assert_eq!(p.get("embed").map(String::as_str), Some("apps.tasks"));
    }
}
