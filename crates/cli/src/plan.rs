//! The one step from the command line as typed ([`crate::args`]) to what will run: datasets
//! imported, the dataset's preset chosen and overridden by the flags, every default
//! resolved (ripgrep's "high" arguments). The subcommand modules receive a plan and only
//! carry it out, so what a command does can be read (and tested) here without running it.

use std::path::PathBuf;

use anyhow::Context;
use sessionrank_core::Rules;
use sessionrank_data::default_data_dir;
use sessionrank_data::import::{Imported, import_named};
use sessionrank_model::ModelConfig;
use sessionrank_train::listwise::ListwiseConfig;
use sessionrank_train::pipeline::{EvalOptions, Outputs};
use sessionrank_train::{DatasetProfile, DeviceChoice, DistillConfig, Preset, TrainConfig};

use crate::args::{
    Cli, Command, DataArgs, DistillArgs, DistillReportArgs, EvalArgs, ExportArgs, ImportArgs,
    ListStageArgs, ModelArgs, PublishArgs, ServeArgs, TrainArgs,
};

/// Seed of the evaluation's re-rank subset and candidate samplers when no training run states
/// one: `TrainConfig`'s default seed, so `eval` of a default run scores the cases `train` did.
const EVAL_SEED: u64 = 42;

/// What one invocation of `sessionrank` will do.
#[derive(Debug)]
pub enum Plan {
    Import(ImportPlan),
    Train(Box<TrainPlan>),
    Eval(EvalPlan),
    Export(ExportPlan),
    ListStage(ListStagePlan),
    DistillReport(DistillReportPlan),
    Serve(sessionrank_server::ServeArgs),
    Publish(PublishPlan),
}

/// Resolve the parsed command line (imports the dataset a subcommand names).
pub fn resolve(cli: Cli) -> anyhow::Result<Plan> {
    Ok(match cli.command {
        Command::Import(a) => Plan::Import(ImportPlan::resolve(a)?),
        Command::Train(a) => {
            let imported = import(&a.data)?;
            Plan::Train(Box::new(TrainPlan::resolve(*a, imported, command_line())))
        }
        Command::Eval(a) => {
            let imported = import(&a.data)?;
            Plan::Eval(EvalPlan::resolve(a, imported)?)
        }
        Command::Export(a) => Plan::Export(ExportPlan::resolve(a)),
        Command::ListStage(a) => {
            let imported = import(&a.data)?;
            Plan::ListStage(ListStagePlan::resolve(a, imported, command_line()))
        }
        Command::DistillReport(a) => Plan::DistillReport(DistillReportPlan::resolve(a)),
        Command::Serve(a) => Plan::Serve(serve_args(a)),
        Command::Publish(a) => Plan::Publish(PublishPlan::resolve(a)?),
    })
}

/// Import the dataset `data` names, from `--data-dir` or the default data directory.
fn import(data: &DataArgs) -> anyhow::Result<Imported> {
    let dir = data.data_dir.clone().unwrap_or_else(default_data_dir);
    import_named(&data.dataset, &dir).with_context(|| format!("importing {}", data.dataset))
}

/// This process's command line as recorded in results files (`sessionrank …`).
fn command_line() -> String {
    let mut cmd = vec!["sessionrank".to_string()];
    cmd.extend(std::env::args().skip(1));
    cmd.join(" ")
}

/// `import`: the dataset, what it is like, and the settings `train` would start from.
#[derive(Debug)]
pub struct ImportPlan {
    pub imported: Imported,
    pub profile: DatasetProfile,
    pub preset: Preset,
    /// Where to write the dataset as JSON, if anywhere.
    pub out: Option<PathBuf>,
}

impl ImportPlan {
    fn resolve(a: ImportArgs) -> anyhow::Result<Self> {
        let imported = import(&a.data)?;
        let profile = DatasetProfile::of(&imported.dataset);
        Ok(Self { preset: Preset::for_profile(&profile), profile, imported, out: a.out })
    }
}

/// `train`: one training run, its evaluation and what it writes.
#[derive(Debug)]
pub struct TrainPlan {
    pub imported: Imported,
    pub profile: DatasetProfile,
    pub preset: Preset,
    /// The dataset's preset overridden by the flags. The model's catalog sizes are still 0:
    /// the feature encoder sets them (`complete_config`) once the tokenizer is trained.
    pub config: TrainConfig,
    pub device: DeviceChoice,
    pub outputs: Outputs,
    pub results: Option<PathBuf>,
    pub report: Option<PathBuf>,
    /// Also write `model.safetensors` into the bundle.
    pub safetensors: bool,
    pub eval: EvalOptions,
    /// Print the model's size and stop.
    pub size_only: bool,
    /// The command line, for the results file.
    pub command: String,
}

