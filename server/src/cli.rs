//! Command-line interface: one subcommand per job, each a thin call into the library crates.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::Device;
use clap::{Args, Parser, Subcommand, ValueEnum};
use sessionrank_core::{ModelBundle, Reranker};
use sessionrank_data::default_data_dir;
use sessionrank_data::import::import_named;
use sessionrank_model::ModelConfig;
use sessionrank_train::pipeline::{
    EvalOptions, ExperimentRecord, FeatureOptions, Outputs, build_encoder, bundle_for,
    complete_config, evaluate, train_on, weight_bytes,
};
use sessionrank_train::device::{DeviceChoice, machine_description, pick};
use sessionrank_train::{DistillConfig, TrainConfig};

/// sessionrank — session-based re-ranking: train on the server, run in the browser.
///
/// Typical use:
///   sessionrank import diginetica                 # check the data: prints the counts
///   sessionrank train diginetica --out bundles/dg # train, evaluate, write a model bundle
///   sessionrank eval diginetica --bundle bundles/dg
///   sessionrank serve --listen 127.0.0.1:8080 --data-dir /var/lib/sessionrank
#[derive(Debug, Parser)]
#[command(name = "sessionrank", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a dataset into the session format and print its counts.
    Import(ImportArgs),
    /// Train a model on a dataset, evaluate it against the baselines, write a bundle.
    // Boxed: the training flags make this variant much larger than the others.
    Train(Box<TrainArgs>),
    /// Evaluate a model bundle (and the baselines) on a dataset's test split.
    Eval(EvalArgs),
    /// Verify a bundle and copy it (or its browser bundle) to a new directory (e.g. a CDN origin).
    Export(ExportArgs),
    /// Train a bundle's list scorer (rank bias, optional list context) on retriever lists
    /// and write the result as a new bundle: the PRM-style stage of the product's re-rank.
    ListStage(crate::experiments::ListStageArgs),
    /// Assemble results/distill.json and docs/distill.md from the runs of `scripts/distill`.
    DistillReport(crate::experiments::DistillReportArgs),
    /// Run the HTTP service: event and catalog ingestion, retraining, model publishing.
    Serve(sessionrank_server::ServeArgs),
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// Dataset: diginetica, diginetica-slice, amazon-beauty, retailrocket or recbole:<dir>/<name>.
    pub dataset: String,
    /// Directory holding the datasets (default: $SESSIONRANK_DATA_DIR or ../shared/data).
    #[arg(long, env = "SESSIONRANK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Also write the imported dataset as JSON here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    /// burn's pure-Rust CPU backend.
    Flex,
    /// burn's wgpu backend (first GPU adapter; lavapipe works where no GPU exists).
    Wgpu,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the model bundle.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Checkpoint directory: a killed run restarted with the same arguments resumes here.
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Write the results (metrics, baselines, training curve) as JSON here.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Write a Markdown report with plots here (e.g. docs/quality-diginetica.md).
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "flex")]
    pub device: DeviceArg,
    #[command(flatten, next_help_heading = "Model size and training")]
    pub hp: Hyper,
    /// Skip the baselines.
    #[arg(long)]
    pub no_baselines: bool,
    /// Leave the PyTorch-readable `model.safetensors` out of the bundle.
    #[arg(long)]
    pub no_safetensors: bool,
    /// Test cases for the re-ranking protocols (0 = skip them).
    #[arg(long, default_value_t = 5000)]
    pub rerank_cases: usize,
    /// Print the model's parameter count and weight bytes (as shipped in a bundle) for
    /// this config and dataset, then exit without training: how to size a browser student.
    #[arg(long)]
    pub size_only: bool,
    #[command(
        flatten,
        next_help_heading = "Distillation (a larger teacher guides a small student)"
    )]
    pub distill: DistillArgs,
}

/// Knowledge distillation: train a small student from a larger teacher as well as from the
/// real next item. Train the teacher first (`train <dataset> --d-model 256 --out teacher/`),
/// then the student with `--teacher teacher/` and a small size.
#[derive(Debug, Args, Clone, Default)]
pub struct DistillArgs {
    /// Teacher model bundle (written by `sessionrank train --out` on the same dataset; it
    /// must know every item of the catalog and have a max_len ≥ the student's). The loss
    /// becomes (1 - alpha) · cross-entropy + alpha · T² · KL(teacher ‖ student) at
    /// temperature T, over the same item table (full catalog or `--negatives` sample).
    #[arg(long, value_name = "DIR")]
    pub teacher: Option<PathBuf>,
    /// Softmax temperature T of the distillation term (default 2; > 1 exposes more of the
    /// teacher's ranking beyond its top item).
    #[arg(long, value_name = "T", requires = "teacher")]
    pub kd_temperature: Option<f64>,
    /// Weight alpha of the distillation term, 0..=1 (default 0.5; 1 = teacher only).
    #[arg(long, value_name = "A", requires = "teacher")]
    pub kd_alpha: Option<f64>,
}

