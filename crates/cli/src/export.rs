//! `sessionrank export`: a bundle verified and copied in the layout the server publishes (a
//! CDN origin then mirrors the server's URLs), with what a client downloads, file by file.

use std::io::Write as _;

use anyhow::Context;
use burn::tensor::Device;
use sessionrank_core::{ModelBundle, Reranker};
use sessionrank_server::version::{BROWSER_DIR, write_version_dir};

use crate::plan::ExportPlan;

pub fn run(plan: ExportPlan) -> anyhow::Result<()> {
    let bundle = ModelBundle::read_dir(&plan.bundle)
        .with_context(|| format!("reading bundle {}", plan.bundle.display()))?;
    let browser = bundle
        .browser()
        .with_context(|| format!("deriving the browser bundle of {}", plan.bundle.display()))?;
    // Building the engines proves the weights decode into the current architecture.
    Reranker::from_bundle(&browser, &Device::flex())?;
    let dir = plan.out.join(&bundle.manifest.model_version);
    if plan.browser_only {
        let browser_dir = dir.join(BROWSER_DIR);
        browser.write_dir(&browser_dir)?;
        println!("{}", browser_dir.display());
    } else {
        Reranker::from_bundle(&bundle, &Device::flex())?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("replacing {}", dir.display()))?;
        }
        write_version_dir(&bundle, &dir)?;
        println!("{}", dir.display());
        print_sizes("full bundle", &bundle)?;
    }
    print_sizes("browser bundle (what a browser downloads)", &browser)?;
    Ok(())
}

/// What a client downloads, file by file: raw, and gzip -9 as a server or CDN would send it.
fn print_sizes(title: &str, bundle: &ModelBundle) -> anyhow::Result<()> {
    let manifest = bundle.manifest_json()?.into_bytes();
    let mut files: Vec<(&str, &[u8])> =
        vec![(sessionrank_core::bundle::MANIFEST, manifest.as_slice())];
    files.extend(bundle.files.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())));
    let (mut raw_total, mut gz_total) = (0, 0);
    println!("{title}:\n  {:<20} {:>12} {:>12}", "file", "bytes", "gzip -9");
    for (name, bytes) in files {
        let gz = gzip_len(bytes)?;
        println!("  {name:<20} {:>12} {gz:>12}", bytes.len());
        raw_total += bytes.len();
        gz_total += gz;
    }
    println!("  {:<20} {raw_total:>12} {gz_total:>12}", "total");
    Ok(())
}

/// Length of `bytes` compressed with gzip at level 9.
fn gzip_len(bytes: &[u8]) -> anyhow::Result<usize> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?.len())
}
