//! Long operations (create, export, import, copy): an id, a status and a progress line
//! that every client can see (`sysc operation list`), each change also an "operation"
//! event. Finished operations stay listed for a while so clients see how they ended.
//! Kept in memory only: a daemon restart forgets them.

use std::fmt::Display;
use std::sync::{Arc, Mutex};

use super::{Event, EventBus, Kind};
use crate::error::{Error, Result};

/// How long a finished operation stays listed.
pub const KEEP_FINISHED_MS: i64 = 5 * 60 * 1000;
/// The most finished operations listed; older ones go first.
pub const KEEP_FINISHED_AT_MOST: usize = 100;
/// Progress changes are announced at most this often per operation (all are recorded).
const ANNOUNCE_EVERY_MS: i64 = 500;
/// The shortest id prefix `get` accepts.
const MIN_PREFIX: usize = 4;

/// An amount of data as a progress line: "120.5 MiB".
pub fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Running,
    Success,
    Failure,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Success => "success",
            Status::Failure => "failure",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OperationView {
    /// 32 hex digits.
    pub id: String,
    /// "create", "export", "import", "copy".
    pub kind: String,
    pub description: String,
    pub status: Status,
    pub error: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub progress: String,
    /// e.g. "containers/web1".
    pub resources: Vec<String>,
}

struct Entry {
    view: OperationView,
    /// When its last event went out.
    announced_ms: i64,
}

pub struct Operations {
    bus: EventBus,
    entries: Mutex<Vec<Entry>>,
}

