//! Training-data hygiene: scripted traffic taken out of the sessions a model is retrained on.
//!
//! A shop's event stream is open to anyone with a browser, so a seller can pay for bots that
//! click one item over and over, or replay one scripted visit thousands of times, to have the
//! next model rank that item for everyone (`results/poisoning.json` measures how far such an
//! item rises). [`clean_sessions`] runs before a retraining job splits and trains (the held-out
//! sessions the publish gate compares models on are cleaned too), and is on by default
//! (`[retrain.hygiene]`). Its rules are per session, so it needs no history and no source
//! signal, and each limit was set against real shoppers — Diginetica's 186,670 training
//! sessions, where it drops about 0.5% of sessions and caps 1.4% of events:
//!
//! 0. **flooded sessions** — a session with `flood_events` or more events of one item is
//!    dropped whole (the "clicks one item many times" bot; 0.14% of real sessions at 8);
//! 1. **dominated sessions** — a session of at least `dominant_min_events` events in which one
//!    item makes up more than `dominant_share` of the events is dropped whole (a shorter
//!    flood hidden in few other clicks; 0.41% of real sessions at 8 events / 50%);
//! 2. **repeat cap** — of any one item, a session keeps its first `max_item_repeats` events
//!    of each kind (a cart or a purchase is never crowded out by views);
//! 3. **identical sessions** — one exact item sequence is kept at most `max_identical` times
//!    (`max_identical_pairs` for two-event sessions, which real shoppers repeat: the most
//!    common real pair occurs 29 times, no real sequence of three or more over 4 times), the
//!    earliest copies first: a burst of one replayed visit becomes a few visits;
//! 4. **inhuman speed** — where events carry times, a session of at least 10 events that
//!    averages more than `max_events_per_minute` is dropped.
//!
//! What it cannot see: bots that each look like an ordinary shopper (a different real-looking
//! visit each, the promoted item once or twice). Those need a signal about the sender (rate
//! limits per client, the ingest key's scope) rather than about the session.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::session::{EventKind, ItemIdx, Session};

/// The limits of [`clean_sessions`] (`[retrain.hygiene]` in the server's TOML).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HygieneConfig {
    /// Off: sessions are trained on as stored.
    pub enabled: bool,
    /// A session with this many events of one item is dropped (0: off).
    pub flood_events: usize,
    /// Events of one item and kind a session keeps (0: no cap).
    pub max_item_repeats: usize,
    /// A session in which one item is more than this share of the events is dropped...
    pub dominant_share: f64,
    /// ...when it has at least this many events.
    pub dominant_min_events: usize,
    /// Copies of one exact item sequence of three or more events kept (0: no limit).
    pub max_identical: usize,
    /// Copies of one exact two-event sequence kept (0: no limit).
    pub max_identical_pairs: usize,
    /// Sessions of 10 or more timed events faster than this on average are dropped (0: off).
    pub max_events_per_minute: f64,
}

impl Default for HygieneConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            flood_events: 8,
            max_item_repeats: 3,
            dominant_share: 0.5,
            dominant_min_events: 8,
            max_identical: 4,
            max_identical_pairs: 32,
            max_events_per_minute: 60.0,
        }
    }
}

impl HygieneConfig {
    /// Hygiene switched off (the same sessions out as in).
    pub fn off() -> Self {
        Self { enabled: false, ..Self::default() }
    }

    /// A limit that cannot work (a share outside (0, 1], a negative or NaN speed), named.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.dominant_share > 0.0 && self.dominant_share <= 1.0) {
            return Err(format!(
                "hygiene.dominant_share must be in (0, 1], got {}",
                self.dominant_share
            ));
        }
        if !(self.max_events_per_minute >= 0.0 && self.max_events_per_minute.is_finite()) {
            return Err(format!(
                "hygiene.max_events_per_minute must be a finite number >= 0, got {}",
                self.max_events_per_minute
            ));
        }
        Ok(())
    }
}

/// What [`clean_sessions`] did, for the job's metrics and the poisoning experiment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HygieneReport {
    pub sessions_in: usize,
    pub sessions_kept: usize,
    pub dropped_flooded: usize,
    pub dropped_dominated: usize,
    pub dropped_identical: usize,
    pub dropped_too_fast: usize,
    pub events_in: usize,
    pub events_kept: usize,
    /// Events removed by the repeat cap (in sessions that were kept).
    pub repeats_capped: usize,
}

