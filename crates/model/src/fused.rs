//! The session encoder's inference on the CPU as plain loops over its weights, one event at a
//! time, with each layer's keys and values kept ([`EncoderCache`]).
//!
//! Why: at the sizes that ship (width 64, 1–2 layers, a window of 20–50 events) a re-rank
//! spends its time in the per-operation overhead of ~130 small tensor operations, and a new
//! click recomputes every position of the window although the encoder is causal: the earlier
//! positions' keys and values cannot change. Here a click costs one position (a few matrix–
//! vector products per layer) until the window slides, when the window is encoded again, still
//! without per-operation overhead. It computes exactly what [`SessionEncoder::forward`] does
//! in inference (dropout off), checked against it by the tests (`crates/model/src/tests.rs`
//! and the golden scores of `crates/core/tests/parity.rs`); training and the GPU keep burn's
//! modules.

use burn::nn::activation::Activation;
use burn::nn::transformer::TransformerEncoderLayer;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::{Tensor, TensorData};

use crate::SessionEncoder;

/// burn's `LayerNorm` epsilon as our configs create it (`LayerNormConfig` and
/// `TransformerEncoderConfig::layer_norm_eps` defaults; the field itself is private).
const LAYER_NORM_EPSILON: f32 = 1e-5;

/// Why the encoder cannot be fused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfusable(pub String);

/// A dense layer, `y = x W + b`, `W` row-major `[d_in, d_out]` as burn stores it.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    w: Vec<f32>,
    b: Vec<f32>,
    d_out: usize,
}

impl Dense {
    pub(crate) fn of(linear: &Linear) -> Result<Self, Unfusable> {
        let w = linear.weight.val();
        let [_, d_out] = w.dims();
        let b = match &linear.bias {
            Some(b) => floats(b.val())?,
            None => vec![0.0; d_out],
        };
        Ok(Self { w: floats(w)?, b, d_out })
    }

    pub(crate) fn apply(&self, x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(&self.b);
        for (xi, row) in x.iter().zip(self.w.chunks_exact(self.d_out)) {
            for (o, w) in out.iter_mut().zip(row) {
                *o += xi * w;
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    pub(crate) fn of(norm: &LayerNorm) -> Result<Self, Unfusable> {
        let gamma = floats(norm.gamma.val())?;
        let beta = match &norm.beta {
            Some(b) => floats(b.val())?,
            None => vec![0.0; gamma.len()],
        };
        Ok(Self { gamma, beta })
    }

    pub(crate) fn apply(&self, x: &[f32], out: &mut [f32]) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + LAYER_NORM_EPSILON).sqrt();
        for (((o, v), g), b) in out.iter_mut().zip(x).zip(&self.gamma).zip(&self.beta) {
            *o = (v - mean) * inv * g + b;
        }
    }
}

#[derive(Debug, Clone)]
struct Layer {
    /// Before attention (burn's `norm_2` in a pre-norm layer).
    attn_norm: Norm,
    query: Dense,
    key: Dense,
    value: Dense,
    output: Dense,
    /// Before the feed-forward (burn's `norm_1`).
    ff_norm: Norm,
    inner: Dense,
    outer: Dense,
    n_heads: usize,
}

impl Layer {
    fn of(layer: &TransformerEncoderLayer) -> Result<Self, Unfusable> {
        if !layer.norm_first {
            return Err(Unfusable("a post-norm layer".into()));
        }
        if layer.mha.quiet_softmax {
            return Err(Unfusable("quiet softmax".into()));
        }
        match &layer.pwff.activation {
            Activation::Gelu(g) if !g.approximate => {}
            other => return Err(Unfusable(format!("activation {other:?}"))),
        }
        Ok(Self {
            attn_norm: Norm::of(&layer.norm_2)?,
            query: Dense::of(&layer.mha.query)?,
            key: Dense::of(&layer.mha.key)?,
            value: Dense::of(&layer.mha.value)?,
            output: Dense::of(&layer.mha.output)?,
            ff_norm: Norm::of(&layer.norm_1)?,
            inner: Dense::of(&layer.pwff.linear_inner)?,
            outer: Dense::of(&layer.pwff.linear_outer)?,
            n_heads: layer.mha.n_heads,
        })
    }
}

/// The keys and values of every position encoded so far, per layer, and the state after the
/// last one. Valid while the events it encoded stay the window's first ones.
#[derive(Debug, Clone, Default)]
pub struct EncoderCache {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
    last: Vec<f32>,
}

impl EncoderCache {
    /// Positions encoded.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoder's output (final layer norm applied) after the last position, `[d]`.
    pub fn state(&self) -> &[f32] {
        &self.last
    }
}

/// [`SessionEncoder`] for inference, one event at a time.
#[derive(Debug, Clone)]
pub struct FusedSessionEncoder {
    d: usize,
    positions: Vec<f32>,
    kinds: Vec<f32>,
    gaps: Vec<f32>,
    layers: Vec<Layer>,
    norm: Norm,
}

impl FusedSessionEncoder {
    /// Copy the encoder's weights (read synchronously: a CPU device). An architecture this
    /// does not implement is an error, and the caller keeps burn's path.
    pub fn new(encoder: &SessionEncoder) -> Result<Self, Unfusable> {
        let table = |e: &Embedding| floats(e.weight.val());
        let positions = table(&encoder.positions)?;
        let d = encoder.norm.gamma.val().dims()[0];
        Ok(Self {
            d,
            positions,
            kinds: table(&encoder.kinds)?,
            gaps: table(&encoder.gaps)?,
            layers: encoder.transformer.layers.iter().map(Layer::of).collect::<Result<_, _>>()?,
            norm: Norm::of(&encoder.norm)?,
        })
    }

