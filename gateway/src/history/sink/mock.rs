//! A sink for tests: records what it accepted, and fails on demand (an outage, or a
//! server that rejects certain points).

use std::sync::{Arc, Mutex};

use super::{HistorySink, SinkError, SinkPoint};

#[derive(Debug, Default)]
struct State {
    accepted: Vec<SinkPoint>,
    batches: usize,
    attempts: usize,
    down: bool,
    reject_field: Option<String>,
}

/// Records accepted points; cheap to clone (clones share the record).
#[derive(Debug, Clone, Default)]
pub struct MockSink(Arc<Mutex<State>>);

impl MockSink {
    /// A working sink.
    pub fn new() -> MockSink {
        MockSink::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        match self.0.lock() {
            Ok(mut s) => f(&mut s),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// While `down`, every write fails as if the server were unreachable.
    pub fn set_down(&self, down: bool) {
        self.with(|s| s.down = down);
    }

    /// Batches containing `field` are rejected (HTTP 400), as a server refuses a field of
    /// the wrong type.
    pub fn reject_field(&self, field: Option<&str>) {
        self.with(|s| s.reject_field = field.map(str::to_string));
    }

    /// Every accepted point, in the order accepted.
    pub fn accepted(&self) -> Vec<SinkPoint> {
        self.with(|s| s.accepted.clone())
    }

    /// Accepted batches.
    pub fn batches(&self) -> usize {
        self.with(|s| s.batches)
    }

    /// Write attempts, failed ones included.
    pub fn attempts(&self) -> usize {
        self.with(|s| s.attempts)
    }
}

impl HistorySink for MockSink {
    fn name(&self) -> &'static str {
        "mock"
    }

    async fn write(&self, points: &[SinkPoint]) -> Result<(), SinkError> {
        self.with(|s| {
            s.attempts += 1;
            if s.down {
                return Err(SinkError::Unreachable("mock sink is down".into()));
            }
            if let Some(f) = &s.reject_field
                && points.iter().any(|p| p.fields.iter().any(|(k, _)| k == f))
            {
                return Err(SinkError::Rejected {
                    status: 400,
                    text: format!("field {f} has the wrong type"),
                });
            }
            s.accepted.extend_from_slice(points);
            s.batches += 1;
            Ok(())
        })
    }
}
