//! A shop's business rules over one re-rank: pinned slots, hidden items, boost and bury, a
//! per-category cap, diversity, a displacement limit and a blend with the shop's own order.
//!
//! [`arrange`] is a pure function of the upstream order, the model's scores, the items'
//! categories, availability and vectors, so the server's evaluation, the native engine and the
//! browser apply the same rules and get the same order.
//!
//! # Order of application
//!
//! 1. **Hide**: candidates whose id is in `exclude`, and candidates marked unavailable when
//!    `hideUnavailable` is on (the default), are removed. Everything below speaks of the list
//!    that is left: an item's *usual position* is its place in the shop's order without them.
//! 2. **Relevance** of each item, on a scale where the list spans 0..1:
//!    `blend × model + (1 - blend) × shop`, where `model` is the model's score min-max scaled
//!    over the list (its weakest item 0, its strongest 1) and `shop` is `1 - usual position /
//!    (n - 1)`. `blend = 1` (the default) is the model's order, `0` the shop's. Without a
//!    session there is no model score and relevance is the shop's order.
//! 3. **Boost and bury**: a boost of strength `w ∈ [0, 1]` adds `w × BOOST_SCALE` (0.5) to the
//!    relevance, a bury subtracts it; a full boost thus lifts an item by half the list's range
//!    and never above a pin. Ties are broken by the raw model score, then the usual position.
//! 4. **Pins** take their slots (0 = first). A pin whose slot lies past the end of the list
//!    the storefront sent is an error; one past the end of the list left after hiding goes to
//!    the end, pins keeping their order.
//! 5. **The other slots, first to last.** For each slot:
//!    * the *displacement limit* (hard): an item may land at most `maxDisplacement` places from
//!      its *baseline* position — the shop's order with the hidden items removed and the pins
//!      put in their slots — and an item about to pass its last allowed slot takes this one;
//!    * the *category cap* (best effort): among the first `top` slots at most `max` items of
//!      one category, pins counted (pins alone over the cap are an error); when no allowed item
//!      of another category is left, the best allowed item is taken anyway;
//!    * *diversity* (maximal marginal relevance) among the first `diversityDepth` slots: the
//!      item maximising `(1 - λ) × relevance - λ × max cosine similarity to the items already
//!      placed` (pins included) is taken; `λ = 0` is relevance alone. Items without a vector
//!      count as similar to nothing.
//!
//! Every step records its effect on the items it moved ([`Effects`]), which is what the
//! explanations say.
//!
//! # Cost
//!
//! O(n log n) without pins, cap, limit or diversity (the default: today's sort); otherwise
//! O(n²) for the slot-by-slot fill plus O(depth · n · d) for diversity's similarity updates
//! (20 · 100 · 32 multiply-adds for a page of 100 candidates).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::explain::{Capped, Effects, Held, HiddenReason, Shift};
use crate::ranking::{HiddenItem, RankedItem};
use crate::similarity::dot;
use crate::{CoreError, Result};

/// A boost of strength 1 adds this to the relevance (which spans 0..1 over the list).
pub const BOOST_SCALE: f32 = 0.5;
/// Slots diversity shapes when `diversityDepth` is not given.
pub const DEFAULT_DIVERSITY_DEPTH: usize = 20;
/// Slots the category cap covers when `top` is not given.
pub const DEFAULT_CAP_TOP: usize = 10;

