//! The command line as typed: clap structs, one per subcommand, each flag with its help and
//! its default. Nothing here decides anything; [`crate::plan`] resolves these into plans.
//!
//! Defaults are not written here twice: a flag whose default is a setting of the library
//! takes it from there (`TrainConfig`, `ListwiseConfig`, `DistillConfig`), and the model's
//! shape has no default on the command line at all — it comes from the dataset's preset
//! (`sessionrank_train::presets`), which `sessionrank import <dataset>` prints.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use sessionrank_model::ModelConfig;
use sessionrank_train::listwise::ListwiseConfig;
use sessionrank_train::{DeviceChoice, DistillConfig, TrainConfig};

/// Where a preset-dependent default is explained, for the help of the flags it sets.
const FROM_PRESET: &str = "[default: the dataset's preset, which `sessionrank import <DATASET>` \
                           prints]";

/// sessionrank — session-based re-ranking: train on the server, run in the browser.
///
/// Typical use:
///   sessionrank import diginetica                 # check the data: counts, profile, preset
///   sessionrank train diginetica --out bundles/dg # train, evaluate, write a model bundle
///   sessionrank eval diginetica --bundle bundles/dg
///   sessionrank export bundles/dg --out cdn/ --browser
///   sessionrank serve --listen 127.0.0.1:8080 --data-dir /var/lib/sessionrank
///   sessionrank publish bundles/dg --server http://127.0.0.1:8080 --activate
#[derive(Debug, Parser)]
#[command(name = "sessionrank", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a dataset into the session format and print its counts, profile and preset.
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
    ListStage(ListStageArgs),
    /// Assemble results/distill.json and docs/distill.md from the runs of `scripts/distill`.
    DistillReport(DistillReportArgs),
    /// Run the HTTP service: event and catalog ingestion, retraining, model publishing.
    Serve(ServeArgs),
    /// Upload a bundle trained with `sessionrank train` to a running service, which verifies
    /// every checksum and stores it as a new version (live with `--activate`). The admin token
    /// is read from SESSIONRANK_ADMIN_TOKEN.
    Publish(PublishArgs),
}

/// Which dataset, and where the datasets live.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// Dataset: diginetica, diginetica-slice, amazon-beauty, retailrocket or recbole:DIR/NAME.
    pub dataset: String,
    /// Directory holding the datasets [default: $SESSIONRANK_DATA_DIR, else the first
    /// `shared/data` above the working directory].
    #[arg(long, env = "SESSIONRANK_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Also write the imported dataset as JSON here [default: not written].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `--device`: the names of [`DeviceChoice`], each with its meaning in `--help`.
fn device_parser() -> impl TypedValueParser<Value = DeviceChoice> {
    PossibleValuesParser::new([
        PossibleValue::new("auto")
            .help("a hardware GPU through wgpu if one initialises, else flex"),
        PossibleValue::new("flex").help("burn's CPU backend"),
        PossibleValue::new("wgpu").help("wgpu's preferred adapter (lavapipe where no GPU exists)"),
    ])
    .try_map(|s| s.parse::<DeviceChoice>())
}

/// The library's own training defaults, shown by `--help` and used when a flag is absent.
fn train_defaults() -> TrainConfig {
    TrainConfig::new(ModelConfig::new())
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the model bundle [default: not written].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Checkpoint directory: a killed run restarted with the same arguments resumes here
    /// [default: no checkpoints].
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Write the results (metrics, baselines, training curve) as JSON here [default: not
    /// written].
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// Write a Markdown report with plots here, e.g. docs/quality-diginetica.md [default: not
    /// written].
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Device to train on.
    #[arg(long, value_parser = device_parser(), default_value_t = DeviceChoice::Flex)]
    pub device: DeviceChoice,
    /// Skip the baselines.
    #[arg(long)]
    pub no_baselines: bool,
    /// Leave the PyTorch-readable `model.safetensors` out of the bundle.
    #[arg(long)]
    pub no_safetensors: bool,
    /// Test cases for the re-ranking protocols (0 = skip them).
    #[arg(long, default_value_t = 5000, value_name = "N")]
    pub rerank_cases: usize,
    /// Print the model's parameter count and weight bytes (as shipped in a bundle) for
    /// this config and dataset, then exit without training: how to size a browser student.
    #[arg(long)]
    pub size_only: bool,
    #[command(flatten, next_help_heading = "Model shape")]
    pub model: ModelArgs,
    #[command(flatten, next_help_heading = "Training")]
    pub training: TrainingArgs,
    #[command(
        flatten,
        next_help_heading = "Distillation (a larger teacher guides a small student)"
    )]
    pub distill: DistillArgs,
}

