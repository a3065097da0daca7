//! Every sidecar call the pipeline makes, timed and counted by operation and result.
//!
//! A wrapper around the `Sidecar` (daprd over HTTP, or the embedded one), so the pipeline's code
//! stays free of timing and every call is measured, retries included: one retried publish is
//! several calls here, and one `task_events_sidecar_retries_total`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Metrics, SidecarOp};
use crate::sidecar::{
    BoxFuture, Concurrency, PublishRequest, SaveItem, Sidecar, SidecarApi, SidecarError, StateEntry,
};

pub struct Instrumented {
    inner: Sidecar,
    metrics: Arc<Metrics>,
}

impl Instrumented {
    /// `inner`, with every call recorded in `metrics`.
    pub fn wrap(inner: Sidecar, metrics: Arc<Metrics>) -> Sidecar {
        Arc::new(Instrumented { inner, metrics })
    }

    async fn timed<T>(
        &self,
        op: SidecarOp,
        call: BoxFuture<'_, Result<T, SidecarError>>,
    ) -> Result<T, SidecarError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics.sidecar_call(op, started.elapsed(), &result);
        result
    }
}

impl SidecarApi for Instrumented {
    fn publish(&self, req: PublishRequest) -> BoxFuture<'_, Result<(), SidecarError>> {
        Box::pin(self.timed(SidecarOp::Publish, self.inner.publish(req)))
    }

    fn get_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<StateEntry>, SidecarError>> {
        Box::pin(self.timed(SidecarOp::GetState, self.inner.get_state(store, key)))
    }

    fn save_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        value: Bytes,
        concurrency: Concurrency,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        let call = self.inner.save_state(store, key, value, concurrency, ttl);
        Box::pin(self.timed(SidecarOp::SaveState, call))
    }

    fn delete_state<'a>(
        &'a self,
        store: &'a str,
        key: &'a str,
        etag: Option<String>,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        let call = self.inner.delete_state(store, key, etag);
        Box::pin(self.timed(SidecarOp::DeleteState, call))
    }

    fn schedule_job<'a>(
        &'a self,
        name: &'a str,
        due_in: Duration,
        data: Bytes,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        let call = self.inner.schedule_job(name, due_in, data);
        Box::pin(self.timed(SidecarOp::ScheduleJob, call))
    }

    fn delete_job<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), SidecarError>> {
        Box::pin(self.timed(SidecarOp::DeleteJob, self.inner.delete_job(name)))
    }

    fn get_bulk_state<'a>(
        &'a self,
        store: &'a str,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<StateEntry>>, SidecarError>> {
        let call = self.inner.get_bulk_state(store, keys);
        Box::pin(self.timed(SidecarOp::BulkGetState, call))
    }

    fn save_bulk_state<'a>(
        &'a self,
        store: &'a str,
        items: Vec<SaveItem>,
    ) -> BoxFuture<'a, Result<(), SidecarError>> {
        let call = self.inner.save_bulk_state(store, items);
        Box::pin(self.timed(SidecarOp::BulkSaveState, call))
    }

    fn publish_bulk(
        &self,
        messages: Vec<PublishRequest>,
    ) -> BoxFuture<'_, Result<(), SidecarError>> {
        Box::pin(self.timed(SidecarOp::BulkPublish, self.inner.publish_bulk(messages)))
    }
}