/// The rules of one re-rank. JSON names are camelCase (`hideUnavailable`); the snake_case
/// names (`hide_unavailable`) are accepted too. Unknown fields are refused: a misspelt rule
/// must not be silently ignored. `{}` (the default) changes nothing.
///
/// ```
/// use sessionrank_core::rules::Rules;
/// let r: Rules = serde_json::from_str(
///     r#"{"pins": {"sku-7": 0}, "exclude": ["sku-3"], "diversity": 0.2, "maxDisplacement": 5}"#,
/// ).unwrap();
/// assert_eq!(r.pins["sku-7"], 0);
/// assert!(Rules::default().is_neutral());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Rules {
    /// Item id → slot (0 = first). Pins of items not in the list are ignored.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub pins: BTreeMap<String, usize>,
    /// Ids never to show.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Hide candidates marked unavailable (`available: false`). Default on.
    #[serde(alias = "hide_unavailable")]
    pub hide_unavailable: bool,
    /// Item id → boost strength in [0, 1] (see [`BOOST_SCALE`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub boost: BTreeMap<String, f32>,
    /// Item id → bury strength in [0, 1].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bury: BTreeMap<String, f32>,
    /// At most `max` items per category among the first `top`.
    #[serde(alias = "category_cap", skip_serializing_if = "Option::is_none")]
    pub category_cap: Option<CategoryCap>,
    /// λ of maximal marginal relevance, in [0, 1]: 0 = relevance alone.
    pub diversity: f32,
    /// How many slots, from the first, diversity shapes.
    #[serde(alias = "diversity_depth")]
    pub diversity_depth: usize,
    /// No item lands more than this many places from its usual position (pins excepted).
    #[serde(alias = "max_displacement", skip_serializing_if = "Option::is_none")]
    pub max_displacement: Option<usize>,
    /// α in [0, 1]: 1 = the model's order, 0 = the shop's.
    pub blend: f32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            pins: BTreeMap::new(),
            exclude: Vec::new(),
            hide_unavailable: true,
            boost: BTreeMap::new(),
            bury: BTreeMap::new(),
            category_cap: None,
            diversity: 0.0,
            diversity_depth: DEFAULT_DIVERSITY_DEPTH,
            max_displacement: None,
            blend: 1.0,
        }
    }
}

/// At most `max` items of one category among the first `top` slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryCap {
    pub max: usize,
    #[serde(default = "default_cap_top")]
    pub top: usize,
}

fn default_cap_top() -> usize {
    DEFAULT_CAP_TOP
}

impl Rules {
    /// True when the rules change nothing about an order with every candidate available.
    pub fn is_neutral(&self) -> bool {
        self.pins.is_empty()
            && self.exclude.is_empty()
            && self.boost.is_empty()
            && self.bury.is_empty()
            && self.category_cap.is_none()
            && self.max_displacement.is_none()
            && !self.diversifies()
            && self.blend == 1.0
    }

    fn diversifies(&self) -> bool {
        self.diversity > 0.0 && self.diversity_depth > 0
    }