/// The model's shape. The size flags have no fixed default: each comes from the dataset's
/// preset (their help is built from `FROM_PRESET`, so it is stated in one place).
#[derive(Debug, Args, Clone, Default)]
pub struct ModelArgs {
    #[arg(long, value_name = "D")]
    #[arg(help = format!("Width of every vector in the model; also sets --d-ff to 4 × this \
                          unless given {FROM_PRESET}"))]
    pub d_model: Option<usize>,
    #[arg(long, value_name = "N")]
    #[arg(help = format!("Transformer layers of the session encoder {FROM_PRESET}"))]
    pub layers: Option<usize>,
    #[arg(long, value_name = "N")]
    #[arg(help = format!("Attention heads (must divide --d-model) {FROM_PRESET}"))]
    pub heads: Option<usize>,
    #[arg(long, value_name = "N")]
    #[arg(help = format!("Feed-forward width of each Transformer layer (4 × --d-model when \
                          that is given) {FROM_PRESET}"))]
    pub d_ff: Option<usize>,
    #[arg(long, value_name = "N")]
    #[arg(help = format!("Longest session context read (older events are dropped) \
                          {FROM_PRESET}"))]
    pub max_len: Option<usize>,
    #[arg(long, value_name = "P")]
    #[arg(help = format!("Dropout probability {FROM_PRESET}"))]
    pub dropout: Option<f64>,
    #[arg(long, value_name = "S")]
    #[arg(help = format!("Cosine logits with this scale (0 = dot products) {FROM_PRESET}"))]
    pub logit_scale: Option<f64>,
    /// Turn the content tower off (ablation): item vectors from ids only.
    #[arg(long)]
    pub no_content: bool,
}

/// How the model is trained. Defaults are `TrainConfig`'s own, except where a flag's help
/// says the dataset's preset sets it.
#[derive(Debug, Args, Clone)]
pub struct TrainingArgs {
    #[arg(long, value_name = "N")]
    #[arg(help = format!("Most epochs to train {FROM_PRESET}"))]
    pub epochs: Option<usize>,
    /// Length of the learning-rate schedule in epochs [default: --epochs]. Larger than
    /// --epochs, training stops while the rate is still high (small datasets learn faster so).
    #[arg(long, value_name = "N")]
    pub schedule_epochs: Option<usize>,
    /// Sessions per step.
    #[arg(long, default_value_t = train_defaults().batch_size, value_name = "N")]
    pub batch_size: usize,
    /// Peak learning rate (after warm-up).
    #[arg(long, default_value_t = train_defaults().lr, value_name = "LR")]
    pub lr: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = train_defaults().weight_decay, value_name = "W")]
    pub weight_decay: f32,
    /// Stop after this many epochs without a better validation score.
    #[arg(long, default_value_t = train_defaults().patience, value_name = "N")]
    pub patience: usize,
    /// Seed of every random choice (same command → same numbers).
    #[arg(long, default_value_t = train_defaults().seed)]
    pub seed: u64,
    /// Stop after the epoch during which this many seconds have passed [default: no limit].
    #[arg(long, value_name = "SECONDS")]
    pub time_budget: Option<u64>,
    #[arg(long, value_name = "N")]
    #[arg(help = format!("Sampled-softmax negatives per step (0 = full softmax over the \
                          catalog) {FROM_PRESET}"))]
    pub negatives: Option<usize>,
    /// Share of item ids hidden per step so the content tower learns cold items.
    #[arg(long, default_value_t = train_defaults().id_dropout, value_name = "P")]
    pub id_dropout: f64,
    /// Threads a training step runs on (its backward passes at once); 0 = one per core, at
    /// most 4; 1 = the single-pass step (no faster yet on 2 cores).
    #[arg(long, default_value_t = train_defaults().threads, value_name = "N")]
    pub threads: usize,
}

