//! How a standalone gateway reaches the worker in its own process.

use std::future::Future;
use std::pin::Pin;

use axum::response::Response;
use url::Url;

use crate::pipeline::TransformOptions;

/// The boxed future of [`LocalWorker::get_or_fill`].
pub type FillFuture<'a> = Pin<Box<dyn Future<Output = Result<Response, Response>> + Send + 'a>>;

/// A worker the gateway calls directly instead of over HTTP. Implemented
/// next to the worker's HTTP routes, so the gateway needs neither the
/// worker's types nor its errors, and both answers are built alike.
pub trait LocalWorker: Send + Sync {
    /// The image answer (cached or filled now), or the error answer.
    fn get_or_fill<'a>(&'a self, url: &'a Url, options: &'a TransformOptions) -> FillFuture<'a>;
}
