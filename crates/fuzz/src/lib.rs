//! Helpers shared by the fuzz targets (`fuzz_targets/*.rs`): how one input is cut into the
//! several files or values a target needs, and the engines built once per process.
//!
//! Every target calls only public functions of the crates it fuzzes and asserts nothing but
//! "no panic, no hang, no unbounded allocation": an `Err` is the right answer to bad input.

use std::collections::BTreeMap;
use std::sync::OnceLock;

pub mod seeds;

use burn::tensor::Device;
use sessionrank_core::{ModelBundle, Reranker};

/// Cut `data` into at most `n` parts: each part but the last is a little-endian `u16` length
/// followed by that many bytes (cut short at the end of the input); the last part is the
/// rest. Length prefixes rather than a separator byte: weights files hold every byte value.
pub fn parts(mut data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    for _ in 1..n {
        if data.len() < 2 {
            break;
        }
        let len = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
        out.push(&data[2..2 + len]);
        data = &data[2 + len..];
    }
    out.push(data);
    out
}

/// The inverse of [`parts`] (the seed maker writes inputs with it).
pub fn join(items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in items.iter().enumerate() {
        if i + 1 < items.len() {
            let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&p[..usize::from(len)]);
        } else {
            out.extend_from_slice(p);
        }
    }
    out
}

/// The committed test bundle (`tests/fixtures/bundle-slice`, d 32, 10k items) and its browser
/// bundle, loaded once: the engines the browser-input target re-ranks with.
pub fn engines() -> &'static (Reranker, Reranker) {
    static ENGINES: OnceLock<(Reranker, Reranker)> = OnceLock::new();
    ENGINES.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/bundle-slice");
        let full = ModelBundle::read_dir(std::path::Path::new(dir))
            .unwrap_or_else(|e| panic!("fixture bundle {dir}: {e}"));
        let browser = full.browser().unwrap_or_else(|e| panic!("browser bundle: {e}"));
        let device = Device::flex();
        let full_engine =
            Reranker::from_bundle(&full, &device).unwrap_or_else(|e| panic!("engine: {e}"));
        let browser_engine =
            Reranker::from_bundle(&browser, &device).unwrap_or_else(|e| panic!("engine: {e}"));
        (full_engine, browser_engine)
    })
}

/// Files of a bundle keyed by name, from the parts of a fuzz input.
pub fn files(names: &[&str], parts: &[&[u8]]) -> BTreeMap<String, Vec<u8>> {
    names.iter().zip(parts).map(|(n, p)| ((*n).to_string(), p.to_vec())).collect()
}

#[cfg(test)]
mod tests {
    use super::{join, parts};

    #[test]
    fn parts_round_trip() {
        let a: &[u8] = b"manifest";
        let b: &[u8] = &[0, 1, 2, 255];
        let c: &[u8] = b"rest";
        assert_eq!(parts(&join(&[a, b, c]), 3), vec![a, b, c]);
        assert_eq!(parts(&[5], 3), vec![&[5u8][..]]);
    }
}