impl TrainPlan {
    /// The plan for `a` on an imported dataset (no I/O: testable on any dataset).
    pub fn resolve(a: TrainArgs, imported: Imported, command: String) -> Self {
        let profile = DatasetProfile::of(&imported.dataset);
        let preset = TrainConfig::preset(&profile);
        let t = &a.training;
        let config = TrainConfig {
            model: model_config(&a.model, preset.model.clone()),
            max_epochs: t.epochs.unwrap_or(preset.max_epochs),
            schedule_epochs: t.schedule_epochs,
            batch_size: t.batch_size,
            lr: t.lr,
            weight_decay: t.weight_decay,
            patience: t.patience,
            seed: t.seed,
            time_budget_s: t.time_budget,
            negatives: t.negatives.unwrap_or(preset.negatives),
            id_dropout: t.id_dropout,
            threads: t.threads,
            distill: distill_config(&a.distill),
            ..preset
        };
        let eval = EvalOptions {
            exclude_history: config.exclude_history,
            rerank_cases: a.rerank_cases,
            baselines: !a.no_baselines,
            seed: config.seed,
        };
        Self {
            imported,
            preset: Preset::for_profile(&profile),
            profile,
            config,
            device: a.device,
            outputs: Outputs { bundle_dir: a.out, checkpoint_dir: a.checkpoint_dir },
            results: a.results,
            report: a.report,
            safetensors: !a.no_safetensors,
            eval,
            size_only: a.size_only,
            command,
        }
    }
}

/// The preset's model shape with the flags given applied.
fn model_config(a: &ModelArgs, preset: ModelConfig) -> ModelConfig {
    let d_model = a.d_model.unwrap_or(preset.d_model);
    // A new width brings its usual feed-forward width unless that is given too.
    let d_ff = a.d_ff.or(a.d_model.map(|d| 4 * d)).unwrap_or(preset.d_ff);
    ModelConfig {
        d_model,
        d_ff,
        n_layers: a.layers.unwrap_or(preset.n_layers),
        n_heads: a.heads.unwrap_or(preset.n_heads),
        max_len: a.max_len.unwrap_or(preset.max_len),
        dropout: a.dropout.unwrap_or(preset.dropout),
        use_content: preset.use_content && !a.no_content,
        logit_scale: match a.logit_scale {
            Some(s) => (s > 0.0).then_some(s),
            None => preset.logit_scale,
        },
        ..preset
    }
}

/// The distillation settings, when a teacher is given.
fn distill_config(a: &DistillArgs) -> Option<DistillConfig> {
    if a.teacher.is_empty() {
        return None;
    }
    Some(
        DistillConfig::new(a.teacher.clone())
            .with_temperature(a.kd_temperature)
            .with_alpha(a.kd_alpha)
            .with_alpha_end(a.kd_alpha_end)
            .with_knn_weight(a.kd_knn_weight),
    )
}

/// `eval`: a bundle scored on a dataset's test split.
#[derive(Debug)]
pub struct EvalPlan {
    pub imported: Imported,
    /// One bundle, or several scored as an ensemble.
    pub bundles: Vec<PathBuf>,
    pub results: Option<PathBuf>,
    pub eval: EvalOptions,
    /// The shop's rules of `--rules`, read and checked.
    pub rules: Option<Rules>,
    /// `--knn-blend`: the weights of session-kNN to choose among on validation, 0 (the
    /// model alone) first; empty = no hybrid.
    pub knn_blend: Vec<f32>,
}

impl EvalPlan {
    pub fn resolve(a: EvalArgs, imported: Imported) -> anyhow::Result<Self> {
        let profile = DatasetProfile::of(&imported.dataset);
        let eval = EvalOptions {
            exclude_history: profile.exclude_history(),
            rerank_cases: a.rerank_cases,
            baselines: !a.no_baselines,
            seed: EVAL_SEED,
        };
        let rules = a.rules.as_deref().map(read_rules).transpose()?;
        if a.bundle.len() > 1 && rules.is_some() {
            anyhow::bail!("--rules: give one --bundle (the rules are measured on one model)");
        }
        if let Some(w) = a.knn_blend.iter().find(|w| !(0.0..=1.0).contains(*w)) {
            anyhow::bail!("--knn-blend: every weight must be in 0..=1, got {w}");
        }
        if !a.knn_blend.is_empty() && rules.is_some() {
            anyhow::bail!(
                "--rules: not with --knn-blend (the rules are measured on the model alone)"
            );
        }
        let mut knn_blend = Vec::new();
        if !a.knn_blend.is_empty() {
            knn_blend.push(0.0);
            for w in a.knn_blend {
                if !knn_blend.contains(&w) {
                    knn_blend.push(w);
                }
            }
        }
        Ok(Self { imported, bundles: a.bundle, results: a.results, eval, rules, knn_blend })
    }
}