/// Sessions of fewer events than this are never judged by speed.
const MIN_TIMED_EVENTS: usize = 10;

/// Apply the rules of the module documentation; the order of the kept sessions is unchanged.
pub fn clean_sessions(
    sessions: Vec<Session>,
    cfg: &HygieneConfig,
) -> (Vec<Session>, HygieneReport) {
    let mut report = HygieneReport {
        sessions_in: sessions.len(),
        events_in: sessions.iter().map(|s| s.events.len()).sum(),
        ..HygieneReport::default()
    };
    if !cfg.enabled {
        report.sessions_kept = report.sessions_in;
        report.events_kept = report.events_in;
        return (sessions, report);
    }
    let mut copies: HashMap<Vec<ItemIdx>, usize> = HashMap::new();
    let mut kept = Vec::with_capacity(sessions.len());
    for mut session in sessions {
        let top = top_item_events(&session);
        if cfg.flood_events > 0 && top >= cfg.flood_events {
            report.dropped_flooded += 1;
            continue;
        }
        let n = session.events.len();
        if n >= cfg.dominant_min_events.max(1) && top as f64 > cfg.dominant_share * n as f64 {
            report.dropped_dominated += 1;
            continue;
        }
        if is_too_fast(&session, cfg) {
            report.dropped_too_fast += 1;
            continue;
        }
        if n >= 2 {
            let limit = if n == 2 { cfg.max_identical_pairs } else { cfg.max_identical };
            if limit > 0 {
                let key: Vec<ItemIdx> = session.events.iter().map(|e| e.item).collect();
                let seen = copies.entry(key).or_insert(0);
                *seen += 1;
                if *seen > limit {
                    report.dropped_identical += 1;
                    continue;
                }
            }
        }
        report.repeats_capped += cap_repeats(&mut session, cfg.max_item_repeats);
        report.events_kept += session.events.len();
        kept.push(session);
    }
    report.sessions_kept = kept.len();
    (kept, report)
}

/// Events of the session's most clicked item.
fn top_item_events(session: &Session) -> usize {
    let mut counts: HashMap<ItemIdx, usize> = HashMap::new();
    session.events.iter().fold(0, |top, e| {
        let c = counts.entry(e.item).or_insert(0);
        *c += 1;
        top.max(*c)
    })
}

/// At least [`MIN_TIMED_EVENTS`] events, all timed, faster than the limit on average.
fn is_too_fast(session: &Session, cfg: &HygieneConfig) -> bool {
    let n = session.events.len();
    if cfg.max_events_per_minute <= 0.0 || n < MIN_TIMED_EVENTS {
        return false;
    }
    let times: Option<Vec<i64>> = session.events.iter().map(|e| e.timestamp).collect();
    let Some(times) = times else { return false };
    let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
        return false;
    };
    // Seconds are whole: a span under one second counts as one.
    let minutes = (last.saturating_sub(*first)).max(1) as f64 / 60.0;
    (n - 1) as f64 / minutes > cfg.max_events_per_minute
}