/// The distillation defaults, for `--help`.
fn distill_defaults() -> DistillConfig {
    DistillConfig::new(Vec::new())
}

/// Knowledge distillation: train a small student from a larger teacher as well as from the
/// real next item. Train the teacher first (`train <dataset> --d-model 256 --out teacher/`),
/// then the student with `--teacher teacher/` and a small size.
#[derive(Debug, Args, Clone)]
pub struct DistillArgs {
    /// Teacher model bundle (written by `sessionrank train --out` on the same dataset; it
    /// must know every item of the catalog and have a max_len ≥ the student's). The loss
    /// becomes (1 - alpha) · cross-entropy + alpha · T² · KL(teacher ‖ student) at
    /// temperature T, over the same item table (full catalog or `--negatives` sample).
    /// Given more than once, the bundles teach as one ensemble (the mean of their
    /// log-probabilities), e.g. the seeds of the quality model [default: no teacher, no
    /// distillation].
    #[arg(long, value_name = "DIR")]
    pub teacher: Vec<PathBuf>,
    /// Softmax temperature T of the distillation term (> 1 exposes more of the teacher's
    /// ranking beyond its top item).
    #[arg(long, value_name = "T", requires = "teacher",
          default_value_t = distill_defaults().temperature)]
    pub kd_temperature: f64,
    /// Weight alpha of the distillation term, 0..=1 (1 = teacher only).
    #[arg(long, value_name = "A", requires = "teacher", default_value_t = distill_defaults().alpha)]
    pub kd_alpha: f64,
    /// Anneal the distillation weight linearly from --kd-alpha at the first step to this at
    /// the end of the learning-rate schedule (--schedule-epochs), 0..=1 [default: constant
    /// --kd-alpha].
    #[arg(long, value_name = "A", requires = "teacher")]
    pub kd_alpha_end: Option<f64>,
    /// Make the teacher a hybrid with session-kNN at this weight, 0..=1: its distribution
    /// becomes (1 - W) · teacher + W · kNN, kNN fit on the training sessions with each
    /// prefix's own session left out (the weight `sessionrank eval --knn-blend` chose on
    /// validation) [default: the teacher's models only].
    #[arg(long, value_name = "W", requires = "teacher")]
    pub kd_knn_weight: Option<f64>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Bundle directory to evaluate; given more than once, the bundles are scored as one
    /// ensemble (the mean of their log-probabilities: a distillation teacher made of seeds).
    #[arg(long, value_name = "DIR", required = true)]
    pub bundle: Vec<PathBuf>,
    /// Write the evaluation (model and baselines, every protocol) as JSON here [default: not
    /// written].
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// Skip the baselines.
    #[arg(long)]
    pub no_baselines: bool,
    /// Test cases for the re-ranking protocols (0 = skip them).
    #[arg(long, default_value_t = 5000, value_name = "N")]
    pub rerank_cases: usize,
    /// A shop's business rules (JSON, as the browser package's `rerank` takes them: pins,
    /// exclude, boost, bury, categoryCap, diversity, maxDisplacement, blend) applied to the
    /// retriever-100 lists of the re-ranking cases: NDCG@10, HR@10, category coverage@10 and
    /// intra-list diversity@10 with and without them [default: no rules].
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
    /// Score a hybrid of the model(s) with session-kNN: the mixture `(1 - W) · model + W ·
    /// kNN` of their next-item distributions, W chosen among these weights (and 0, the model
    /// alone) by MRR@20 on the validation cases; the test set is scored once, at the chosen
    /// weight [default: the model alone].
    #[arg(long, value_name = "W,...", value_delimiter = ',')]
    pub knn_blend: Vec<f32>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Bundle directory to read (every checksum is verified).
    pub bundle: PathBuf,
    /// Directory to write: `<out>/<model_version>/` with the browser bundle in its `browser/`
    /// (the layout the server publishes and serves, so a CDN origin mirrors its URLs).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write only the browser bundle, to `<out>/<model_version>/browser/`: the weights without
    /// the item-id and token tables, plus the category names — what a shopper's browser
    /// downloads (item vectors come with the candidate page).
    #[arg(long)]
    pub browser: bool,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Bundle directory to upload (a full bundle: `manifest.json` and the files it lists;
    /// verified here first, and again by the server).
    pub bundle: PathBuf,
    /// The service: `http://HOST[:PORT][/PREFIX]` (plain HTTP: the admin port on a private
    /// network, or through a tunnel).
    #[arg(long, env = "SESSIONRANK_SERVER", value_name = "URL")]
    pub server: String,
    /// Make the new version live at once [default: published, not live]. A version published
    /// without it goes live with `POST /admin/models/<version>/activate`.
    #[arg(long)]
    pub activate: bool,
}

