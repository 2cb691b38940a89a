//! The shopper's session, kept in `sessionStorage` so it survives a reload and dies with the
//! tab. It is never sent anywhere.
//!
//! The in-memory copy is the truth; `sessionStorage` is a best-effort mirror. Where there is
//! none (a worker, a sandboxed iframe, storage disabled) or writing fails (quota), the store
//! keeps working in memory and [`SessionStore::backing`] says `"memory"`.

use serde::{Deserialize, Serialize};
use sessionrank_core::SessionEvent;
use wasm_bindgen::JsCast;
use web_sys::Storage;

/// Events kept (the model reads only the last `max_len`; older ones are history for
/// explanations of nothing, so the stored session is bounded).
pub const MAX_STORED_EVENTS: usize = 200;

/// Layout version of the stored value; another layout is discarded, not misread.
const STORED_LAYOUT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Stored {
    layout: u32,
    events: Vec<SessionEvent>,
}

/// Where the session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    SessionStorage,
    Memory,
}

#[derive(Debug)]
pub struct SessionStore {
    key: String,
    events: Vec<SessionEvent>,
    storage: Option<Storage>,
}

/// `sessionStorage` where it can be used. Accessing it throws in sandboxed iframes and
/// with storage disabled; those are "no storage", not errors.
fn session_storage() -> Option<Storage> {
    let window = js_sys::global().dyn_into::<web_sys::Window>().ok()?;
    window.session_storage().ok().flatten()
}

impl SessionStore {
    /// The key of a model version's session. Namespaced by version: a session recorded for
    /// one model is not fed to another whose item table may differ.
    pub fn key_for(model_version: &str) -> String {
        format!("sessionrank:session:{model_version}")
    }

    /// Open the session of `model_version`, restoring what this tab stored before.
    pub fn open(model_version: &str, persist: bool) -> Self {
        let key = Self::key_for(model_version);
        let storage = if persist { session_storage() } else { None };
        let events = storage
            .as_ref()
            .and_then(|s| s.get_item(&key).ok().flatten())
            .and_then(|json| serde_json::from_str::<Stored>(&json).ok())
            .filter(|s| s.layout == STORED_LAYOUT)
            .map(|s| s.events)
            .unwrap_or_default();
        let mut this = Self { key, events, storage };
        this.trim();
        this
    }

    pub fn events(&self) -> &[SessionEvent] {
        &self.events
    }

    pub fn backing(&self) -> Backing {
        if self.storage.is_some() { Backing::SessionStorage } else { Backing::Memory }
    }

    pub fn push(&mut self, event: SessionEvent) {
        self.events.push(event);
        self.trim();
        self.save();
    }

    pub fn clear(&mut self) {
        self.events.clear();
        if let Some(s) = &self.storage
            && s.remove_item(&self.key).is_err()
        {
            self.storage = None;
        }
    }

    fn trim(&mut self) {
        let extra = self.events.len().saturating_sub(MAX_STORED_EVENTS);
        self.events.drain(..extra);
    }

    /// Mirror to `sessionStorage`; on failure (quota, storage revoked) fall back to memory
    /// for the rest of this page's life.
    fn save(&mut self) {
        let Some(s) = &self.storage else { return };
        let ok =
            serde_json::to_string(&Stored { layout: STORED_LAYOUT, events: self.events.clone() })
                .ok()
                .is_some_and(|json| s.set_item(&self.key, &json).is_ok());
        if !ok {
            self.storage = None;
        }
    }
}
