//! Progress of a long request (create, launch), streamed to the client that asked.
//! The work goes on if the client goes away: a dropped receiver only silences it.
//! Stages also become the progress of the request's operation, if it has one.

use tokio::sync::mpsc::UnboundedSender;

use crate::events::OperationProgress;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step, e.g. "building image debian/bookworm".
    Stage(String),
    /// A line a template printed.
    Output { stderr: bool, line: String },
}

#[derive(Clone, Default)]
pub struct Progress {
    sender: Option<UnboundedSender<Event>>,
    operation: Option<OperationProgress>,
}

impl Progress {
    pub fn new(sender: UnboundedSender<Event>) -> Self {
        Self {
            sender: Some(sender),
            operation: None,
        }
    }

    /// Stages go to `operation` too.
    pub fn with_operation(mut self, operation: OperationProgress) -> Self {
        self.operation = Some(operation);
        self
    }

    pub fn stage(&self, text: impl Into<String>) {
        let text = text.into();
        if let Some(operation) = &self.operation {
            operation.report(text.clone());
        }
        self.send(Event::Stage(text));
    }

    pub fn output(&self, stderr: bool, line: String) {
        self.send(Event::Output { stderr, line });
    }

    fn send(&self, event: Event) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(event);
        }
    }
}
