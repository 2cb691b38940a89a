//! `POST /admin/models`: publish a bundle trained elsewhere (`sessionrank publish`), so a model
//! trained with the CLI is served without re-ingesting its data.
//!
//! The body is one tar archive (`Content-Type: application/x-tar`) of a full bundle's
//! directory: `manifest.json` and every file it lists, at the top level (`./name` is
//! accepted; a `browser/` directory, as `sessionrank export` writes, is ignored: the server
//! derives the browser bundle itself). The same upload with plain tools:
//!
//! ```text
//! tar -cf - -C bundles/dg . | curl --data-binary @- -H "Content-Type: application/x-tar" \
//!     -H "Authorization: Bearer $SESSIONRANK_ADMIN_TOKEN" "$URL/admin/models?activate=true"
//! ```
//!
//! Before anything is stored: the body is at most `max_bundle_bytes` (413 otherwise, a declared
//! length before reading a byte); the manifest parses (format version, plain names; 422 with
//! `field: "manifest.json"`); every file it lists is present, no other file is, and each
//! matches its sha256 (422 whose `field` names the file); the weights decode into this
//! server's model (422). A version that exists already is a 409. Then the version is recorded
//! with all its files in one transaction ([`crate::registry`]) and, with `?activate=true`,
//! made live in the same one. 201 with the version and its files.

use std::collections::BTreeMap;
use std::io::Read;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use burn::tensor::Device;
use serde::Deserialize;
use serde_json::json;
use sessionrank_core::bundle::MANIFEST;
use sessionrank_core::{CoreError, ModelBundle, Reranker};

use super::read_limited;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::version::BROWSER_DIR;

/// The media type of the upload.
pub const TAR: &str = "application/x-tar";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishQuery {
    /// Make the version live in the transaction that records it.
    #[serde(default)]
    activate: bool,
}

pub async fn publish(
    State(state): State<AppState>,
    query: Result<Query<PublishQuery>, axum::extract::rejection::QueryRejection>,
    req: Request,
) -> ApiResult<Response> {
    let Query(query) =
        query.map_err(|e| ApiError::bad_request(Some("activate".into()), e.body_text()))?;
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != TAR {
        return Err(ApiError::ExpectedMediaType(TAR));
    }
    let body = read_limited(req, state.config.max_bundle_bytes).await?;
    let bundle = tokio::task::spawn_blocking(move || -> ApiResult<ModelBundle> {
        let bundle = bundle_of_archive(&body)?;
        // Decoding proves the weights fit this server's model before anything is stored.
        Reranker::from_bundle(&bundle, &Device::flex()).map_err(|e| {
            ApiError::invalid(
                sessionrank_core::bundle::WEIGHTS,
                format!("the bundle does not load into this server's model: {e}"),
            )
        })?;
        Ok(bundle)
    })
    .await
    .map_err(ApiError::internal)??;
    let files: BTreeMap<String, u64> =
        bundle.files.iter().map(|(n, b)| (n.clone(), b.len() as u64)).collect();
    let version = state.models.publish(bundle, query.activate).await?;
    tracing::info!(activated = query.activate, "published model {version} (uploaded)");
    let mut response = (
        StatusCode::CREATED,
        Json(json!({
            "model_version": version,
            "live": state.models.current_version().as_deref() == Some(version.as_str()),
            "files": files,
        })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/models/{version}/{MANIFEST}")) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// The bundle in a tar archive, verified file by file; every refusal names the file at fault.
pub fn bundle_of_archive(archive: &[u8]) -> ApiResult<ModelBundle> {
    let bad = |field: &str, message: String| ApiError::invalid(field, message);
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut tar = tar::Archive::new(archive);
    let entries = tar.entries().map_err(|e| bad("body", format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad("body", format!("not a tar archive: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad("body", format!("an entry's name does not read: {e}")))?
            .to_string_lossy()
            .into_owned();
        let name = path.trim_start_matches("./").trim_end_matches('/').to_string();
        let kind = entry.header().entry_type();
        // The archive's root, and the browser bundle an exported directory carries.
        if name.is_empty() || name == "." || name == BROWSER_DIR || name.starts_with("browser/") {
            continue;
        }
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        if !kind.is_file() || !sessionrank_core::bundle::is_plain_name(&name) {
            return Err(bad(
                &name,
                format!("archive entry `{path}` is not a plain file at the top level"),
            ));
        }
        let mut bytes = Vec::with_capacity(entry.size().min(archive.len() as u64) as usize);
        entry.read_to_end(&mut bytes).map_err(|e| bad(&name, format!("reading {name}: {e}")))?;
        if files.insert(name.clone(), bytes).is_some() {
            return Err(bad(&name, format!("{name} is in the archive twice")));
        }
    }
    let manifest_bytes = files
        .remove(MANIFEST)
        .ok_or_else(|| bad(MANIFEST, format!("the archive has no {MANIFEST}")))?;
    let manifest = ModelBundle::parse_manifest(&manifest_bytes).map_err(|e| match e {
        CoreError::MissingFile(f) => bad(MANIFEST, format!("{MANIFEST} does not list {f}")),
        other => bad(MANIFEST, other.to_string()),
    })?;
    if let Some(extra) = files.keys().find(|n| !manifest.files.contains_key(*n)) {
        return Err(bad(extra, format!("{extra} is in the archive but not in {MANIFEST}")));
    }
    for (name, entry) in &manifest.files {
        let bytes = files.get(name).ok_or_else(|| {
            bad(name, format!("{name} is listed in {MANIFEST} but not in the archive"))
        })?;
        if bytes.len() as u64 != entry.bytes {
            return Err(bad(
                name,
                format!("{name} has {} bytes; {MANIFEST} says {}", bytes.len(), entry.bytes),
            ));
        }
        ModelBundle::verify_file(&manifest, name, bytes).map_err(|e| bad(name, e.to_string()))?;
    }
    ModelBundle::from_parts(&manifest_bytes, files).map_err(|e| bad(MANIFEST, e.to_string()))
}