/// Keep the first `max` events of each (item, kind); returns how many were removed.
fn cap_repeats(session: &mut Session, max: usize) -> usize {
    if max == 0 {
        return 0;
    }
    let before = session.events.len();
    let mut seen: HashMap<(ItemIdx, EventKind), usize> = HashMap::new();
    session.events.retain(|e| {
        let c = seen.entry((e.item, e.kind)).or_insert(0);
        *c += 1;
        *c <= max
    });
    before - session.events.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Event;

    fn session(items: &[u32]) -> Session {
        Session { id: String::new(), events: items.iter().map(|&i| Event::view(i)).collect() }
    }

    fn timed(items: &[u32], gap_s: i64) -> Session {
        let events = items
            .iter()
            .enumerate()
            .map(|(k, &i)| Event { timestamp: Some(1_000 + k as i64 * gap_s), ..Event::view(i) })
            .collect();
        Session { id: String::new(), events }
    }

    #[test]
    fn ordinary_sessions_pass_untouched() {
        let sessions =
            vec![session(&[1, 2, 3]), session(&[4, 4, 5, 4]), session(&[7]), session(&[1, 2])];
        let (kept, report) = clean_sessions(sessions.clone(), &HygieneConfig::default());
        assert_eq!(kept, sessions);
        assert_eq!((report.sessions_kept, report.events_kept, report.repeats_capped), (4, 10, 0));
    }

    #[test]
    fn a_session_flooded_with_one_item_is_dropped() {
        let mut bot: Vec<u32> = (20..40).collect(); // a long real-looking visit...
        bot.extend([9; 8]); // ...with one item clicked 8 times: 8 of 28, not dominated
        let human = session(&[9, 1, 9, 2, 9, 5, 9, 6, 9, 3, 9, 4, 9, 7, 8]); // 7 of 15
        let (kept, report) =
            clean_sessions(vec![session(&bot), human.clone()], &HygieneConfig::default());
        assert_eq!((report.dropped_flooded, report.dropped_dominated), (1, 0));
        assert_eq!(kept.len(), 1);
        assert_eq!(report.repeats_capped, 4, "the human's 7 clicks of one item are capped at 3");
    }

    #[test]
    fn a_session_dominated_by_one_item_is_dropped() {
        let bot = session(&[9, 1, 9, 2, 9, 9, 3, 1, 9]); // 5 of 9
        let human = session(&[9, 1, 9, 2, 9, 5, 3, 6, 7]); // 3 of 9
        let short = session(&[9, 9, 9, 1]); // too short to judge: capped instead
        let (kept, report) =
            clean_sessions(vec![bot, human.clone(), short], &HygieneConfig::default());
        assert_eq!((report.dropped_dominated, report.dropped_flooded), (1, 0));
        assert_eq!(kept, vec![human, session(&[9, 9, 9, 1])]);
    }

    #[test]
    fn repeats_are_capped_per_item_and_kind() {
        let mut s = session(&[5, 5, 5, 5, 5, 1]);
        s.events.push(Event { item: 5, kind: EventKind::AddToCart, timestamp: None });
        let cfg =
            HygieneConfig { max_item_repeats: 2, dominant_min_events: 100, ..Default::default() };
        let (kept, report) = clean_sessions(vec![s], &cfg);
        assert_eq!(report.repeats_capped, 3);
        let kinds: Vec<(u32, EventKind)> =
            kept[0].events.iter().map(|e| (e.item, e.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (5, EventKind::View),
                (5, EventKind::View),
                (1, EventKind::View),
                (5, EventKind::AddToCart)
            ]
        );
    }

    #[test]
    fn a_replayed_visit_is_kept_a_few_times() {
        let mut sessions = vec![session(&[1, 2, 3]); 10];
        sessions.extend(vec![session(&[1, 2]); 40]);
        sessions.push(session(&[3, 2, 1]));
        let (kept, report) = clean_sessions(sessions, &HygieneConfig::default());
        assert_eq!(report.dropped_identical, 6 + 8);
        assert_eq!(kept.len(), 4 + 32 + 1);
        assert_eq!(kept.last(), Some(&session(&[3, 2, 1])), "order is kept");
    }

    #[test]
    fn inhuman_speed_is_dropped_only_with_times() {
        let items: Vec<u32> = (0..12).collect();
        let fast = timed(&items, 0); // 12 events in the same second
        let human = timed(&items, 20);
        let untimed = session(&items);
        let (kept, report) =
            clean_sessions(vec![fast, human.clone(), untimed.clone()], &HygieneConfig::default());
        assert_eq!(report.dropped_too_fast, 1);
        assert_eq!(kept, vec![human, untimed]);
    }

    #[test]
    fn off_is_the_identity_and_bad_limits_are_named() {
        let sessions = vec![session(&[9; 20]); 10];
        let (kept, report) = clean_sessions(sessions.clone(), &HygieneConfig::off());
        assert_eq!((kept, report.sessions_kept), (sessions, 10));
        let bad = HygieneConfig { dominant_share: 1.5, ..Default::default() };
        assert!(bad.validate().is_err_and(|e| e.contains("dominant_share")));
        let bad = HygieneConfig { max_events_per_minute: f64::NAN, ..Default::default() };
        assert!(bad.validate().is_err_and(|e| e.contains("max_events_per_minute")));
        assert!(HygieneConfig::default().validate().is_ok());
    }
}
