//! `sessionrank publish`: a bundle trained with the CLI uploaded to a running service
//! (`POST /admin/models`, one tar archive), so it is served without re-ingesting its data.
//!
//! The bundle is verified here first (every file against the manifest's sha256), then sent
//! byte for byte as it is on disk; the server verifies it again, stores the version in its
//! database (every instance serves it) and, with `--activate`, makes it live. The admin token
//! comes from `SESSIONRANK_ADMIN_TOKEN`, never a flag (`ps` shows flags).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use sessionrank_core::ModelBundle;
use sessionrank_core::bundle::MANIFEST;
use sessionrank_server::client::Client;
use sessionrank_server::config::{ADMIN_TOKEN_ENV, admin_token_from};

use crate::plan::PublishPlan;

pub fn run(plan: PublishPlan) -> anyhow::Result<()> {
    let token = admin_token_from(std::env::var(ADMIN_TOKEN_ENV).ok())
        .with_context(|| format!("set {ADMIN_TOKEN_ENV} to the service's admin token"))?;
    let (version, archive) = archive_of(&plan.bundle)?;
    eprintln!(
        "publishing {version} ({} bytes) to http://{}{}",
        archive.len(),
        plan.authority,
        plan.prefix
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let reply = runtime.block_on(async {
        let mut client = Client::connect_to(&plan.authority).await?;
        let path = format!("{}/admin/models?activate={}", plan.prefix, plan.activate);
        let auth = format!("Bearer {token}");
        client
            .send(
                "POST",
                &path,
                &[("content-type", "application/x-tar"), ("authorization", &auth)],
                archive,
            )
            .await
    })?;
    let body = String::from_utf8_lossy(&reply.body);
    anyhow::ensure!(
        reply.status == 201,
        "the service refused the bundle ({}): {body}",
        reply.status
    );
    println!("{body}");
    Ok(())
}

/// The bundle in `dir` as a tar archive — `manifest.json` and every file it lists, the bytes
/// on disk — after checking every file against the manifest. Returns its version too.
pub fn archive_of(dir: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let manifest_bytes = read(MANIFEST)?;
    let manifest = ModelBundle::parse_manifest(&manifest_bytes)
        .with_context(|| format!("{}", dir.join(MANIFEST).display()))?;
    let mut files = BTreeMap::new();
    for name in manifest.files.keys() {
        files.insert(name.clone(), read(name)?);
    }
    let bundle = ModelBundle::from_parts(&manifest_bytes, files)
        .with_context(|| format!("verifying {}", dir.display()))?;
    let archive = tar_of(&manifest_bytes, &bundle)?;
    Ok((bundle.manifest.model_version, archive))
}

/// A bundle in memory as the upload's tar archive, with its manifest serialised as
/// [`ModelBundle::write_dir`] writes it (the load tool publishes renamed copies this way).
pub fn archive_of_bundle(bundle: &ModelBundle) -> anyhow::Result<Vec<u8>> {
    tar_of(bundle.manifest_json()?.as_bytes(), bundle)
}

/// `manifest.json` (these bytes) and the bundle's files, in one tar archive.
fn tar_of(manifest_bytes: &[u8], bundle: &ModelBundle) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let entries = std::iter::once((MANIFEST, manifest_bytes))
        .chain(bundle.files.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, bytes).with_context(|| format!("archiving {name}"))?;
    }
    tar.into_inner().context("finishing the archive")
}
