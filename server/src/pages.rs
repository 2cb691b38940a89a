//! The candidate pages' cache: `GET /v1/candidates` answers from memory, so an anonymous
//! request costs a map lookup, not a query and a model run.
//!
//! A page is kept per (limit, model version), as the JSON bytes sent. It is fresh while the
//! catalog has not changed here, it is younger than the TTL (`candidates_ttl_s`: what other
//! instances sharing a PostgreSQL database stored reaches the page within it), and either no
//! event was stored, erased or pruned here since it was built or it is younger than
//! [`EVENTS_REFRESH`] (a steady stream of events refreshes the page at most once a second).
//! A new model version is another key.
//!
//! **Single flight.** One refresh per page at a time, in a task of its own (a request that
//! goes away does not cancel it). When only events or the TTL made a page stale, the request
//! that finds it so starts the refresh and, like every request until the refresh is done,
//! gets the previous page: no request waits for a refresh. When the catalog changed (a
//! withdrawn item must not be shown again) or there is no page yet, requests wait for it.
//!
//! At most [`MAX_PAGES`] pages are kept: a new key evicts the pages of other model versions
//! first, then the least recently built one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// A stream of events refreshes a page at most this often.
pub const EVENTS_REFRESH: Duration = Duration::from_secs(1);

/// Pages kept at most (the limits in use times the versions being switched between).
pub const MAX_PAGES: usize = 64;

/// Which page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub limit: usize,
    /// The live model's version the vectors come from; `None` without one.
    pub model_version: Option<String>,
}

/// A built page.
#[derive(Debug)]
pub struct Page {
    /// The JSON answer.
    pub body: Bytes,
    built: Instant,
    /// The change counters read before the page's query ran.
    events: u64,
    catalog: u64,
}

#[derive(Debug, Default)]
struct Slot {
    /// Held by the one refresh in flight.
    flight: Arc<tokio::sync::Mutex<()>>,
    page: RwLock<Option<Arc<Page>>>,
}

