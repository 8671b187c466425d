//! What the containers' code tells listeners: lifecycle events where an action has
//! completed, and the long operations it runs (see crate::events).

use super::Manager;
use crate::events::{Event, OperationHandle, container_source, snapshot_source};

impl Manager {
    /// A container's lifecycle event: `action` (e.g. "container-started") happened to `name`.
    pub(super) fn lifecycle(&self, action: &str, name: &str, context: &[(&str, &str)]) {
        self.events
            .bus
            .send(Event::lifecycle(action, container_source(name), context));
    }

    /// A snapshot's lifecycle event.
    pub(super) fn snapshot_lifecycle(&self, action: &str, container: &str, snapshot: &str, context: &[(&str, &str)]) {
        self.events
            .bus
            .send(Event::lifecycle(action, snapshot_source(container, snapshot), context));
    }

    /// Begins a long operation on container `name` (none when empty); the caller finishes it.
    pub(super) fn operation(&self, kind: &str, description: String, name: &str) -> OperationHandle {
        let resources = if name.is_empty() {
            Vec::new()
        } else {
            vec![container_source(name)]
        };
        self.events.operations.begin(kind, description, resources)
    }
}
