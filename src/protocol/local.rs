//! How a standalone gateway reaches the worker in its own process.

use std::future::Future;
use std::pin::Pin;
use std::time::SystemTime;

use axum::response::Response;
use url::Url;

use super::stats::WorkerStats;
use crate::pipeline::TransformOptions;

/// The boxed future of [`LocalWorker::purge`]: the entries removed.
pub type PurgeFuture<'a> = Pin<Box<dyn Future<Output = usize> + Send + 'a>>;

/// The boxed future of [`LocalWorker::stats`].
pub type StatsFuture<'a> = Pin<Box<dyn Future<Output = WorkerStats> + Send + 'a>>;

/// The boxed future of [`LocalWorker::get_or_fill`].
pub type FillFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, Response>> + Send + 'a>>;

/// A worker the gateway calls directly instead of over HTTP. Implemented
/// next to the worker's HTTP routes, so the gateway needs neither the
/// worker's types nor its errors, and both answers are built alike.
pub trait LocalWorker: Send + Sync {
    /// The image answer (cached or filled now), or the error answer.
    fn get_or_fill<'a>(&'a self, url: &'a Url, options: &'a TransformOptions) -> FillFuture<'a>;

    /// The info answer of `url` (cached or made now), or the error answer.
    fn info<'a>(&'a self, url: &'a Url) -> FillFuture<'a>;

    /// Drops every cached copy of `url` stored at or before `at`.
    fn purge<'a>(&'a self, url: &'a Url, at: SystemTime) -> PurgeFuture<'a>;

    /// The cache figures, as `GET /v1/stats` reports them.
    fn stats(&self) -> StatsFuture<'_>;
}
