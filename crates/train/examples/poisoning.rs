//! `results/poisoning.json`: how far bots can push one item up the next model's rankings by
//! poisoning its training sessions, with and without the retraining job's hygiene
//! ([`sessionrank_data::hygiene`], on by default in the server).
//!
//! ```text
//! cargo run --release -p sessionrank-train --example poisoning -- \
//!     [--dataset diginetica] [--max-sessions 40000] [--epochs 3] [--cases 2000] \
//!     [--bot-share 0.05] [--seed 7] [--threads 2] [--out results/poisoning.json]
//! ```
//!
//! The job's view of a shop: the most recent `--max-sessions` training sessions of a real
//! dataset (the server's training window), trained with the preset the server would pick for
//! them. The promoted item is a seeded pick among the long tail (5 to 20 training clicks: what
//! a seller would pay to push). Bots are `--bot-share` of all training sessions after the
//! attack, each one of three kinds, one attack at a time:
//!
//! * `repeat-clicks` (the headline): a real shopper's visit as cover, the promoted item
//!   clicked 8 to 20 times in it;
//! * `few-clicks`: the same with the promoted item clicked 3 to 6 times (under the flood
//!   line: what the repeat cap leaves);
//! * `replayed-visit`: one scripted visit (a real visit with the promoted item at its end)
//!   replayed by every bot, a burst from one source;
//! * `lookalike`: a different real visit per bot with the promoted item clicked once — what
//!   per-session rules cannot see, reported so the limit is on record.
//!
//! Measured on the dataset's clean **test** cases (none of them touched by the attack): the
//! promoted item's mean rank in the full catalog ranking (1 = first) and how often it is in
//! the top 20, for the model trained on clean data, on attacked data, and on attacked data
//! with hygiene; and the quality of clean-data models with and without hygiene (what the
//! defence costs when there is no attack). The limits themselves were set from real
//! shoppers' sessions (see the hygiene module), not tuned on these results.

use std::path::PathBuf;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sessionrank_core::features::FeatureEncoder;
use sessionrank_data::eval::Scorer;
use sessionrank_data::hygiene::{HygieneConfig, HygieneReport, clean_sessions};
use sessionrank_data::import::import_named;
use sessionrank_data::{Dataset, Event, ItemIdx, Session, TestCase, default_data_dir};
use sessionrank_train::device::{cpu, machine_description};
use sessionrank_train::pipeline::{
    FeatureOptions, Outputs, build_encoder, complete_config, train_on,
};
use sessionrank_train::trainer::{catalog_features, evaluate_model};
use sessionrank_train::{DatasetProfile, ModelScorer, TrainConfig};

type Error = Box<dyn std::error::Error>;