impl Slot {
    fn page(&self) -> Option<Arc<Page>> {
        match self.page.read() {
            Ok(p) => p.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, page: Arc<Page>) {
        match self.page.write() {
            Ok(mut p) => *p = Some(page),
            Err(p) => *p.into_inner() = Some(page),
        }
    }
}

/// How a page compares with the current state.
#[derive(Debug, PartialEq, Eq)]
enum Freshness {
    Fresh,
    /// Events or the TTL: the page may be served while a refresh runs.
    Stale,
    /// The catalog changed: wait for the refresh.
    Outdated,
}

#[derive(Debug)]
pub struct PageCache {
    ttl: Duration,
    slots: Mutex<HashMap<PageKey, Arc<Slot>>>,
    events: AtomicU64,
    catalog: AtomicU64,
    builds: AtomicU64,
}

impl PageCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::default(),
            events: AtomicU64::new(0),
            catalog: AtomicU64::new(0),
            builds: AtomicU64::new(0),
        }
    }

    /// Events were stored, erased or pruned.
    pub fn events_changed(&self) {
        self.events.fetch_add(1, Ordering::Release);
    }

    /// Items were added, changed or withdrawn.
    pub fn catalog_changed(&self) {
        self.catalog.fetch_add(1, Ordering::Release);
    }

    /// Pages built so far (tests, metrics).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    fn freshness(&self, page: &Page) -> Freshness {
        if page.catalog != self.catalog.load(Ordering::Acquire) {
            return Freshness::Outdated;
        }
        let age = page.built.elapsed();
        let events_moved = page.events != self.events.load(Ordering::Acquire);
        if age >= self.ttl || (events_moved && age >= EVENTS_REFRESH) {
            Freshness::Stale
        } else {
            Freshness::Fresh
        }
    }

    fn slot(&self, key: &PageKey) -> Arc<Slot> {
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if let Some(slot) = slots.get(key) {
            return slot.clone();
        }
        if slots.len() >= MAX_PAGES {
            slots.retain(|k, _| k.model_version == key.model_version);
        }
        while slots.len() >= MAX_PAGES {
            let oldest =
                slots.iter().min_by_key(|(_, s)| s.page().map(|p| p.built)).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => slots.remove(&k),
                None => break,
            };
        }
        slots.entry(key.clone()).or_default().clone()
    }

    /// The page for `key`: the cached one while fresh, else built by `build` (one build per
    /// key at a time; see the module documentation for who waits).
    pub async fn get<E, F, Fut>(&self, key: &PageKey, build: F) -> Result<Arc<Page>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>> + Send + 'static,
        E: From<tokio::task::JoinError> + Send + 'static,
    {
        let slot = self.slot(key);
        let (guard, stale) = match slot.page() {
            Some(page) => match self.freshness(&page) {
                Freshness::Fresh => return Ok(page),
                Freshness::Stale => match slot.flight.clone().try_lock_owned() {
                    Ok(guard) => (guard, Some(page)),
                    // Someone is refreshing it: the previous page meanwhile.
                    Err(_) => return Ok(page),
                },
                Freshness::Outdated => (slot.flight.clone().lock_owned().await, None),
            },
            None => (slot.flight.clone().lock_owned().await, None),
        };
        // The refresh we waited for may have made it fresh.
        if let Some(page) = slot.page().filter(|p| self.freshness(p) == Freshness::Fresh) {
            return Ok(page);
        }
        let (events, catalog) =
            (self.events.load(Ordering::Acquire), self.catalog.load(Ordering::Acquire));
        self.builds.fetch_add(1, Ordering::Relaxed);
        let built = build();
        let task_slot = slot.clone();
        let refresh = tokio::spawn(async move {
            let _flight = guard;
            let body = built.await?;
            let page = Arc::new(Page { body, built: Instant::now(), events, catalog });
            task_slot.set(page.clone());
            Ok(page)
        });
        match stale {
            // The refresh goes on without us; a failed one leaves the page stale, and a
            // later request tries again.
            Some(page) => Ok(page),
            None => refresh.await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(limit: usize) -> PageKey {
        PageKey { limit, model_version: Some("v1".into()) }
    }

    #[derive(Debug)]
    struct Failed;

    impl From<tokio::task::JoinError> for Failed {
        fn from(_: tokio::task::JoinError) -> Self {
            Failed
        }
    }

    async fn body(text: &'static str) -> Result<Bytes, Failed> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(Bytes::from_static(text.as_bytes()))
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_build() {
        let cache = Arc::new(PageCache::new(Duration::from_secs(60)));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let cache = cache.clone();
            tasks.push(tokio::spawn(async move {
                cache.get(&key(5), || body("a")).await.map(|p| p.body.clone())
            }));
        }
        for t in tasks {
            assert_eq!(t.await.expect("task").expect("page"), "a");
        }
        assert_eq!(cache.builds(), 1);
        cache.get(&key(6), || body("b")).await.expect("page");
        assert_eq!(cache.builds(), 2, "another limit is another page");
    }

    #[tokio::test]
    async fn a_catalog_change_rebuilds_at_once_and_events_after_a_second() {
        let cache = PageCache::new(Duration::from_secs(60));
        cache.get(&key(5), || body("a")).await.expect("page");
        cache.events_changed();
        let p = cache.get(&key(5), || body("b")).await.expect("page");
        assert_eq!((p.body.as_ref(), cache.builds()), (b"a".as_ref(), 1), "events: not yet");
        tokio::time::sleep(EVENTS_REFRESH).await;
        let p = cache.get(&key(5), || body("b")).await.expect("page");
        assert_eq!((p.body.as_ref(), cache.builds()), (b"a".as_ref(), 2), "refreshing");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let p = cache.get(&key(5), || body("x")).await.expect("page");
        assert_eq!((p.body.as_ref(), cache.builds()), (b"b".as_ref(), 2), "refreshed");
        cache.catalog_changed();
        let p = cache.get(&key(5), || body("c")).await.expect("page");
        assert_eq!((p.body.as_ref(), cache.builds()), (b"c".as_ref(), 3), "catalog: at once");
    }

    #[tokio::test]
    async fn a_stale_page_is_served_while_it_is_refreshed() {
        let cache = PageCache::new(Duration::from_millis(1));
        cache.get(&key(5), || body("a")).await.expect("page");
        tokio::time::sleep(Duration::from_millis(5)).await;
        let p = cache.get(&key(5), || body("b")).await.expect("page");
        assert_eq!(p.body.as_ref(), b"a", "the one who starts the refresh does not wait");
        let p = cache.get(&key(5), || body("c")).await.expect("page");
        assert_eq!(p.body.as_ref(), b"a", "nor does anyone while it runs");
        assert_eq!(cache.builds(), 2, "one refresh");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let slot = cache.slot(&key(5));
        assert_eq!(slot.page().map(|p| p.body.clone()), Some(Bytes::from_static(b"b")));
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = PageCache::new(Duration::from_secs(60));
        for limit in 0..(MAX_PAGES + 10) {
            cache.get(&key(limit), || body("a")).await.expect("page");
        }
        let other = PageKey { limit: 1, model_version: Some("v2".into()) };
        cache.get(&other, || body("b")).await.expect("page");
        let slots = cache.slots.lock().expect("lock");
        assert!(slots.len() <= MAX_PAGES);
        assert_eq!(slots.len(), 1, "a full cache drops the other versions' pages first");
    }
}