impl DistillArgs {
    fn config(&self) -> Option<DistillConfig> {
        let teacher = self.teacher.clone()?;
        let mut c = DistillConfig::new(teacher);
        if let Some(t) = self.kd_temperature {
            c.temperature = t;
        }
        if let Some(a) = self.kd_alpha {
            c.alpha = a;
        }
        Some(c)
    }
}

/// Hyper-parameters; defaults depend on the dataset (see `defaults_for`).
#[derive(Debug, Args, Clone, Default)]
pub struct Hyper {
    #[arg(long)]
    pub d_model: Option<usize>,
    #[arg(long)]
    pub layers: Option<usize>,
    #[arg(long)]
    pub heads: Option<usize>,
    /// Feed-forward width of each Transformer layer (default: 4 × d_model).
    #[arg(long)]
    pub d_ff: Option<usize>,
    #[arg(long)]
    pub max_len: Option<usize>,
    #[arg(long)]
    pub dropout: Option<f64>,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Length of the learning-rate schedule in epochs (default: --epochs). Larger than
    /// --epochs, training stops while the rate is still high (small datasets learn faster so).
    #[arg(long)]
    pub schedule_epochs: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub weight_decay: Option<f32>,
    #[arg(long)]
    pub patience: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop after the epoch during which this many seconds have passed.
    #[arg(long)]
    pub time_budget: Option<u64>,
    /// Cosine logits with this scale (0 = dot products).
    #[arg(long)]
    pub logit_scale: Option<f64>,
    /// Sampled-softmax negatives per step (0 = full softmax over the catalog).
    #[arg(long)]
    pub negatives: Option<usize>,
    /// Turn the content tower off (ablation).
    #[arg(long)]
    pub no_content: bool,
    /// Share of item ids hidden per step so the content tower learns cold items.
    #[arg(long)]
    pub id_dropout: Option<f64>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Bundle directory to evaluate.
    #[arg(long)]
    pub bundle: PathBuf,
    #[arg(long)]
    pub results: Option<PathBuf>,
    #[arg(long)]
    pub no_baselines: bool,
    #[arg(long, default_value_t = 5000)]
    pub rerank_cases: usize,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Bundle directory to read (every checksum is verified).
    pub bundle: PathBuf,
    /// Directory to write: `<out>/<model_version>/` with the browser bundle in its `browser/`
    /// (the layout the server publishes and serves, so a CDN origin mirrors its URLs).
    #[arg(long)]
    pub out: PathBuf,
    /// Write only the browser bundle, to `<out>/<model_version>/browser/`: the weights without
    /// the item-id and token tables, plus the category names — what a shopper's browser
    /// downloads (item vectors come with the candidate page).
    #[arg(long)]
    pub browser: bool,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Import(a) => import(a),
        Command::Train(a) => train(*a),
        Command::Eval(a) => eval(a),
        Command::Export(a) => export(a),
        Command::ListStage(a) => crate::experiments::list_stage(a),
        Command::DistillReport(a) => crate::experiments::distill_report(a),
        Command::Serve(a) => sessionrank_server::serve::run_cli(&a),
    }
}

pub(crate) fn data_dir(d: &DataArgs) -> PathBuf {
    d.data_dir.clone().unwrap_or_else(default_data_dir)
}