    /// Checks what can be checked without the list: numbers in range, an item not both boosted
    /// and buried, a usable cap. Field names are those of the JSON (`rules.boost.<id>`).
    pub fn validate(&self) -> Result<()> {
        let unit = |v: f32, field: &dyn Fn() -> String| {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(CoreError::rule(field(), format!("must be a number in [0, 1], got {v}")))
            }
        };
        unit(self.blend, &|| "rules.blend".into())?;
        unit(self.diversity, &|| "rules.diversity".into())?;
        for (id, &w) in &self.boost {
            unit(w, &|| format!("rules.boost.{id}"))?;
        }
        for (id, &w) in &self.bury {
            unit(w, &|| format!("rules.bury.{id}"))?;
            if self.boost.contains_key(id) {
                return Err(CoreError::rule(
                    format!("rules.bury.{id}"),
                    "the item is also boosted; give it one or the other",
                ));
            }
        }
        if let Some(cap) = self.category_cap {
            if cap.max == 0 {
                return Err(CoreError::rule(
                    "rules.categoryCap.max",
                    "must be at least 1 (0 would leave the first slots empty)",
                ));
            }
            if cap.top == 0 {
                return Err(CoreError::rule("rules.categoryCap.top", "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// What the rules need to know about one candidate (in upstream order).
#[derive(Debug, Clone, Copy)]
pub struct ListItem<'a> {
    pub id: &'a str,
    /// The category the cap counts; `None` is never capped.
    pub category: Option<&'a str>,
    /// `false` hides the item when the rules hide unavailable items.
    pub available: bool,
    /// The item's vector for diversity; `None` is similar to nothing.
    pub vector: Option<&'a [f32]>,
}

impl<'a> ListItem<'a> {
    /// An available item with no category and no vector.
    pub fn new(id: &'a str) -> Self {
        Self { id, category: None, available: true, vector: None }
    }
}

/// The result of [`arrange`].
#[derive(Debug, Clone, PartialEq)]
pub struct Arrangement {
    /// Indices into the input list, in the order to show; hidden items are absent.
    pub order: Vec<usize>,
    /// What the rules did to each item of `order` (same positions).
    pub effects: Vec<Effects>,
    /// The hidden items (indices into the input list, in upstream order) and why.
    pub hidden: Vec<(usize, HiddenReason)>,
}

/// Order `items` (upstream order) under `rules`, given the model's `scores` (same order;
/// `None` when there is no model score, e.g. an empty session). See the module docs for the
/// order in which the rules apply. Rules that cannot be met are [`CoreError::InvalidRules`].
pub fn arrange(
    rules: &Rules,
    items: &[ListItem<'_>],
    scores: Option<&[f32]>,
) -> Result<Arrangement> {
    rules.validate()?;
    let n = items.len();
    if let Some(s) = scores {
        if s.len() != n {
            return Err(CoreError::input(
                "scores",
                format!("{} scores for {n} candidates", s.len()),
            ));
        }
        if let Some(i) = s.iter().position(|x| !x.is_finite()) {
            return Err(CoreError::input(format!("scores[{i}]"), "must be a finite number"));
        }
    }
    let dim = items.iter().find_map(|it| it.vector.map(<[f32]>::len));
    if let Some(i) = items.iter().position(|it| it.vector.is_some_and(|v| Some(v.len()) != dim)) {
        return Err(CoreError::input(
            format!("candidates[{i}].vector"),
            "vectors of one list must have the same length",
        ));
    }

    // 1. Hide.
    let excluded: HashSet<&str> = rules.exclude.iter().map(String::as_str).collect();
    let mut kept: Vec<usize> = Vec::with_capacity(n);
    let mut hidden = Vec::new();
    for (i, it) in items.iter().enumerate() {
        if excluded.contains(it.id) {
            hidden.push((i, HiddenReason::Excluded));
        } else if rules.hide_unavailable && !it.available {
            hidden.push((i, HiddenReason::Unavailable));
        } else {
            kept.push(i);
        }
    }
    let m = kept.len();

    // 2-3. Relevance, boost and bury. From here on items are numbered 0..m in usual order.
    let list = List::new(rules, items, scores, &kept);

    // 4. Pins (checked against the list the storefront sent).
    let pin_at = place_pins(rules, items, &kept, n)?;

    let mut effects: Vec<Effects> =
        (0..m).map(|k| list.rule_effects(rules, items[kept[k]].id)).collect();
    for (slot, k) in pin_at.iter().enumerate() {
        if let Some(k) = *k {
            effects[k].pinned = rules.pins.get(items[kept[k]].id).copied().or(Some(slot));
        }
    }

    // 5. The other slots.
    let local: Vec<usize> = if pin_at.iter().all(Option::is_none)
        && rules.category_cap.is_none()
        && rules.max_displacement.is_none()
        && !rules.diversifies()
    {
        let mut order: Vec<usize> = (0..m).collect();
        order.sort_by(|&a, &b| list.cmp(a, b));
        order
    } else {
        fill(rules, items, &kept, &list, &pin_at, &mut effects)?
    };
    let order = local.iter().map(|&k| kept[k]).collect();
    let effects = local.iter().map(|&k| std::mem::take(&mut effects[k])).collect();
    Ok(Arrangement { order, effects, hidden })
}

/// [`arrange`] applied to a ranking's items, given in upstream order (`ranked[i]` is
/// `list[i]`): the items to show in order, each with its [`Effects`], and the hidden ones.
/// Neutral rules with every item available give exactly the model's order (score descending,
/// ties in upstream order), as a re-rank without rules does.
pub fn apply(
    rules: &Rules,
    ranked: Vec<RankedItem>,
    list: &[ListItem<'_>],
    scores: Option<&[f32]>,
) -> Result<(Vec<RankedItem>, Vec<HiddenItem>)> {
    if ranked.len() != list.len() {
        return Err(CoreError::input("candidates", "one rule item per ranked item"));
    }
    let a = arrange(rules, list, scores)?;
    let hidden = a
        .hidden
        .iter()
        .map(|&(i, reason)| HiddenItem {
            item_id: list[i].id.to_string(),
            upstream_rank: ranked[i].upstream_rank,
            reason,
        })
        .collect();
    let mut slots: Vec<Option<RankedItem>> = ranked.into_iter().map(Some).collect();
    // `order` holds distinct indices, so every `take` finds its item.
    let shown = a
        .order
        .iter()
        .zip(a.effects)
        .filter_map(|(&i, effects)| {
            let mut item = slots[i].take()?;
            item.effects = effects;
            Some(item)
        })
        .collect();
    Ok((shown, hidden))
}

/// The kept items' relevance and tie-breakers, indexed by usual position.
struct List {
    /// Relevance after blend, boost and bury.
    rel: Vec<f32>,
    /// The raw model score (all 0 without one): the first tie-breaker.
    raw: Vec<f32>,
}

impl List {
    fn new(rules: &Rules, items: &[ListItem<'_>], scores: Option<&[f32]>, kept: &[usize]) -> Self {
        let m = kept.len();
        let shop = |k: usize| if m > 1 { 1.0 - k as f32 / (m - 1) as f32 } else { 1.0 };
        let raw: Vec<f32> = match scores {
            Some(s) => kept.iter().map(|&i| s[i]).collect(),
            None => vec![0.0; m],
        };
        let mut rel: Vec<f32> = match scores {
            None => (0..m).map(shop).collect(),
            Some(_) => {
                let lo = raw.iter().copied().fold(f32::INFINITY, f32::min);
                let hi = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let a = rules.blend;
                (0..m)
                    .map(|k| {
                        let model = if hi > lo { (raw[k] - lo) / (hi - lo) } else { 1.0 };
                        if a == 1.0 { model } else { a * model + (1.0 - a) * shop(k) }
                    })
                    .collect()
            }
        };
        for (k, &i) in kept.iter().enumerate() {
            let id = items[i].id;
            if let Some(w) = rules.boost.get(id) {
                rel[k] += w * BOOST_SCALE;
            }
            if let Some(w) = rules.bury.get(id) {
                rel[k] -= w * BOOST_SCALE;
            }
        }
        Self { rel, raw }
    }

    /// Relevance order: higher relevance, then higher raw score, then usual position.
    fn cmp(&self, a: usize, b: usize) -> Ordering {
        self.rel[b]
            .total_cmp(&self.rel[a])
            .then(self.raw[b].total_cmp(&self.raw[a]))
            .then(a.cmp(&b))
    }

    fn rule_effects(&self, rules: &Rules, id: &str) -> Effects {
        Effects {
            boosted: rules.boost.get(id).copied().filter(|&w| w > 0.0),
            buried: rules.bury.get(id).copied().filter(|&w| w > 0.0),
            ..Effects::default()
        }
    }
}

/// Slot → pinned item (usual position) over the kept list. Slots are checked against the
/// list the storefront sent (`n` items); pins past the end of the kept list go to its end.
fn place_pins(
    rules: &Rules,
    items: &[ListItem<'_>],
    kept: &[usize],
    n: usize,
) -> Result<Vec<Option<usize>>> {
    let m = kept.len();
    let mut pin_at: Vec<Option<usize>> = vec![None; m];
    if rules.pins.is_empty() {
        return Ok(pin_at);
    }
    let mut pins: Vec<(usize, usize)> = Vec::new(); // (slot, usual position)
    for (k, &i) in kept.iter().enumerate() {
        if let Some(&slot) = rules.pins.get(items[i].id) {
            if slot >= n {
                return Err(CoreError::rule(
                    format!("rules.pins.{}", items[i].id),
                    format!("slot {slot} is past the end of the list ({n} candidates)"),
                ));
            }
            pins.push((slot, k));
        }
    }
    pins.sort_unstable();
    for w in pins.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(CoreError::rule(
                format!("rules.pins.{}", items[kept[w[1].1]].id),
                format!("slot {} is also pinned to {}", w[0].0, items[kept[w[0].1]].id),
            ));
        }
    }
    let inside = pins.iter().take_while(|(slot, _)| *slot < m).count();
    for &(slot, k) in &pins[..inside] {
        pin_at[slot] = Some(k);
    }
    // Pins past the end of the shortened list: the last free slots, in pin order.
    let mut free = (0..m).rev().filter(|&s| pin_at[s].is_none()).collect::<Vec<_>>().into_iter();
    for &(_, k) in pins[inside..].iter().rev() {
        let slot = free.next().ok_or_else(|| {
            CoreError::rule("rules.pins", "more pinned items than places in the list")
        })?;
        pin_at[slot] = Some(k);
    }
    Ok(pin_at)
}

/// Slot-by-slot fill under pins, the displacement limit, the category cap and diversity.
/// Returns usual positions in display order and records each rule's effect.
fn fill(
    rules: &Rules,
    items: &[ListItem<'_>],
    kept: &[usize],
    list: &List,
    pin_at: &[Option<usize>],
    effects: &mut [Effects],
) -> Result<Vec<usize>> {
    let m = kept.len();
    // Categories as small integers; `usize::MAX` = none.
    let mut names: HashMap<&str, usize> = HashMap::new();
    let cat: Vec<usize> = kept
        .iter()
        .map(|&i| match items[i].category {
            Some(c) => {
                let next = names.len();
                *names.entry(c).or_insert(next)
            }
            None => usize::MAX,
        })
        .collect();
    let cat_name = |k: usize| items[kept[k]].category.unwrap_or_default().to_string();
    let mut cat_count = vec![0usize; names.len()];

    // Baseline: non-pinned items in usual order fill the free slots.
    let free_slots: Vec<usize> = (0..m).filter(|&s| pin_at[s].is_none()).collect();
    let is_pinned = {
        let mut p = vec![false; m];
        for k in pin_at.iter().flatten() {
            p[*k] = true;
        }
        p
    };
    // Unplaced non-pinned items, in baseline order (= usual order).
    let mut unplaced: Vec<usize> = (0..m).filter(|&k| !is_pinned[k]).collect();
    let mut base = vec![0usize; m];
    for (j, &k) in unplaced.iter().enumerate() {
        base[k] = free_slots[j];
    }

    // Pins count toward the cap from the start, so that items placed before a pin leave room
    // for it. Pins alone over the cap cannot be met.
    if let Some(cap) = rules.category_cap {
        for k in pin_at.iter().take(cap.top).flatten() {
            if cat[*k] != usize::MAX {
                cat_count[cat[*k]] += 1;
                if cat_count[cat[*k]] > cap.max {
                    return Err(CoreError::rule(
                        "rules.categoryCap",
                        format!(
                            "the pins put more items of category {} in the first {} than \
                             the cap of {}",
                            cat_name(*k),
                            cap.top,
                            cap.max
                        ),
                    ));
                }
            }
        }
    }

    let mut mmr = Diversity::new(rules, items, kept).map(|unit| Mmr::new(unit, rules.diversity));

    // The unplaced items by relevance: the most relevant is the first not yet placed (so each
    // slot finds it in O(1) rather than by a pass over the list).
    let mut by_rel = unplaced.clone();
    by_rel.sort_by(|&a, &b| list.cmp(a, b));
    let mut placed = vec![false; m];
    let mut next_rel = 0;
    let mut most_relevant = |placed: &[bool]| {
        while by_rel.get(next_rel).is_some_and(|&k| placed[k]) {
            next_rel += 1;
        }
        by_rel.get(next_rel).copied()
    };
    // Past the slots diversity and the cap shape, and without a displacement limit, every
    // slot takes the most relevant item left: no need to weigh the others.
    let shaped_until = match rules.max_displacement {
        Some(_) => usize::MAX,
        None => {
            let diversity_end = if mmr.is_some() { rules.diversity_depth } else { 0 };
            diversity_end.max(rules.category_cap.map_or(0, |c| c.top))
        }
    };

    let mut order = Vec::with_capacity(m);
    let mut t = 0; // free slots used so far
    for (p, pin) in pin_at.iter().enumerate() {
        let best = if pin.is_none() { most_relevant(&placed) } else { None };
        let chosen = match (*pin, best) {
            (Some(k), _) => k,
            (None, Some(k)) if p >= shaped_until => {
                if let Some(j) = unplaced.iter().position(|&u| u == k) {
                    unplaced.remove(j);
                }
                t += 1;
                k
            }
            (None, best) => {
                let pick = pick(
                    rules,
                    list,
                    Slot { p, t, free_slots: &free_slots, base: &base, unplaced: &unplaced, best },
                    |k| match rules.category_cap {
                        Some(cap) if p < cap.top && cat[k] != usize::MAX => {
                            cat_count[cat[k]] < cap.max
                        }
                        _ => true,
                    },
                    mmr.as_mut().filter(|_| p < rules.diversity_depth),
                );
                record(rules, &pick, &cat_name, effects);
                let k = pick.chosen;
                if let Some(j) = unplaced.iter().position(|&u| u == k) {
                    unplaced.remove(j);
                }
                t += 1;
                k
            }
        };
        order.push(chosen);
        placed[chosen] = true;
        if let Some(cap) = rules.category_cap
            && p < cap.top
            && pin.is_none()
            && cat[chosen] != usize::MAX
        {
            cat_count[cat[chosen]] += 1;
        }
        if let Some(mmr) = &mut mmr
            && p + 1 < rules.diversity_depth
        {
            mmr.placed.push(chosen);
        }
    }
    Ok(order)
}

/// Where the fill stands at one free slot.
struct Slot<'a> {
    p: usize,
    /// Free slots used before this one (`free_slots[t] == p`).
    t: usize,
    free_slots: &'a [usize],
    base: &'a [usize],
    unplaced: &'a [usize],
    /// The most relevant of `unplaced` (`None`: found here).
    best: Option<usize>,
}

/// One slot's decision and the items each constraint displaced.
struct Pick {
    chosen: usize,
    /// Best by relevance alone.
    best: usize,
    /// Best by relevance among items the displacement limit allows here.
    best_allowed: usize,
    /// Why `best` is not allowed here: `Down` = it may not rise this far; `Up` = an earlier
    /// item may not fall further and must take one of the next slots.
    limited: Option<Shift>,
    /// Best by relevance among those, within the category cap (`None`: the cap gave way).
    best_capped: Option<usize>,
}

fn pick(
    rules: &Rules,
    list: &List,
    s: Slot<'_>,
    cap_ok: impl Fn(usize) -> bool,
    mmr: Option<&mut Mmr>,
) -> Pick {
    let u = s.unplaced;
    // The displacement limit allows a prefix of the unplaced items (baseline order): those
    // whose baseline slot is within `limit` of this one, and, when an earlier item would be
    // pushed past its last allowed slot by taking a later one, only up to that item. (Taking
    // an item shifts every earlier unplaced item one free slot later; releases never bind.)
    let allowed = match rules.max_displacement {
        None => u.len(),
        Some(limit) => {
            let mut j = 0;
            while j + 1 < u.len() && s.free_slots[s.t + 1 + j] <= s.base[u[j]] + limit {
                j += 1;
            }
            let released = u.iter().take_while(|&&k| s.base[k] <= s.p + limit).count();
            (j + 1).min(released).max(1)
        }
    };
    let better_rel = |a: usize, b: usize| list.cmp(a, b) == Ordering::Less;
    let best = s.best.unwrap_or_else(|| {
        let mut best = u[0];
        for &k in &u[1..] {
            if better_rel(k, best) {
                best = k;
            }
        }
        best
    });
    let mut best_allowed = u[0];
    let mut best_capped: Option<usize> = None;
    for &k in &u[..allowed] {
        if better_rel(k, best_allowed) {
            best_allowed = k;
        }
        if cap_ok(k) && best_capped.is_none_or(|b| better_rel(k, b)) {
            best_capped = Some(k);
        }
    }
    // Without diversity the objective is the relevance: the best allowed item within the cap.
    let chosen = match mmr {
        Some(mmr) => mmr
            .choose(list, &u[..allowed], &cap_ok)
            .or_else(|| mmr.choose(list, &u[..allowed], &|_| true))
            .unwrap_or(best_allowed),
        None => best_capped.unwrap_or(best_allowed),
    };
    let limited = match rules.max_displacement {
        Some(limit) if best != best_allowed => {
            Some(if s.base[best] > s.p + limit { Shift::Down } else { Shift::Up })
        }
        _ => None,
    };
    Pick { chosen, best, best_allowed, limited, best_capped }
}

/// Record why `pick.chosen` took the slot instead of the most relevant item.
fn record(
    rules: &Rules,
    pick: &Pick,
    cat_name: &impl Fn(usize) -> String,
    effects: &mut [Effects],
) {
    let mark_held = |e: &mut Effects, toward| {
        if e.held.is_none()
            && let Some(limit) = rules.max_displacement
        {
            e.held = Some(Held { toward, limit });
        }
    };
    match pick.limited {
        // Relevance wanted `best` here, but it may not rise this far.
        Some(Shift::Down) => mark_held(&mut effects[pick.best], Shift::Down),
        // An item that may not fall further took (or pushed another into) the slot.
        Some(Shift::Up) => mark_held(&mut effects[pick.chosen], Shift::Up),
        None => {}
    }
    let Some(capped) = pick.best_capped else { return };
    if capped != pick.best_allowed {
        let e = &mut effects[pick.best_allowed];
        if e.capped.is_none()
            && let Some(cap) = rules.category_cap
        {
            e.capped =
                Some(Capped { category: cat_name(pick.best_allowed), max: cap.max, top: cap.top });
        }
    }
    if pick.chosen != capped {
        if effects[pick.chosen].diversity.is_none() {
            effects[pick.chosen].diversity = Some(Shift::Up);
        }
        if effects[capped].diversity.is_none() {
            effects[capped].diversity = Some(Shift::Down);
        }
    }
}

/// Unit item vectors for maximal marginal relevance (zeros where an item has none).
struct Diversity {
    dim: usize,
    unit: Vec<f32>,
}

impl Diversity {
    fn new(rules: &Rules, items: &[ListItem<'_>], kept: &[usize]) -> Option<Self> {
        if !rules.diversifies() {
            return None;
        }
        let dim = kept.iter().find_map(|&i| items[i].vector.map(<[f32]>::len))?;
        let mut unit = vec![0.0f32; kept.len() * dim];
        for (k, &i) in kept.iter().enumerate() {
            if let Some(v) = items[i].vector {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if norm > 0.0 {
                    for (o, x) in unit[k * dim..(k + 1) * dim].iter_mut().zip(v) {
                        *o = x / norm;
                    }
                }
            }
        }
        Some(Self { dim, unit })
    }

    fn row(&self, k: usize) -> &[f32] {
        &self.unit[k * self.dim..(k + 1) * self.dim]
    }
}

/// Maximal marginal relevance, slot by slot: the item maximising `(1 - λ) × relevance - λ ×
/// its highest cosine similarity to the items placed so far` (0 before any is placed).
///
/// Similarities are brought up to date lazily, only for items that could still win the slot:
/// an item's highest similarity only grows as items are placed, so its score from a partial
/// update (at least the first placed item) bounds its true score from above, and an item whose
/// bound is below the best true score so far cannot win. The choice is exactly the eager
/// one's (the same dot products and comparisons) at a fraction of the dot products.
struct Mmr {
    unit: Diversity,
    lambda: f32,
    /// The items placed in the slots diversity shapes, in order.
    placed: Vec<usize>,
    /// Per item: its highest similarity to `placed[..seen[k]]` (-∞ before the first).
    max_sim: Vec<f32>,
    seen: Vec<usize>,
}

impl Mmr {
    fn new(unit: Diversity, lambda: f32) -> Self {
        let m = unit.unit.len() / unit.dim.max(1);
        Self {
            unit,
            lambda,
            placed: Vec::new(),
            max_sim: vec![f32::NEG_INFINITY; m],
            seen: vec![0; m],
        }
    }

    /// The score of `k` with the similarities it has seen: exact when `seen[k]` covers every
    /// placed item, an upper bound otherwise. Sees at least the first placed item.
    fn score(&mut self, list: &List, k: usize) -> f32 {
        let penalty = match self.placed.first() {
            None => 0.0,
            Some(&first) => {
                if self.seen[k] == 0 {
                    self.max_sim[k] = dot(self.unit.row(k), self.unit.row(first));
                    self.seen[k] = 1;
                }
                self.max_sim[k]
            }
        };
        (1.0 - self.lambda) * list.rel[k] - self.lambda * penalty
    }

    /// `k`'s exact score.
    fn refresh(&mut self, list: &List, k: usize) -> f32 {
        let from = self.seen[k];
        for &j in &self.placed[from.min(self.placed.len())..] {
            self.max_sim[k] = self.max_sim[k].max(dot(self.unit.row(k), self.unit.row(j)));
        }
        self.seen[k] = self.placed.len();
        self.score(list, k)
    }

    /// The best item of `candidates` that `ok` accepts: highest score, ties in relevance order.
    fn choose(
        &mut self,
        list: &List,
        candidates: &[usize],
        ok: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        // The highest bound first (it is likely the winner, which prunes the most), then
        // every other item whose bound reaches the best exact score so far.
        let mut top: Option<(f32, usize)> = None;
        for &k in candidates {
            if ok(k) {
                let bound = self.score(list, k);
                if top.is_none_or(|(t, tk)| bound.total_cmp(&t).then(list.cmp(tk, k)).is_gt()) {
                    top = Some((bound, k));
                }
            }
        }
        let (_, first) = top?;
        let mut best = (self.refresh(list, first), first);
        for &k in candidates {
            if k == first || !ok(k) || self.score(list, k).total_cmp(&best.0).is_lt() {
                continue;
            }
            let score = self.refresh(list, k);
            if score.total_cmp(&best.0).then(list.cmp(best.1, k)).is_gt() {
                best = (score, k);
            }
        }
        Some(best.1)
    }
}