struct Args {
    data_dir: PathBuf,
    dataset: String,
    max_sessions: usize,
    epochs: usize,
    cases: usize,
    bot_share: f64,
    seed: u64,
    threads: usize,
    out: PathBuf,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        data_dir: default_data_dir(),
        dataset: "diginetica".into(),
        max_sessions: 40_000,
        epochs: 3,
        cases: 2_000,
        bot_share: 0.05,
        seed: 7,
        threads: 2,
        out: PathBuf::from("results/poisoning.json"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--data-dir" => a.data_dir = value()?.into(),
            "--dataset" => a.dataset = value()?,
            "--max-sessions" => a.max_sessions = value()?.parse()?,
            "--epochs" => a.epochs = value()?.parse()?,
            "--cases" => a.cases = value()?.parse()?,
            "--bot-share" => a.bot_share = value()?.parse()?,
            "--seed" => a.seed = value()?.parse()?,
            "--threads" => a.threads = value()?.parse()?,
            "--out" => a.out = value()?.into(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if !(a.bot_share > 0.0 && a.bot_share < 0.5) {
        return Err("--bot-share must be in (0, 0.5)".into());
    }
    Ok(a)
}

/// The three attacks of the module documentation.
#[derive(Clone, Copy)]
enum Attack {
    RepeatClicks,
    FewClicks,
    ReplayedVisit,
    Lookalike,
}

impl Attack {
    const ALL: [Attack; 4] =
        [Attack::RepeatClicks, Attack::FewClicks, Attack::ReplayedVisit, Attack::Lookalike];

    fn name(self) -> &'static str {
        match self {
            Self::RepeatClicks => "repeat-clicks",
            Self::FewClicks => "few-clicks",
            Self::ReplayedVisit => "replayed-visit",
            Self::Lookalike => "lookalike",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::RepeatClicks => {
                "a real visit as cover, the promoted item clicked 8-20 times in it"
            }
            Self::FewClicks => "a real visit as cover, the promoted item clicked 3-6 times in it",
            Self::ReplayedVisit => {
                "one scripted visit (a real visit + the promoted item) replayed by every bot"
            }
            Self::Lookalike => "a different real visit per bot, the promoted item clicked once",
        }
    }

    /// `bots` bot sessions built from real `train` sessions as cover.
    fn sessions(
        self,
        train: &[Session],
        target: ItemIdx,
        bots: usize,
        rng: &mut StdRng,
    ) -> Vec<Session> {
        let cover = |rng: &mut StdRng| train[rng.random_range(0..train.len())].events.clone();
        let click = Event::view(target);
        let script = {
            let mut events = cover(rng);
            events.push(click);
            events
        };
        (0..bots)
            .map(|b| {
                let events = match self {
                    Self::RepeatClicks | Self::FewClicks => {
                        let mut events = cover(rng);
                        let clicks = match self {
                            Self::RepeatClicks => rng.random_range(8..=20),
                            _ => rng.random_range(3..=6),
                        };
                        for _ in 0..clicks {
                            let at = rng.random_range(0..=events.len());
                            events.insert(at, click);
                        }
                        events
                    }
                    Self::ReplayedVisit => script.clone(),
                    Self::Lookalike => {
                        let mut events = cover(rng);
                        let at = rng.random_range(0..=events.len());
                        events.insert(at, click);
                        events
                    }
                };
                Session { id: format!("bot-{b}"), events }
            })
            .collect()
    }
}

/// Where the promoted item ranks for clean test cases.
struct PromotedRank {
    mean_rank: f64,
    top20_share: f64,
}

fn promoted_rank(scorer: &dyn Scorer, cases: &[TestCase], target: ItemIdx) -> PromotedRank {
    let n = scorer.n_items();
    let (mut sum, mut top20) = (0.0, 0usize);
    for chunk in cases.chunks(256) {
        let prefixes: Vec<&[Event]> = chunk.iter().map(|c| c.prefix.as_slice()).collect();
        let mut out = vec![0.0f32; prefixes.len() * n];
        scorer.score_batch(&prefixes, &mut out);
        for row in out.chunks(n) {
            let t = row[target as usize];
            let rank = 1 + row.iter().filter(|&&s| s > t || s.is_nan()).count();
            sum += rank as f64;
            top20 += usize::from(rank <= 20);
        }
    }
    let count = cases.len().max(1) as f64;
    PromotedRank { mean_rank: sum / count, top20_share: top20 as f64 / count }
}

/// One model: trained on `train`, measured on the clean test cases.
struct Measured {
    rank: PromotedRank,
    quality: Value,
    seconds: f64,
}

struct Bench<'a> {
    base: &'a Dataset,
    encoder: FeatureEncoder,
    config: TrainConfig,
    cases: Vec<TestCase>,
    target: ItemIdx,
}

impl Bench<'_> {
    fn run(&self, label: &str, train: Vec<Session>) -> Result<Measured, Error> {
        let start = Instant::now();
        let device = cpu();
        let dataset = Dataset { train, ..self.base.clone() };
        eprintln!("training `{label}` on {} sessions", dataset.train.len());
        let outcome =
            train_on(&dataset, &self.encoder, &self.config, &device, &Outputs::default())?;
        let scorer = ModelScorer::new(
            outcome.model.clone(),
            catalog_features(&self.encoder, &device),
            &device,
            label,
        );
        let rank = promoted_rank(&scorer, &self.cases, self.target);
        let quality = evaluate_model(&outcome.model, &self.encoder, &self.cases, false, &device);
        let seconds = start.elapsed().as_secs_f64();
        eprintln!(
            "  `{label}`: promoted item mean rank {:.0}, in the top 20 for {:.1}%, MRR@20 {:.2} ({seconds:.0} s)",
            rank.mean_rank,
            100.0 * rank.top20_share,
            quality.mrr_at_20
        );
        Ok(Measured { rank, quality: serde_json::to_value(&quality)?, seconds })
    }
}

fn report_json(r: &HygieneReport) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

