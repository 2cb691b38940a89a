//! What a shop gives up for what: the business rules of `sessionrank_core::rules` on real
//! retriever-100 lists, accuracy (NDCG@10, HR@10) against variety (category coverage@10,
//! intra-list diversity@10), over diversity λ and displacement limits.
//!
//! Each case is scored once by the model (the product's call, [`ListAwareScorer`]: the list in
//! retriever order); every rule variant then re-orders the same scores with
//! [`arrange`], exactly as the engine does after a re-rank. Diversity uses the model's own item
//! vectors (what the browser receives with a candidate page) and categories come from the
//! catalog. A case whose target the retriever missed counts as a miss for NDCG and HR, as in
//! [`sessionrank_data::eval::evaluate_rerank`]; coverage and diversity average over every
//! non-empty list. [`RuleBench::measure`] does the same for any rule sets (a shop's own rules
//! file, as `sessionrank eval --rules` reads it).

use serde::{Deserialize, Serialize};
use sessionrank_core::Reranker;
use sessionrank_core::rules::{ListItem, Rules, arrange};
use sessionrank_core::weights::read_f32;
use sessionrank_data::diversity::{category_coverage_at, intra_list_diversity};
use sessionrank_data::eval::Scorer;
use sessionrank_data::metrics::{hit_at, ndcg_at};
use sessionrank_data::sample::{CandidateSampler, SamplerSpec};
use sessionrank_data::{Catalog, Dataset, TestCase};

use crate::features::catalog_features;
use crate::listwise::ListAwareScorer;
use crate::{Result, TrainError};

/// Diversity weights measured (λ of maximal marginal relevance).
pub const LAMBDAS: [f32; 5] = [0.0, 0.1, 0.2, 0.3, 0.5];
/// Displacement limits measured (`None` = no limit), with the model's order otherwise.
pub const LIMITS: [Option<usize>; 4] = [None, Some(10), Some(5), Some(3)];
/// The cut-off of every metric here.
pub const K: usize = 10;

/// Accuracy and variety of the first [`K`] items, averaged over cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ListMetrics {
    #[serde(rename = "ndcg@10")]
    pub ndcg: f64,
    #[serde(rename = "hr@10")]
    pub hr: f64,
    /// Distinct categories in the top 10 over `min(10, distinct categories in the list)`.
    #[serde(rename = "category_coverage@10")]
    pub category_coverage: f64,
    /// Mean pairwise cosine distance of the top 10's item vectors.
    #[serde(rename = "ild@10")]
    pub ild: f64,
}

/// One λ of the diversity sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MmrPoint {
    pub lambda: f32,
    #[serde(flatten)]
    pub metrics: ListMetrics,
}

/// One displacement limit (`null` = none).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MovePoint {
    pub limit: Option<usize>,
    #[serde(flatten)]
    pub metrics: ListMetrics,
}

/// Both sweeps on one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Controls {
    pub mmr: Vec<MmrPoint>,
    pub max_move: Vec<MovePoint>,
    /// Test cases measured (a fixed random subset).
    pub cases: usize,
    /// Share of cases whose target the retriever returned (the ceiling of HR).
    pub retriever_recall: f64,
}

/// Running sums of [`ListMetrics`].
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    ndcg: f64,
    hr: f64,
    coverage: f64,
    ild: f64,
    cases: usize,
    lists: usize,
}

impl Sums {
    fn mean(&self) -> ListMetrics {
        let per = |v: f64, n: usize| if n == 0 { 0.0 } else { v / n as f64 };
        ListMetrics {
            ndcg: per(self.ndcg, self.cases),
            hr: per(self.hr, self.cases),
            category_coverage: per(self.coverage, self.lists),
            ild: per(self.ild, self.lists),
        }
    }
}

/// The rule variants of both sweeps: `LAMBDAS` then `LIMITS`.
pub fn variants() -> Vec<Rules> {
    let mmr = LAMBDAS.iter().map(|&lambda| Rules { diversity: lambda, ..Rules::default() });
    let moves = LIMITS.iter().map(|&limit| Rules { max_displacement: limit, ..Rules::default() });
    mmr.chain(moves).collect()
}

/// A trained engine's scorer, item vectors and retriever-100 lists for `dataset`: what every
/// measurement here runs on. The model scores each list as the product does
/// ([`ListAwareScorer`]); diversity uses the model's own item vectors.
pub struct RuleBench<'a> {
    scorer: ListAwareScorer,
    /// `[n_items + 1, dim]`, row 0 = padding (catalog item `i` is row `i + 1`).
    vectors: Vec<f32>,
    dim: usize,
    catalog: &'a Catalog,
    sampler: CandidateSampler,
}

