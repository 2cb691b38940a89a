//! How varied a shown list is: the categories its first `k` items cover, and how different
//! those items are from each other (intra-list diversity).
//!
//! Both are properties of one list, averaged over cases by the caller, next to the accuracy
//! metrics of [`crate::metrics`]: what business rules such as diversity trade against.

/// Distinct categories among the first `k` shown items, over the most those `k` slots could
/// cover given the candidates: `min(k, distinct categories among all candidates)`. 1 means the
/// top is as varied as the candidate list allows. Items without a category count for nothing;
/// a list without any category scores 0.
///
/// `shown` and `candidates` hold category keys (any `Eq + Ord` key, e.g. category indices).
///
/// ```
/// use sessionrank_data::diversity::category_coverage_at;
/// let shown = [Some(1), Some(1), Some(2), None];
/// let all = [Some(1), Some(2), Some(3), None];
/// assert!((category_coverage_at(&shown, &all, 3) - 2.0 / 3.0).abs() < 1e-12);
/// ```
pub fn category_coverage_at<C: Ord + Copy>(
    shown: &[Option<C>],
    candidates: &[Option<C>],
    k: usize,
) -> f64 {
    let distinct = |items: &[Option<C>]| {
        let mut c: Vec<C> = items.iter().flatten().copied().collect();
        c.sort_unstable();
        c.dedup();
        c.len()
    };
    let possible = k.min(distinct(candidates));
    if possible == 0 {
        return 0.0;
    }
    distinct(&shown[..k.min(shown.len())]) as f64 / possible as f64
}

/// Intra-list diversity: the mean cosine distance `1 - cos(a, b)` over the pairs of `vectors`
/// (pass the first `k` shown). 0 for fewer than two items; a zero vector is at distance 1 from
/// everything.
///
/// ```
/// use sessionrank_data::diversity::intra_list_diversity;
/// let a = [1.0f32, 0.0];
/// let b = [0.0f32, 1.0];
/// assert!((intra_list_diversity(&[&a, &b]) - 1.0).abs() < 1e-12);
/// assert!(intra_list_diversity(&[&a, &a]).abs() < 1e-12);
/// ```
pub fn intra_list_diversity(vectors: &[&[f32]]) -> f64 {
    let n = vectors.len();
    if n < 2 {
        return 0.0;
    }
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
    let norms: Vec<f64> = vectors.iter().map(|v| norm(v)).collect();
    let mut total = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            let dot: f64 =
                vectors[i].iter().zip(vectors[j]).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            let denom = norms[i] * norms[j];
            let cos = if denom > 0.0 { dot / denom } else { 0.0 };
            total += 1.0 - cos;
        }
    }
    total / (n * (n - 1) / 2) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_distinct_categories_against_what_the_list_allows() {
        let all = [Some(0), Some(0), Some(1), Some(2), Some(3)];
        assert_eq!(category_coverage_at(&all[..2], &all, 2), 0.5);
        assert_eq!(category_coverage_at(&all[1..3], &all, 2), 1.0);
        // Only two categories among the candidates: two of them in the top 3 is full coverage.
        let two = [Some(0), Some(1), Some(0), Some(1)];
        assert_eq!(category_coverage_at(&two[..3], &two, 3), 1.0);
        assert_eq!(category_coverage_at::<u32>(&[None, None], &[None, None], 2), 0.0);
        // A shown list shorter than k.
        assert_eq!(category_coverage_at(&all[..1], &all, 10), 0.25);
    }

    #[test]
    fn ild_is_the_mean_pairwise_cosine_distance() {
        let a = [1.0f32, 0.0];
        let b = [0.0f32, 2.0];
        let c = [-1.0f32, 0.0];
        // Pairs: (a,b) 1, (a,c) 2, (b,c) 1.
        assert!((intra_list_diversity(&[&a, &b, &c]) - 4.0 / 3.0).abs() < 1e-12);
        assert_eq!(intra_list_diversity(&[&a]), 0.0);
        let zero = [0.0f32, 0.0];
        assert_eq!(intra_list_diversity(&[&a, &zero]), 1.0);
    }
}