fn import(a: ImportArgs) -> anyhow::Result<()> {
    let imported = import_named(&a.data.dataset, &data_dir(&a.data))
        .with_context(|| format!("importing {}", a.data.dataset))?;
    println!("{}", imported.summary);
    if let Some(out) = a.out {
        let json = serde_json::to_vec(&imported.dataset)?;
        std::fs::write(&out, json).with_context(|| format!("writing {}", out.display()))?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// Per-dataset defaults, chosen on the validation split (see docs/quality-*.md).
pub fn defaults_for(dataset: &str) -> (ModelConfig, TrainConfig, bool) {
    let base = ModelConfig::new();
    let (model, exclude_history) = match dataset {
        "amazon-beauty" | "beauty" => (
            base.with_d_model(64)
                .with_n_layers(2)
                .with_n_heads(2)
                .with_d_ff(256)
                .with_max_len(50)
                .with_dropout(0.5),
            true,
        ),
        "diginetica" => (
            base.with_d_model(96)
                .with_n_layers(1)
                .with_n_heads(2)
                .with_d_ff(384)
                .with_max_len(20)
                .with_dropout(0.25),
            false,
        ),
        _ => (
            base.with_d_model(64)
                .with_n_layers(2)
                .with_n_heads(2)
                .with_d_ff(256)
                .with_max_len(30)
                .with_dropout(0.2),
            false,
        ),
    };
    let train = TrainConfig::new(model.clone()).with_exclude_history(exclude_history);
    (model, train, exclude_history)
}

fn apply(h: &Hyper, mut m: ModelConfig, mut t: TrainConfig) -> (ModelConfig, TrainConfig) {
    if let Some(v) = h.d_model {
        m.d_model = v;
        m.d_ff = 4 * v;
    }
    if let Some(v) = h.d_ff {
        m.d_ff = v;
    }
    if let Some(v) = h.layers {
        m.n_layers = v;
    }
    if let Some(v) = h.heads {
        m.n_heads = v;
    }
    if let Some(v) = h.max_len {
        m.max_len = v;
    }
    if let Some(v) = h.dropout {
        m.dropout = v;
    }
    if h.no_content {
        m.use_content = false;
    }
    if let Some(v) = h.epochs {
        t.max_epochs = v;
    }
    if let Some(v) = h.schedule_epochs {
        t.schedule_epochs = Some(v);
    }
    if let Some(v) = h.batch_size {
        t.batch_size = v;
    }
    if let Some(v) = h.lr {
        t.lr = v;
    }
    if let Some(v) = h.weight_decay {
        t.weight_decay = v;
    }
    if let Some(v) = h.patience {
        t.patience = v;
    }
    if let Some(v) = h.seed {
        t.seed = v;
    }
    if let Some(v) = h.logit_scale {
        m.logit_scale = (v > 0.0).then_some(v);
    }
    if let Some(v) = h.negatives {
        t.negatives = v;
    }
    if let Some(v) = h.id_dropout {
        t.id_dropout = v;
    }
    t.time_budget_s = h.time_budget.or(t.time_budget_s);
    (m, t)
}

pub(crate) fn device(d: DeviceArg) -> anyhow::Result<(Device, String)> {
    let choice = match d {
        DeviceArg::Flex => DeviceChoice::Flex,
        DeviceArg::Wgpu => DeviceChoice::Wgpu,
    };
    let picked = pick(choice)?;
    Ok((picked.device, picked.description))
}

pub(crate) fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut cmd = vec!["sessionrank".to_string()];
    cmd.extend(args.into_iter().skip(1));
    cmd.join(" ")
}

pub(crate) fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!("wrote {}", path.display());
    Ok(())
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    let name = a.data.dataset.clone();
    let imported =
        import_named(&name, &data_dir(&a.data)).with_context(|| format!("importing {name}"))?;
    eprintln!("{}", imported.summary);
    let dataset = imported.dataset;
    let (m, t, exclude_history) = defaults_for(&dataset.name);
    let (m, t) = apply(&a.hp, m, t);
    let encoder = build_encoder(&dataset, &FeatureOptions::default(), m.max_len, m.max_candidates)?;
    let model_config = complete_config(m, &encoder);
    let config = TrainConfig { model: model_config.clone(), distill: a.distill.config(), ..t };
    if a.size_only {
        let model = model_config.init(&Device::flex());
        // What a browser downloads: the same model without its catalog-sized tables.
        let browser =
            sessionrank_core::browser::browser_config(&model_config).init(&Device::flex());
        println!(
            "d_model {} layers {} heads {} d_ff {} max_len {} items {}: {} parameters, {} weight bytes; browser bundle: {} parameters, {} weight bytes",
            model_config.d_model,
            model_config.n_layers,
            model_config.n_heads,
            model_config.d_ff,
            model_config.max_len,
            model_config.n_items,
            burn::module::Module::num_params(&model),
            weight_bytes(&model),
            burn::module::Module::num_params(&browser),
            weight_bytes(&browser)
        );
        return Ok(());
    }
    let (device, device_name) = device(a.device)?;
    tracing::info!(
        "training on {device_name}: {} sessions, {} items",
        dataset.train.len(),
        dataset.catalog.len()
    );
    let outcome = train_on(
        &dataset,
        &encoder,
        &config,
        &device,
        &Outputs { bundle_dir: a.out.clone(), checkpoint_dir: a.checkpoint_dir.clone() },
    )?;
    tracing::info!("trained in {:.0} s (best epoch {})", outcome.train_seconds, outcome.best_epoch);
    let eval_opts = EvalOptions {
        exclude_history,
        rerank_cases: a.rerank_cases,
        baselines: !a.no_baselines,
        seed: config.seed,
    };
    let evaluation = evaluate(&outcome.model, &encoder, &dataset, &device, &eval_opts);
    let m = &evaluation.model.full;
    println!(
        "test: P@20 {:.2}  MRR@20 {:.2}  HR@10 {:.4}  NDCG@10 {:.4}  ({} cases)",
        m.p_at_20, m.mrr_at_20, m.hr_at_10, m.ndcg_at_10, m.cases
    );
    for (name, b) in &evaluation.baselines {
        let f = &b.full;
        if f.cases > 0 {
            println!(
                "  {name:<14} P@20 {:.2}  MRR@20 {:.2}  HR@10 {:.4}  NDCG@10 {:.4}",
                f.p_at_20, f.mrr_at_20, f.hr_at_10, f.ndcg_at_10
            );
        }
    }
    let record = ExperimentRecord {
        command: command_line(),
        device: device_name,
        machine: machine_description(),
        dataset: dataset.name.clone(),
        train_seconds: outcome.train_seconds,
        targets_per_second: outcome.targets_per_second,
        best_epoch: outcome.best_epoch,
        config: serde_json::to_value(&config)?,
        weight_bytes: weight_bytes(&outcome.model),
        history: outcome.history.clone(),
        evaluation,
    };
    if let Some(out) = &a.out {
        let metrics = serde_json::json!({"test": record.evaluation.model.full});
        let bundle = bundle_for(
            &dataset,
            &model_config,
            &outcome.model,
            &encoder,
            metrics,
            !a.no_safetensors,
        )?;
        bundle.write_dir(out)?;
        println!("bundle {} written to {}", bundle.manifest.model_version, out.display());
    }
    if let Some(path) = &a.results {
        write_json(path, &sessionrank_train::results::quality_json(&record))?;
    }
    if let Some(path) = &a.report {
        sessionrank_train::report::write_report(path, &record)?;
    }
    Ok(())
}

fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let name = a.data.dataset.clone();
    let imported =
        import_named(&name, &data_dir(&a.data)).with_context(|| format!("importing {name}"))?;
    let dataset = imported.dataset;
    let bundle = ModelBundle::read_dir(&a.bundle)
        .with_context(|| format!("reading bundle {}", a.bundle.display()))?;
    let device = Device::flex();
    let reranker = Reranker::from_bundle(&bundle, &device)?;
    if reranker.encoder().n_items() != dataset.catalog.len() {
        bail!(
            "bundle has {} items, dataset {} has {}: was it trained on this dataset?",
            reranker.encoder().n_items(),
            dataset.name,
            dataset.catalog.len()
        );
    }
    let (_, _, exclude_history) = defaults_for(&dataset.name);
    let opts = EvalOptions {
        exclude_history,
        rerank_cases: a.rerank_cases,
        baselines: !a.no_baselines,
        seed: 42,
    };
    let evaluation = evaluate(reranker.model(), reranker.encoder(), &dataset, &device, &opts);
    println!("{}", serde_json::to_string_pretty(&evaluation.model.full)?);
    if let Some(path) = &a.results {
        write_json(path, &evaluation)?;
    }
    Ok(())
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    let bundle = ModelBundle::read_dir(&a.bundle)
        .with_context(|| format!("reading bundle {}", a.bundle.display()))?;
    let browser = bundle
        .browser()
        .with_context(|| format!("deriving the browser bundle of {}", a.bundle.display()))?;
    // Building the engines proves the weights decode into the current architecture.
    Reranker::from_bundle(&browser, &Device::flex())?;
    let dir = a.out.join(&bundle.manifest.model_version);
    if a.browser {
        let browser_dir = dir.join(sessionrank_server::version::BROWSER_DIR);
        browser.write_dir(&browser_dir)?;
        println!("{}", browser_dir.display());
    } else {
        Reranker::from_bundle(&bundle, &Device::flex())?;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("replacing {}", dir.display()))?;
        }
        sessionrank_server::version::write_version_dir(&bundle, &dir)?;
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
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes)?;
    Ok(gz.finish()?.len())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    fn train_args(args: &[&str]) -> Result<super::TrainArgs, clap::Error> {
        let argv = ["sessionrank", "train", "diginetica-slice"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Train(a) => Ok(*a),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn distillation_flags_need_a_teacher_and_default_to_t2_alpha_half() {
        assert!(
            train_args(&["--kd-alpha", "0.3"]).is_err(),
            "--kd-alpha without --teacher is refused"
        );
        assert_eq!(train_args(&[]).expect("parse").distill.config(), None);
        let c = train_args(&["--teacher", "bundles/t", "--kd-alpha", "0.3"])
            .expect("parse")
            .distill
            .config()
            .expect("distill");
        assert_eq!((c.teacher_dir.to_str(), c.temperature, c.alpha), (Some("bundles/t"), 2.0, 0.3));
        let h = train_args(&["--d-model", "32", "--d-ff", "48", "--size-only"]).expect("parse");
        assert!(h.size_only && h.hp.d_ff == Some(48));
    }
}