    /// Positions the encoder has embeddings for (the window).
    pub fn max_len(&self) -> usize {
        self.positions.len() / self.d
    }

    pub fn new_cache(&self) -> EncoderCache {
        EncoderCache {
            keys: vec![Vec::new(); self.layers.len()],
            values: vec![Vec::new(); self.layers.len()],
            len: 0,
            last: vec![0.0; self.d],
        }
    }

    /// Encode the next event: its item vector, its kind's embedding row (1 + kind; 0 is
    /// padding) and its time-gap bucket, at position `cache.len()`. `None` when the window is
    /// full (the caller encodes the slid window from a new cache) or an index is out of range.
    pub fn push(
        &self,
        cache: &mut EncoderCache,
        item: &[f32],
        kind_row: usize,
        gap_bucket: usize,
    ) -> Option<()> {
        let d = self.d;
        let t = cache.len;
        let pos = self.positions.get(t * d..(t + 1) * d)?;
        let kind = self.kinds.get(kind_row * d..(kind_row + 1) * d)?;
        let gap = self.gaps.get(gap_bucket * d..(gap_bucket + 1) * d)?;
        if item.len() != d {
            return None;
        }
        // The same additions, in the same order, as `SessionEncoder::forward`.
        let mut x: Vec<f32> = (0..d).map(|j| ((item[j] + pos[j]) + kind[j]) + gap[j]).collect();
        let mut h = vec![0.0; d];
        let (mut q, mut k, mut v, mut ctx, mut out) =
            (vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d], vec![0.0; d]);
        for (l, layer) in self.layers.iter().enumerate() {
            layer.attn_norm.apply(&x, &mut h);
            layer.query.apply(&h, &mut q);
            layer.key.apply(&h, &mut k);
            layer.value.apply(&h, &mut v);
            cache.keys[l].extend_from_slice(&k);
            cache.values[l].extend_from_slice(&v);
            attend(&q, &cache.keys[l], &cache.values[l], layer.n_heads, &mut ctx);
            layer.output.apply(&ctx, &mut out);
            for (xj, oj) in x.iter_mut().zip(&out) {
                *xj += oj;
            }
            layer.ff_norm.apply(&x, &mut h);
            let mut inner = vec![0.0; layer.inner.d_out];
            layer.inner.apply(&h, &mut inner);
            for u in &mut inner {
                *u = gelu(*u);
            }
            layer.outer.apply(&inner, &mut out);
            for (xj, oj) in x.iter_mut().zip(&out) {
                *xj += oj;
            }
        }
        self.norm.apply(&x, &mut cache.last);
        cache.len += 1;
        Some(())
    }
}

/// Causal attention of the newest position: its query against every cached key, per head.
fn attend(q: &[f32], keys: &[f32], values: &[f32], n_heads: usize, ctx: &mut [f32]) {
    let d = q.len();
    let d_k = d / n_heads;
    let n = keys.len() / d;
    let scale = (d_k as f32).sqrt();
    let mut w = vec![0.0f32; n];
    for h in 0..n_heads {
        let head = h * d_k..(h + 1) * d_k;
        let qh = &q[head.clone()];
        for (p, wp) in w.iter_mut().enumerate() {
            let kh = &keys[p * d + head.start..p * d + head.end];
            *wp = qh.iter().zip(kh).map(|(a, b)| a * b).sum::<f32>() / scale;
        }
        let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for wp in &mut w {
            *wp = (*wp - max).exp();
            sum += *wp;
        }
        let c = &mut ctx[head.clone()];
        c.fill(0.0);
        for (p, wp) in w.iter().enumerate() {
            let vh = &values[p * d + head.start..p * d + head.end];
            for (cj, vj) in c.iter_mut().zip(vh) {
                *cj += wp / sum * vj;
            }
        }
    }
}

/// Exact GELU (burn's `Gelu { approximate: false }`), `x · Φ(x)`.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x / std::f32::consts::SQRT_2))
}

/// erf through the Chebyshev fit of erfc in Numerical Recipes (§6.2, fractional error below
/// 1.2e-7 everywhere), in f64: well inside f32's precision, with no dependency.
fn erf(x: f32) -> f32 {
    let z = f64::from(x).abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    (if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }) as f32
}

pub(crate) fn floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, Unfusable> {
    let data: TensorData = t.into_data();
    data.convert::<f32>().try_into_vec::<f32>().map_err(|e| Unfusable(format!("{e:?}")))
}