/// The list stage's defaults, for `--help`.
fn listwise_defaults() -> ListwiseConfig {
    ListwiseConfig::new()
}

#[derive(Debug, Args)]
pub struct ListStageArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Trained bundle whose list scorer to train (its towers are kept as they are).
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Where to write the bundle with the trained list scorer.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Add self-attention over the candidate list (PRM's list context); without it only the
    /// upstream-rank bias is trained.
    #[arg(long)]
    pub list_context: bool,
    /// Epochs over the lists.
    #[arg(long, default_value_t = listwise_defaults().epochs, value_name = "N")]
    pub epochs: usize,
    /// Lists drawn from held-out training sessions.
    #[arg(long, default_value_t = listwise_defaults().cases, value_name = "N")]
    pub cases: usize,
    /// Test cases of the retriever-100 protocol, before and after.
    #[arg(long, default_value_t = 5000, value_name = "N")]
    pub rerank_cases: usize,
    /// Write the stage's numbers (before/after, training report, sizes) as JSON here
    /// [default: not written].
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,
    /// Device to train on.
    #[arg(long, value_parser = device_parser(), default_value_t = DeviceChoice::Flex)]
    pub device: DeviceChoice,
}

#[derive(Debug, Args)]
pub struct DistillReportArgs {
    /// Directory of the runs (`<runs>/<dataset>/<run>/{result.json,bundle/}`).
    #[arg(long, value_name = "DIR")]
    pub runs: PathBuf,
    /// The command that produced the runs, recorded in the report.
    #[arg(long, default_value = "scripts/distill")]
    pub command: String,
    /// The JSON report (also read: a dataset without runs keeps its section).
    #[arg(long, default_value = "results/distill.json", value_name = "FILE")]
    pub out: PathBuf,
    /// The Markdown report; its size plots are written beside it.
    #[arg(long, default_value = "docs/distill.md", value_name = "FILE")]
    pub doc: PathBuf,
}

/// `sessionrank serve` flags. Each is also an environment variable; both override the
/// configuration file, which overrides the service's defaults.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file [default: none, the defaults below].
    #[arg(long, env = "SESSIONRANK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SESSIONRANK_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database and the published model bundles
    /// [default: ./sessionrank-data]. (Not `SESSIONRANK_DATA_DIR`: that names the datasets.)
    #[arg(long, env = "SESSIONRANK_SERVER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to share one database between several instances
    /// [default: sqlite://DATA_DIR/sessionrank.db].
    #[arg(long, env = "SESSIONRANK_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Static files of the demo page [default: web/dist when it exists].
    #[arg(long, env = "SESSIONRANK_WEB_DIR", value_name = "DIR")]
    pub web_dir: Option<PathBuf>,
    /// Largest request body accepted, in bytes [default: 4 MiB].
    #[arg(long, env = "SESSIONRANK_BODY_LIMIT", value_name = "BYTES")]
    pub body_limit: Option<usize>,
    /// Published model versions kept on disk (the live one always is) [default: 5].
    #[arg(long, env = "SESSIONRANK_KEEP_VERSIONS", value_name = "N")]
    pub keep_versions: Option<usize>,
    /// Device for retraining [default: auto].
    #[arg(long, env = "SESSIONRANK_TRAIN_DEVICE", value_parser = device_parser())]
    pub train_device: Option<DeviceChoice>,
    /// Seconds a retraining job may train (checked after each epoch) [default: 1800].
    #[arg(long, env = "SESSIONRANK_TRAIN_TIME_BUDGET", value_name = "SECONDS")]
    pub train_time_budget: Option<u64>,
}
