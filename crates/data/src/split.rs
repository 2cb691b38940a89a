//! Splits: which sessions train, which validate and which are asked as test cases. Every
//! importer and the server's retraining job split through these functions, so a rule (how
//! many sessions the most recent share is, what a case is) has one owner.
//!
//! * [`split_recent`] — sessions in time order, the most recent shares held out (session
//!   datasets without a published split, the server's retraining);
//! * [`leave_one_out`] — the last two events of every history held out (SASRec, S3-Rec);
//! * [`prefix_cases`] / [`cases_of`] — held-out sessions → evaluation cases.

use crate::session::{Event, Session, TestCase};

/// How many of `n` sessions in time order the most recent `fraction` is: `round(n · fraction)`,
/// at least `min` and at most `n`.
pub fn recent_count(n: usize, fraction: f64, min: usize) -> usize {
    ((n as f64 * fraction).round() as usize).max(min).min(n)
}

/// Sessions of each part of a [`split_recent`] split, each in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecentSplit {
    pub train: Vec<Session>,
    pub valid: Vec<Session>,
    pub test: Vec<Session>,
}

/// Sessions in time order → the most recent `test_fraction` are test sessions, the most recent
/// `valid_fraction` of the rest validate, the remainder trains ([`recent_count`] with at least
/// `min_each` sessions in test and in validation while there are sessions left). Whole
/// sessions go to one part, so no test session was partly seen in training.
pub fn split_recent(
    mut sessions: Vec<Session>,
    test_fraction: f64,
    valid_fraction: f64,
    min_each: usize,
) -> RecentSplit {
    let n_test = recent_count(sessions.len(), test_fraction, min_each);
    let test = sessions.split_off(sessions.len() - n_test);
    let n_valid = recent_count(sessions.len(), valid_fraction, min_each);
    let valid = sessions.split_off(sessions.len() - n_valid);
    RecentSplit { train: sessions, valid, test }
}

/// Every prefix case ([`prefix_cases`]) of every session, in session order.
pub fn cases_of(sessions: &[Session], mut keep: impl FnMut(&Event) -> bool) -> Vec<TestCase> {
    let mut out = Vec::new();
    for s in sessions {
        prefix_cases(&s.events, &mut keep, &mut out);
    }
    out
}

/// SR-GNN-style prefix cases of one session: `(events[..i] → events[i])` for every `i ≥ 1`
/// whose target passes `keep`. Every prefix is a case because a session recommender is asked
/// after every click, not only at the end.
pub fn prefix_cases(
    events: &[Event],
    mut keep: impl FnMut(&Event) -> bool,
    out: &mut Vec<TestCase>,
) {
    for i in 1..events.len() {
        if keep(&events[i]) {
            out.push(TestCase { prefix: events[..i].to_vec(), target: events[i].item });
        }
    }
}

/// The leave-one-out split of sequential recommendation (SASRec, S3-Rec): for a history
/// `s` of length `n` the training sequence is `s[..n-2]`, validation asks `s[..n-2] → s[n-2]`
/// and test asks `s[..n-1] → s[n-1]`. Histories too short for a part simply lack it (a case
/// needs a non-empty prefix; a training sequence needs at least one event).
pub fn leave_one_out(histories: Vec<Session>) -> (Vec<Session>, Vec<TestCase>, Vec<TestCase>) {
    let mut train = Vec::with_capacity(histories.len());
    let mut valid = Vec::with_capacity(histories.len());
    let mut test = Vec::with_capacity(histories.len());
    for s in histories {
        let n = s.events.len();
        if n >= 2 {
            test.push(TestCase {
                prefix: s.events[..n - 1].to_vec(),
                target: s.events[n - 1].item,
            });
        }
        if n >= 3 {
            valid.push(TestCase {
                prefix: s.events[..n - 2].to_vec(),
                target: s.events[n - 2].item,
            });
        }
        // A one-event history has nothing to predict but still tells the baselines what is popular.
        let keep = if n == 1 { 1 } else { n - 2 };
        if keep > 0 {
            train.push(Session { id: s.id, events: s.events[..keep].to_vec() });
        }
    }
    (train, valid, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(id: &str, items: &[u32]) -> Session {
        Session { id: id.into(), events: items.iter().map(|&i| Event::view(i)).collect() }
    }

    #[test]
    fn leave_one_out_shapes() {
        let (train, valid, test) =
            leave_one_out(vec![hist("a", &[1, 2, 3, 4, 5]), hist("b", &[7, 8]), hist("c", &[9])]);
        assert_eq!(train.len(), 2);
        assert_eq!(train[0].events.iter().map(|e| e.item).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(train[1].events.iter().map(|e| e.item).collect::<Vec<_>>(), vec![9]);
        assert_eq!(valid.len(), 1);
        assert_eq!(valid[0].target, 4);
        assert_eq!(valid[0].prefix.len(), 3);
        assert_eq!(test.len(), 2);
        assert_eq!(test[0].target, 5);
        assert_eq!(test[0].prefix.len(), 4);
        assert_eq!(test[1].target, 8);
        assert_eq!(test[1].prefix.len(), 1);
    }

    #[test]
    fn recent_shares() {
        let sessions: Vec<Session> = (0..25).map(|k| hist(&k.to_string(), &[k, k + 1])).collect();
        let ids =
            |s: &[Session]| -> Vec<u32> { s.iter().map(|s| s.id.parse().unwrap_or(99)).collect() };
        // 25 · 0.2 = 5 test; 20 · 0.1 = 2 valid; the most recent go first.
        let split = split_recent(sessions.clone(), 0.2, 0.1, 0);
        assert_eq!(ids(&split.test), (20..25).collect::<Vec<_>>());
        assert_eq!(ids(&split.valid), vec![18, 19]);
        assert_eq!(split.train.len(), 18);
        // A share that rounds to nothing takes `min_each`, never more than there is.
        let split = split_recent(sessions[..3].to_vec(), 0.1, 0.1, 1);
        assert_eq!((split.train.len(), split.valid.len(), split.test.len()), (1, 1, 1));
        let split = split_recent(sessions[..3].to_vec(), 0.1, 0.1, 0);
        assert_eq!((split.train.len(), split.valid.len(), split.test.len()), (3, 0, 0));
        assert_eq!(recent_count(1, 0.1, 5), 1);
        // Cases: every prefix whose target passes the filter.
        let cases = cases_of(&sessions[..2], |e| e.item != 1);
        assert_eq!(cases.len(), 1);
        assert_eq!((cases[0].prefix.len(), cases[0].target), (1, 2));
    }
}
