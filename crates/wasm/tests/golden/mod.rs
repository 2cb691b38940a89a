//! The golden-score rule the browser tests share with `crates/core/tests/parity.rs`: every
//! score within the golden file's tolerance, and the same top-10 up to near-ties.
//!
//! The golden scores were computed natively on one CPU; the wasm build (simd128) and WebGPU
//! sum in other orders, so scores move in their last digits and two candidates whose scores
//! are that close may swap places. Any larger difference is a real one.

/// The tolerance stated in the golden file: |got − want| ≤ `absolute` + `relative`·|want|.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub absolute: f32,
    pub relative: f32,
}

impl Tolerance {
    fn close(self, got: f32, want: f32) -> bool {
        (got - want).abs() <= self.absolute + self.relative * want.abs()
    }

    /// Two values each within the tolerance of the truth are within twice it of each other.
    fn doubled(self) -> Self {
        Self { absolute: 2.0 * self.absolute, relative: 2.0 * self.relative }
    }
}

/// One golden case, as both test files read it.
pub struct GoldenCase<'a> {
    pub name: &'a str,
    /// Candidate ids in the order of `scores`.
    pub candidates: Vec<&'a str>,
    pub scores: &'a [f32],
    pub top10: &'a [String],
}

/// Asserts that `got` (item id and score, in ranked order) matches the golden case; returns the
/// largest |score difference| (for the log).
pub fn assert_matches(case: &GoldenCase<'_>, got: &[(&str, f32)], tolerance: Tolerance) -> f32 {
    let name = case.name;
    assert_eq!(got.len(), case.candidates.len(), "{name}: one item per candidate");
    let golden_score = |id: &str| {
        case.candidates
            .iter()
            .position(|c| *c == id)
            .map(|i| case.scores[i])
            .unwrap_or_else(|| panic!("{name}: {id} is not a candidate"))
    };
    let mut worst = 0.0f32;
    for &(id, score) in got {
        let want = golden_score(id);
        assert!(
            tolerance.close(score, want),
            "{name}: {id} scores {score}, golden {want} ({tolerance:?})"
        );
        worst = worst.max((score - want).abs());
    }
    for (k, ((g, _), w)) in got.iter().zip(case.top10).enumerate() {
        let (sg, sw) = (golden_score(g), golden_score(w));
        assert!(
            g == w || tolerance.doubled().close(sg, sw),
            "{name}: top-10 position {k} is {g} (golden score {sg}), golden has {w} ({sw})"
        );
    }
    worst
}
