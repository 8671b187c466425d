//! Exec and console sessions last as long as their command or the container. When syscd
//! stops they end with a status that says so; else the server's graceful shutdown would
//! wait for them, and a new syscd could not open the database meanwhile.

use std::pin::Pin;

use futures::{Stream, StreamExt, stream};
use tonic::Status;

use crate::events::EventBus;

pub type Session<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

pub fn until_stopping<T: Send + 'static>(
    responses: impl Stream<Item = Result<T, Status>> + Send + 'static,
    bus: &EventBus,
) -> Session<T> {
    let bus = bus.clone();
    let cut = responses.take_until(bus.closing());
    let notice = stream::once(async move { bus.is_closed() })
        .filter_map(|stopping| async move { stopping.then(|| Err(Status::unavailable("syscd is stopping"))) });
    Box::pin(cut.chain(notice))
}