/// A rules file: the engine's `Rules` as JSON, refused whole when a rule is unknown or invalid
/// (the error names the rule, e.g. `rules.diversity`).
fn read_rules(path: &std::path::Path) -> anyhow::Result<Rules> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let rules: Rules = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not valid rules", path.display()))?;
    rules.validate().with_context(|| format!("{}", path.display()))?;
    Ok(rules)
}

/// `export`: a bundle verified and copied.
#[derive(Debug)]
pub struct ExportPlan {
    pub bundle: PathBuf,
    /// The version directory is written under this.
    pub out: PathBuf,
    /// Only the browser bundle.
    pub browser_only: bool,
}

impl ExportPlan {
    fn resolve(a: ExportArgs) -> Self {
        Self { bundle: a.bundle, out: a.out, browser_only: a.browser }
    }
}

/// `publish`: a bundle uploaded to a running service.
#[derive(Debug)]
pub struct PublishPlan {
    pub bundle: PathBuf,
    /// `host:port` and the URL's path prefix.
    pub authority: String,
    pub prefix: String,
    pub activate: bool,
}

impl PublishPlan {
    fn resolve(a: PublishArgs) -> anyhow::Result<Self> {
        let (authority, prefix) = sessionrank_server::client::http_target(&a.server)?;
        Ok(Self { bundle: a.bundle, authority, prefix, activate: a.activate })
    }
}

/// `list-stage`: a bundle's list scorer trained on retriever lists.
#[derive(Debug)]
pub struct ListStagePlan {
    pub imported: Imported,
    pub bundle: PathBuf,
    pub out: PathBuf,
    pub listwise: ListwiseConfig,
    /// Test cases of the retriever-100 protocol, scored before and after.
    pub rerank_cases: usize,
    pub seed: u64,
    pub results: Option<PathBuf>,
    pub device: DeviceChoice,
    pub command: String,
}

impl ListStagePlan {
    pub fn resolve(a: ListStageArgs, imported: Imported, command: String) -> Self {
        let listwise = ListwiseConfig::new()
            .with_list_context(a.list_context)
            .with_epochs(a.epochs)
            .with_cases(a.cases);
        Self {
            imported,
            bundle: a.bundle,
            out: a.out,
            listwise,
            rerank_cases: a.rerank_cases,
            seed: EVAL_SEED,
            results: a.results,
            device: a.device,
            command,
        }
    }
}

/// `distill-report`: the runs to read and the two reports to write.
#[derive(Debug)]
pub struct DistillReportPlan {
    pub runs: PathBuf,
    /// The command that produced the runs (recorded in the report).
    pub command: String,
    pub json: PathBuf,
    pub markdown: PathBuf,
}

impl DistillReportPlan {
    fn resolve(a: DistillReportArgs) -> Self {
        Self { runs: a.runs, command: a.command, json: a.out, markdown: a.doc }
    }
}