fn main() -> Result<(), Error> {
    let a = args()?;
    let mut dataset = import_named(&a.dataset, &a.data_dir)?.dataset;
    if dataset.train.len() > a.max_sessions {
        dataset.train = dataset.train.split_off(dataset.train.len() - a.max_sessions);
    }
    let mut rng = StdRng::seed_from_u64(a.seed);

    // The promoted item: a long-tail item (5-20 training clicks), seeded.
    let mut clicks = vec![0usize; dataset.catalog.len()];
    for e in dataset.train.iter().flat_map(|s| &s.events) {
        clicks[e.item as usize] += 1;
    }
    let tail: Vec<ItemIdx> = (0..clicks.len())
        .filter(|&i| (5..=20).contains(&clicks[i]))
        .map(|i| i as ItemIdx)
        .collect();
    if tail.is_empty() {
        return Err("no item with 5-20 training clicks to promote".into());
    }
    let target = tail[rng.random_range(0..tail.len())];
    // Clean test cases that do not already lead to or contain the promoted item.
    let mut cases: Vec<TestCase> = dataset
        .test
        .iter()
        .filter(|c| c.target != target && c.prefix.iter().all(|e| e.item != target))
        .cloned()
        .collect();
    if cases.len() > a.cases {
        let step = cases.len() as f64 / a.cases as f64;
        cases = (0..a.cases).map(|k| cases[(k as f64 * step) as usize].clone()).collect();
    }

    let profile = DatasetProfile::of(&dataset);
    let mut config = TrainConfig::preset(&profile)
        .with_max_epochs(a.epochs)
        .with_seed(a.seed)
        .with_threads(a.threads);
    let encoder = build_encoder(
        &dataset,
        &FeatureOptions::default(),
        config.model.max_len,
        config.model.max_candidates,
    )?;
    config.model = complete_config(config.model.clone(), &encoder);
    let bench = Bench { base: &dataset, encoder, config: config.clone(), cases, target };

    let defence = HygieneConfig::default();
    let bots = (a.bot_share / (1.0 - a.bot_share) * dataset.train.len() as f64).round() as usize;
    let clean = bench.run("clean", dataset.train.clone())?;
    let (clean_cleaned, clean_report) = clean_sessions(dataset.train.clone(), &defence);
    let clean_defended = bench.run("clean + hygiene", clean_cleaned)?;

    let mut attacks = serde_json::Map::new();
    for attack in Attack::ALL {
        let mut attack_rng = StdRng::seed_from_u64(a.seed ^ 0xb075);
        let mut train = dataset.train.clone();
        for bot in attack.sessions(&dataset.train, target, bots, &mut attack_rng) {
            let at = attack_rng.random_range(0..=train.len());
            train.insert(at, bot);
        }
        let attacked = bench.run(&format!("{} attack", attack.name()), train.clone())?;
        let (cleaned, report) = clean_sessions(train, &defence);
        let defended = bench.run(&format!("{} attack + hygiene", attack.name()), cleaned)?;
        attacks.insert(
            attack.name().into(),
            json!({
                "description": attack.description(),
                "promoted_item_mean_rank": {
                    "attacked": attacked.rank.mean_rank,
                    "attacked_defended": defended.rank.mean_rank,
                },
                "promoted_item_top20_share": {
                    "attacked": attacked.rank.top20_share,
                    "attacked_defended": defended.rank.top20_share,
                },
                "hygiene": report_json(&report),
                "quality": {"attacked": attacked.quality, "attacked_defended": defended.quality},
                "train_seconds": [attacked.seconds, defended.seconds],
            }),
        );
    }

    let headline = &attacks[Attack::RepeatClicks.name()];
    let record = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "machine": machine_description(),
        "device": "flex (CPU)",
        "dataset": dataset.name,
        "train_sessions": dataset.train.len(),
        "bot_share": a.bot_share,
        "bot_sessions": bots,
        "promoted_item": {"id": dataset.catalog.get(target).map(|i| i.id.clone()), "train_clicks": clicks[target as usize]},
        "test_cases": bench.cases.len(),
        "preset_epochs": a.epochs,
        "threads": a.threads,
        "model": {"d_model": config.model.d_model, "n_layers": config.model.n_layers, "max_len": config.model.max_len},
        "defence": defence,
        "headline_attack": Attack::RepeatClicks.name(),
        "promoted_item_mean_rank": {
            "clean": clean.rank.mean_rank,
            "attacked": headline["promoted_item_mean_rank"]["attacked"],
            "attacked_defended": headline["promoted_item_mean_rank"]["attacked_defended"],
        },
        "promoted_item_top20_share": {
            "clean": clean.rank.top20_share,
            "attacked": headline["promoted_item_top20_share"]["attacked"],
            "attacked_defended": headline["promoted_item_top20_share"]["attacked_defended"],
        },
        "clean_quality": {"without_defence": clean.quality, "with_defence": clean_defended.quality},
        "hygiene_on_clean_data": report_json(&clean_report),
        "attacks": attacks,
        "catalog_items": dataset.catalog.len(),
        "clean_train_seconds": [clean.seconds, clean_defended.seconds],
        "clean_defended_promoted_item_mean_rank": clean_defended.rank.mean_rank,
    });
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&a.out, serde_json::to_string_pretty(&record)? + "\n")?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
