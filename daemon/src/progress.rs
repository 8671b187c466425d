//! Progress of a long request (create, launch), streamed to the client that asked.
//! The work goes on if the client goes away: a dropped receiver only silences it.

use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A step, e.g. "building image debian/bookworm".
    Stage(String),
    /// A line a template printed.
    Output { stderr: bool, line: String },
}

#[derive(Clone, Default)]
pub struct Progress(Option<UnboundedSender<Event>>);

impl Progress {
    pub fn new(sender: UnboundedSender<Event>) -> Self {
        Self(Some(sender))
    }

    pub fn stage(&self, text: impl Into<String>) {
        self.send(Event::Stage(text.into()));
    }

    pub fn output(&self, stderr: bool, line: String) {
        self.send(Event::Output { stderr, line });
    }

    fn send(&self, event: Event) {
        if let Some(sender) = &self.0 {
            let _ = sender.send(event);
        }
    }
}
