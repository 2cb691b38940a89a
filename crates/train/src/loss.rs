//! The losses of a training step: next-item cross-entropy at every position that has a target,
//! and the distillation (KD) term against a teacher's logits over the very same table. The
//! trainer, the distillation teacher and the tests all score a batch through [`batch_logits`],
//! so student and teacher can only differ in their weights.

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;
use sessionrank_model::{ItemFeatures, SessionRankModel};

use crate::batch::TrainBatch;
use crate::features::select_rows;

/// Cross-entropy of the next item at every position of `batch`, over the whole table.
///
/// The logits are computed only at positions that have a target (`[m, n_rows]`, not
/// `[batch, len, n_rows]`): with 43k items that is the difference between 0.2 and 1 GB.
pub fn batch_loss(
    model: &SessionRankModel,
    features: ItemFeatures,
    batch: &TrainBatch,
    label_smoothing: f64,
) -> Tensor<1> {
    cross_entropy(batch_logits(model, features, batch), batch, label_smoothing)
}

/// Logits of the next item at every position of `batch` that has a target, over the step's
/// item table (the catalog, or `batch.rows` of it with sampled softmax): `[m, n_rows]`.
/// The distillation teacher calls this too, so both score exactly the same table.
pub fn batch_logits(
    model: &SessionRankModel,
    features: ItemFeatures,
    batch: &TrainBatch,
) -> Tensor<2> {
    let features = match &batch.rows {
        Some(rows) => select_rows(features, rows.clone()),
        None => features,
    };
    table_logits(model, model.item_vectors(features), batch)
}

/// [`batch_logits`] over item vectors already made for the step's rows (`[n_rows, d]`): a
/// model in inference mode (the distillation teacher) makes its catalog's vectors once and
/// selects the step's rows from them instead of re-running its item tower every step.
pub fn table_logits(model: &SessionRankModel, table: Tensor<2>, batch: &TrainBatch) -> Tensor<2> {
    let h = model.session.forward(table.clone(), &batch.input); // [b, l, d]
    let [b, l, d] = h.dims();
    let h = h.reshape([b * l, d]).select(0, batch.positions.clone()); // [m, d]
    model.logits(h, table) // [m, n]
}

/// Mean cross-entropy of `batch.targets` under `logits` (`[m, n_rows]`).
pub fn cross_entropy(logits: Tensor<2>, batch: &TrainBatch, label_smoothing: f64) -> Tensor<1> {
    let logp = log_softmax(logits, 1);
    let m = batch.n_targets;
    let nll = logp.clone().gather(1, batch.targets.clone().reshape([m, 1])).reshape([m]).neg();
    let loss = if label_smoothing > 0.0 {
        let smooth = logp.mean_dim(1).reshape([m]).neg();
        nll * (1.0 - label_smoothing) + smooth * label_smoothing
    } else {
        nll
    };
    loss.mean()
}

/// `T² · KL(softmax(teacher / T) ‖ softmax(student / T))`, averaged over the rows (the
/// positions that have a target). Both `[m, n]`; the teacher's logits are a constant.
pub fn kd_loss(
    student_logits: Tensor<2>,
    teacher_logits: Tensor<2>,
    temperature: f64,
) -> Tensor<1> {
    let [m, _] = student_logits.dims();
    let teacher_logits =
        if student_logits.is_autodiff() { teacher_logits.autodiff() } else { teacher_logits };
    let log_ps = log_softmax(student_logits / temperature, 1);
    let log_pt = log_softmax(teacher_logits / temperature, 1);
    let kl = (log_pt.clone().exp() * (log_pt - log_ps)).sum_dim(1).reshape([m]); // [m]
    kl.mean() * (temperature * temperature)
}