impl Operations {
    pub fn new(bus: EventBus) -> Self {
        Self {
            bus,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Registers a running operation. Finish it through the handle; a handle dropped
    /// unfinished marks it failed.
    pub fn begin(
        self: &Arc<Self>,
        kind: &str,
        description: impl Into<String>,
        resources: Vec<String>,
    ) -> OperationHandle {
        self.begin_at(crate::time::now_ms(), kind, description.into(), resources)
    }

    fn begin_at(
        self: &Arc<Self>,
        now: i64,
        kind: &str,
        description: String,
        resources: Vec<String>,
    ) -> OperationHandle {
        let view = OperationView {
            id: hex::encode(rand::random::<[u8; 16]>()),
            kind: kind.to_string(),
            description,
            status: Status::Running,
            error: String::new(),
            created_at_ms: now,
            updated_at_ms: now,
            progress: String::new(),
            resources,
        };
        {
            let mut entries = self.lock();
            prune(&mut entries, now);
            entries.push(Entry {
                view: view.clone(),
                announced_ms: now,
            });
        }
        self.announce("operation-created", view.clone(), now);
        OperationHandle {
            operations: self.clone(),
            id: view.id,
            done: false,
        }
    }

    /// Every operation still listed: running ones, then finished ones, newest first.
    pub fn list(&self) -> Vec<OperationView> {
        self.list_at(crate::time::now_ms())
    }

    fn list_at(&self, now: i64) -> Vec<OperationView> {
        let mut entries = self.lock();
        prune(&mut entries, now);
        let mut views: Vec<OperationView> = entries.iter().map(|e| e.view.clone()).collect();
        views.sort_by_key(|v| (v.status != Status::Running, std::cmp::Reverse(v.created_at_ms)));
        views
    }

    /// One operation by its id or a unique prefix of at least 4 digits.
    pub fn get(&self, id: &str) -> Result<OperationView> {
        let id = id.trim().to_ascii_lowercase();
        if id.len() < MIN_PREFIX || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidArgument(format!(
                "operation id {id:?}: expected at least {MIN_PREFIX} hex digits"
            )));
        }
        let views = self.list();
        let mut matching = views.iter().filter(|v| v.id.starts_with(&id));
        match (matching.next(), matching.next()) {
            (Some(view), None) => Ok(view.clone()),
            (Some(_), Some(_)) => Err(Error::InvalidArgument(format!(
                "operation id {id} is ambiguous: give more digits"
            ))),
            (None, _) => Err(Error::NotFound(format!("operation {id} not found"))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic elsewhere while holding it leaves the list intact enough to go on with.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies a change to a running operation; announced if it finishes it or enough
    /// time has passed since the last announcement.
    fn change(&self, id: &str, now: i64, apply: impl FnOnce(&mut OperationView)) {
        let announced = {
            let mut entries = self.lock();
            let Some(entry) = entries
                .iter_mut()
                .find(|e| e.view.id == id && e.view.status == Status::Running)
            else {
                return;
            };
            apply(&mut entry.view);
            entry.view.updated_at_ms = now;
            let finished = entry.view.status != Status::Running;
            if !finished && now - entry.announced_ms < ANNOUNCE_EVERY_MS {
                None
            } else {
                entry.announced_ms = now;
                let action = if finished {
                    "operation-finished"
                } else {
                    "operation-updated"
                };
                Some((action, entry.view.clone()))
            }
        };
        if let Some((action, view)) = announced {
            self.announce(action, view, now);
        }
    }

    fn progress_at(&self, id: &str, text: String, now: i64) {
        self.change(id, now, |view| view.progress = text);
    }

    fn finish_at(&self, id: &str, error: Option<String>, now: i64) {
        self.change(id, now, |view| match error {
            None => view.status = Status::Success,
            Some(error) => {
                view.status = Status::Failure;
                view.error = error;
            }
        });
        let mut entries = self.lock();
        prune(&mut entries, now);
    }

    fn announce(&self, action: &str, view: OperationView, now: i64) {
        self.bus.send(Event {
            kind: Kind::Operation,
            at_ms: now,
            action: action.to_string(),
            source: format!("operations/{}", view.id),
            context: Default::default(),
            operation: Some(view),
            message: String::new(),
            level: String::new(),
        });
    }
}

/// Drops finished operations older than KEEP_FINISHED_MS, and the oldest finished ones
/// past KEEP_FINISHED_AT_MOST. Running ones always stay.
fn prune(entries: &mut Vec<Entry>, now: i64) {
    entries.retain(|e| e.view.status == Status::Running || now - e.view.updated_at_ms < KEEP_FINISHED_MS);
    let finished = entries.iter().filter(|e| e.view.status != Status::Running).count();
    if finished > KEEP_FINISHED_AT_MOST {
        let mut ends: Vec<i64> = entries
            .iter()
            .filter(|e| e.view.status != Status::Running)
            .map(|e| e.view.updated_at_ms)
            .collect();
        ends.sort_unstable();
        // Keep the newest KEEP_FINISHED_AT_MOST; ties at the cut go by position.
        let cut = ends[finished - KEEP_FINISHED_AT_MOST];
        let mut excess = finished - KEEP_FINISHED_AT_MOST;
        entries.retain(|e| {
            if excess > 0 && e.view.status != Status::Running && e.view.updated_at_ms <= cut {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// The one owner of a running operation. `finish` records its outcome; dropped without
/// that (the work panicked or was cancelled), the operation is marked failed.
pub struct OperationHandle {
    operations: Arc<Operations>,
    id: String,
    done: bool,
}

impl OperationHandle {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Something the work can report progress through without owning the operation.
    pub fn reporter(&self) -> OperationProgress {
        OperationProgress {
            operations: self.operations.clone(),
            id: self.id.clone(),
        }
    }

    pub fn progress(&self, text: impl Into<String>) {
        self.operations
            .progress_at(&self.id, text.into(), crate::time::now_ms());
    }

    /// Success for Ok, failure with the error's text for Err.
    pub fn finish<T, E: Display>(mut self, result: &std::result::Result<T, E>) {
        self.done = true;
        let error = result.as_ref().err().map(|e| e.to_string());
        self.operations.finish_at(&self.id, error, crate::time::now_ms());
    }
}

impl Drop for OperationHandle {
    fn drop(&mut self) {
        if !self.done {
            self.operations.finish_at(
                &self.id,
                Some("the operation ended before it finished".into()),
                crate::time::now_ms(),
            );
        }
    }
}

/// Reports an operation's progress; does nothing once the operation has finished.
#[derive(Clone)]
pub struct OperationProgress {
    operations: Arc<Operations>,
    id: String,
}

impl OperationProgress {
    pub fn report(&self, text: impl Into<String>) {
        self.operations
            .progress_at(&self.id, text.into(), crate::time::now_ms());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (Arc<Operations>, super::super::Subscription) {
        let bus = EventBus::default();
        let events = bus.subscribe(&[Kind::Operation]);
        (Arc::new(Operations::new(bus)), events)
    }

    #[tokio::test]
    async fn an_operation_goes_from_running_to_success_and_says_so() {
        let (ops, mut events) = registry();
        let op = ops.begin("export", "Exporting web1", vec!["containers/web1".into()]);
        let id = op.id().to_string();
        assert_eq!(id.len(), 32);
        let created = events.next().await.unwrap();
        assert_eq!(created.action, "operation-created");
        assert_eq!(created.source, format!("operations/{id}"));
        assert_eq!(created.operation.unwrap().status, Status::Running);
        op.finish(&Ok::<(), Error>(()));
        let finished = events.next().await.unwrap();
        assert_eq!(finished.action, "operation-finished");
        let view = finished.operation.unwrap();
        assert_eq!((view.status, view.error.as_str()), (Status::Success, ""));
        assert_eq!(ops.get(&id[..6]).unwrap().status, Status::Success);
    }

    #[tokio::test]
    async fn a_dropped_handle_marks_its_operation_failed() {
        let (ops, mut events) = registry();
        let op = ops.begin("create", "Creating c1", vec![]);
        let id = op.id().to_string();
        let reporter = op.reporter();
        drop(op);
        let view = ops.get(&id).unwrap();
        assert_eq!(view.status, Status::Failure);
        assert!(!view.error.is_empty());
        events.next().await.unwrap(); // created
        assert_eq!(events.next().await.unwrap().action, "operation-finished");
        // Late progress changes nothing.
        reporter.report("99%");
        assert_eq!(ops.get(&id).unwrap().progress, "");
    }

    #[test]
    fn failures_keep_their_error() {
        let (ops, _events) = registry();
        let op = ops.begin("import", "Importing x", vec![]);
        let id = op.id().to_string();
        op.progress("12.0 MiB");
        assert_eq!(ops.get(&id).unwrap().progress, "12.0 MiB");
        op.finish(&Err::<(), _>(Error::InvalidArgument("not an export".into())));
        let view = ops.get(&id).unwrap();
        assert_eq!((view.status, view.error.as_str()), (Status::Failure, "not an export"));
    }

    #[test]
    fn finished_operations_expire_running_ones_stay() {
        let (ops, _events) = registry();
        let running = ops.begin_at(1_000, "export", "long".into(), vec![]);
        let mut done = ops.begin_at(1_000, "copy", "short".into(), vec![]);
        let done_id = done.id().to_string();
        done.done = true;
        ops.finish_at(&done_id, None, 2_000);
        drop(done);
        assert_eq!(ops.list_at(2_000 + KEEP_FINISHED_MS - 1).len(), 2);
        let left = ops.list_at(2_000 + KEEP_FINISHED_MS);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, running.id());
    }

    #[test]
    fn only_the_newest_finished_operations_are_kept() {
        let (ops, _events) = registry();
        let running = ops.begin_at(0, "export", "long".into(), vec![]);
        let mut ids = Vec::new();
        for n in 0..KEEP_FINISHED_AT_MOST as i64 + 5 {
            let mut op = ops.begin_at(n, "copy", format!("copy {n}"), vec![]);
            op.done = true;
            ops.finish_at(op.id(), None, 10 + n);
            ids.push(op.id().to_string());
        }
        let listed = ops.list_at(200);
        assert_eq!(listed.len(), KEEP_FINISHED_AT_MOST + 1);
        // Running first, then the newest.
        assert_eq!(listed[0].id, running.id());
        assert_eq!(listed[1].id, *ids.last().unwrap());
        assert!(listed.iter().all(|v| !ids[..5].contains(&v.id)));
    }

    #[test]
    fn progress_is_announced_at_most_twice_a_second() {
        let bus = EventBus::default();
        let mut events = bus.subscribe(&[]);
        let ops = Arc::new(Operations::new(bus));
        let op = ops.begin_at(0, "export", "x".into(), vec![]);
        for at in [100, 200, 300, 600, 700] {
            ops.progress_at(op.id(), format!("{at}"), at);
        }
        let mut announced = Vec::new();
        while let Ok(event) = events.receiver.try_recv() {
            announced.push(event.operation.unwrap().progress);
        }
        // created, then 600 (the first at least 500 ms after the last); 700 is recorded only.
        assert_eq!(announced, ["", "600"]);
        assert_eq!(ops.get(op.id()).unwrap().progress, "700");
    }

    #[test]
    fn ids_are_looked_up_by_prefix() {
        let (ops, _events) = registry();
        let op = ops.begin("copy", "c", vec![]);
        assert!(matches!(ops.get("abc"), Err(Error::InvalidArgument(_))));
        assert!(matches!(ops.get("zzzz"), Err(Error::InvalidArgument(_))));
        let other = if op.id().starts_with("0000") { "1111" } else { "0000" };
        assert!(matches!(ops.get(other), Err(Error::NotFound(_))));
        assert_eq!(ops.get(&op.id().to_uppercase()).unwrap().id, op.id());
    }
}