/// The service's own input type, from the flags (the server crate has no command line).
fn serve_args(a: ServeArgs) -> sessionrank_server::ServeArgs {
    sessionrank_server::ServeArgs {
        config: a.config,
        listen: a.listen,
        data_dir: a.data_dir,
        database_url: a.database_url,
        web_dir: a.web_dir,
        body_limit: a.body_limit,
        keep_versions: a.keep_versions,
        train_device: a.train_device,
        train_time_budget: a.train_time_budget,
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};
    use sessionrank_data::import::ImportSummary;
    use sessionrank_data::{Catalog, Dataset, DatasetKind, Event, Session};

    use super::*;

    fn parse(args: &[&str]) -> Result<TrainArgs, clap::Error> {
        let argv = ["sessionrank", "train", "any"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Train(a) => Ok(*a),
            other => panic!("parsed as {other:?}"),
        }
    }

    /// A dataset of `kind` with `sessions` two-click training sessions.
    fn imported(kind: DatasetKind, sessions: usize) -> Imported {
        let mut catalog = Catalog::new();
        catalog.intern("a");
        catalog.intern("b");
        let train = (0..sessions)
            .map(|i| Session { id: i.to_string(), events: vec![Event::view(0), Event::view(1)] })
            .collect();
        let dataset = Dataset {
            name: "any".into(),
            kind,
            catalog,
            train,
            valid: Vec::new(),
            test: Vec::new(),
        };
        Imported { summary: ImportSummary::of(&dataset), dataset }
    }

    fn plan(args: &[&str], kind: DatasetKind, sessions: usize) -> TrainPlan {
        let a = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        TrainPlan::resolve(a, imported(kind, sessions), "test".into())
    }

    fn json(c: &TrainConfig) -> serde_json::Value {
        serde_json::to_value(c).unwrap_or_default()
    }

    /// No flags = the dataset's preset, exactly: a flag's default never overrides a preset.
    #[test]
    fn without_flags_the_plan_is_the_preset() {
        for (kind, sessions) in [
            (DatasetKind::Sessions, 10),
            (DatasetKind::Sessions, 150_000),
            (DatasetKind::Histories, 10),
        ] {
            let p = plan(&[], kind, sessions);
            let preset = TrainConfig::preset(&p.profile);
            assert_eq!(json(&p.config), json(&preset), "{kind:?} × {sessions}");
            assert_eq!(p.eval.exclude_history, kind == DatasetKind::Histories);
            assert_eq!((p.device, p.size_only, p.safetensors), (DeviceChoice::Flex, false, true));
        }
    }

    #[test]
    fn flags_override_the_preset() {
        let p = plan(
            &["--d-model", "32", "--epochs", "3", "--logit-scale", "16"],
            DatasetKind::Sessions,
            10,
        );
        let m = &p.config.model;
        assert_eq!((m.d_model, m.d_ff, m.n_layers, m.max_len), (32, 128, 2, 30));
        assert_eq!((p.config.max_epochs, m.logit_scale), (3, Some(16.0)));
        // The large-sessions preset's cosine logits and 10 epochs give way to flags too.
        let large = plan(&[], DatasetKind::Sessions, 150_000);
        assert_eq!((large.config.max_epochs, large.config.model.logit_scale), (10, Some(16.0)));
        let p = plan(&["--logit-scale", "0", "--epochs", "4"], DatasetKind::Sessions, 150_000);
        assert_eq!((p.config.max_epochs, p.config.model.logit_scale), (4, None));
        let p =
            plan(&["--d-model", "32", "--d-ff", "48", "--no-content"], DatasetKind::Histories, 10);
        assert_eq!((p.config.model.d_ff, p.config.model.use_content), (48, false));
        assert!(p.config.exclude_history && p.eval.exclude_history);
    }

    #[test]
    fn distillation_flags_need_a_teacher_and_default_to_t2_alpha_half() {
        assert!(parse(&["--kd-alpha", "0.3"]).is_err(), "--kd-alpha without --teacher is refused");
        assert_eq!(plan(&[], DatasetKind::Sessions, 10).config.distill, None);
        let c = plan(&["--teacher", "bundles/t", "--kd-alpha", "0.3"], DatasetKind::Sessions, 10)
            .config
            .distill
            .unwrap_or_else(|| panic!("a teacher gives a distillation config"));
        assert_eq!(
            (c.teacher_dirs.clone(), c.temperature, c.alpha),
            (vec!["bundles/t".into()], 2.0, 0.3)
        );
        let c =
            plan(&["--teacher", "s1", "--teacher", "s2"], DatasetKind::Sessions, 10).config.distill;
        assert_eq!(c.map(|c| c.teacher_dirs.len()), Some(2), "--teacher twice is an ensemble");
        // Annealing: the weight at the first step, then at the schedule's end.
        let c = plan(
            &["--teacher", "t", "--kd-alpha", "0.9", "--kd-alpha-end", "0.1"],
            DatasetKind::Sessions,
            10,
        )
        .config
        .distill
        .unwrap_or_else(|| panic!("a teacher gives a distillation config"));
        assert_eq!((c.alpha, c.alpha_end), (0.9, Some(0.1)));
        assert!(parse(&["--kd-alpha-end", "0.1"]).is_err(), "--kd-alpha-end needs --teacher");
        // A hybrid teacher: the kNN weight goes into the config as given.
        let c = plan(&["--teacher", "t", "--kd-knn-weight", "0.3"], DatasetKind::Sessions, 10)
            .config
            .distill;
        assert_eq!(c.and_then(|c| c.knn_weight), Some(0.3));
        assert!(parse(&["--kd-knn-weight", "0.3"]).is_err(), "--kd-knn-weight needs --teacher");
    }

    #[test]
    fn devices_parse_by_name() {
        assert_eq!(parse(&["--device", "wgpu"]).map(|a| a.device).ok(), Some(DeviceChoice::Wgpu));
        assert_eq!(parse(&["--device", "auto"]).map(|a| a.device).ok(), Some(DeviceChoice::Auto));
        assert!(parse(&["--device", "tpu"]).is_err());
    }

    /// Every flag of every subcommand says what it does and what it defaults to.
    #[test]
    fn every_flag_has_help_and_a_stated_default() {
        let mut cli = Cli::command();
        cli.build();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let name = format!("{} --{}", sub.get_name(), arg.get_id());
                if matches!(arg.get_id().as_str(), "help" | "version") {
                    continue;
                }
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                assert!(!help.is_empty(), "{name} has no help");
                let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
                if takes_value && !arg.is_required_set() && !arg.is_positional() {
                    assert!(
                        !arg.get_default_values().is_empty() || help.contains("[default"),
                        "{name} states no default: {help}"
                    );
                }
            }
        }
    }
}