impl<'a> RuleBench<'a> {
    /// `engine` must hold a full bundle trained on `dataset`'s catalog.
    pub fn new(engine: &Reranker, dataset: &'a Dataset) -> Result<Self> {
        let n = dataset.catalog.len();
        if engine.encoder().n_items() != n {
            return Err(TrainError::Config(format!(
                "the bundle has {} items, dataset {} has {n}: was it trained on this dataset?",
                engine.encoder().n_items(),
                dataset.name
            )));
        }
        let config = &engine.manifest().config;
        let device = engine.device();
        Ok(Self {
            scorer: ListAwareScorer::new(engine.model().clone(), engine.encoder(), config, device),
            vectors: read_f32(
                engine.model().item_vectors(catalog_features(engine.encoder(), device)),
            )?,
            dim: config.d_model,
            catalog: &dataset.catalog,
            sampler: CandidateSampler::new(SamplerSpec::retriever_100(), &dataset.train, n),
        })
    }

    /// Both sweeps ([`LAMBDAS`], [`LIMITS`]) on `cases`.
    pub fn sweep(&self, cases: &[TestCase]) -> Result<Controls> {
        let (means, retriever_recall) = self.measure(cases, &variants())?;
        let (mmr, moves) = means.split_at(LAMBDAS.len());
        Ok(Controls {
            mmr: LAMBDAS
                .iter()
                .zip(mmr)
                .map(|(&lambda, &metrics)| MmrPoint { lambda, metrics })
                .collect(),
            max_move: LIMITS
                .iter()
                .zip(moves)
                .map(|(&limit, &metrics)| MovePoint { limit, metrics })
                .collect(),
            cases: cases.len(),
            retriever_recall,
        })
    }

    /// [`ListMetrics`] of each of `rules` on `cases` (same order), and the share of cases whose
    /// target the retriever returned. Each list is scored once; every rule set re-orders the
    /// same scores with [`arrange`], as the engine does after a re-rank. A hidden target is a
    /// miss.
    pub fn measure(&self, cases: &[TestCase], rules: &[Rules]) -> Result<(Vec<ListMetrics>, f64)> {
        let mut sums = vec![Sums::default(); rules.len()];
        let mut retrieved = 0usize;
        const CHUNK: usize = 512;
        for (ci, chunk) in cases.chunks(CHUNK).enumerate() {
            let lists = self.sampler.candidates(chunk, ci * CHUNK);
            for (case, cands) in chunk.iter().zip(&lists) {
                retrieved += usize::from(cands.target_pos.is_some());
                for sum in &mut sums {
                    sum.cases += 1;
                }
                if cands.items.is_empty() {
                    continue;
                }
                let scores = self.scorer.score_candidates(&case.prefix, &cands.items);
                let items: Vec<ListItem<'_>> = cands
                    .items
                    .iter()
                    .map(|&c| {
                        let item = self.catalog.get(c);
                        let row = c as usize + 1;
                        ListItem {
                            id: item.map_or("", |i| i.id.as_str()),
                            category: item.and_then(|i| i.category.as_deref()),
                            available: true,
                            vector: self.vectors.get(row * self.dim..(row + 1) * self.dim),
                        }
                    })
                    .collect();
                let categories: Vec<Option<&str>> = items.iter().map(|i| i.category).collect();
                for (rule, sum) in rules.iter().zip(sums.iter_mut()) {
                    let a = arrange(rule, &items, Some(&scores))?;
                    if let Some(t) = cands.target_pos
                        && let Some(rank) = a.order.iter().position(|&i| i == t)
                    {
                        sum.ndcg += ndcg_at(rank, K);
                        sum.hr += hit_at(rank, K);
                    }
                    let top = &a.order[..K.min(a.order.len())];
                    let shown: Vec<Option<&str>> = top.iter().map(|&i| categories[i]).collect();
                    sum.coverage += category_coverage_at(&shown, &categories, K);
                    let vecs: Vec<&[f32]> = top.iter().filter_map(|&i| items[i].vector).collect();
                    sum.ild += intra_list_diversity(&vecs);
                    sum.lists += 1;
                }
            }
            tracing::info!("rules: {}/{} cases", ci * CHUNK + chunk.len(), cases.len());
        }
        let recall = if cases.is_empty() { 0.0 } else { retrieved as f64 / cases.len() as f64 };
        Ok((sums.iter().map(Sums::mean).collect(), recall))
    }
}
