//! The pipelined driver (a session keeping `depth` requests outstanding),
//! and the bulk set-up and clean-up built on it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{join_all, BoxFuture};
use jute::ErrorCode;

use super::requests::{self, reply_error, Request};
use super::stats::{Live, Recorder, Window};
use crate::client::{Client, ClientError};

/// How long a request may stay unanswered before its session gives up.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Keeps up to `depth` requests from `next` outstanding on `client` until
/// `next` runs dry or the window closes, then waits for the last replies.
/// Servers answer a session in order, so the oldest request is always the
/// next to complete.
pub async fn drive<F>(client: &Client, depth: usize, window: &Window, live: &Live, mut next: F) -> Recorder
where
    F: FnMut() -> Option<Request>,
{
    let mut rec = Recorder::new();
    let mut inflight = VecDeque::with_capacity(depth);
    let mut exhausted = false;
    loop {
        while !exhausted && inflight.len() < depth.max(1) {
            let t0 = Instant::now();
            let req = if window.open(t0) { next() } else { None };
            let Some(req) = req else {
                exhausted = true;
                break;
            };
            match client.send(req.op, Some(&req.body)).await {
                Ok(rx) => inflight.push_back((t0, req.check, rx)),
                Err(_) => {
                    rec.failure(live, "connection lost");
                    return rec;
                }
            }
        }
        let Some((t0, check, rx)) = inflight.pop_front() else {
            return rec;
        };
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Err(_) => {
                rec.failure(live, "timeout");
                return rec;
            }
            Ok(Err(_)) | Ok(Ok(Err(_))) => {
                rec.failure(live, "connection lost");
                return rec;
            }
            Ok(Ok(Ok((header, body)))) => match reply_error(check, &header, &body) {
                0 => rec.success(window, live, t0, Instant::now()),
                code => rec.server_error(live, code),
            },
        }
    }
}

/// Creates `count` persistent nodes `{parent}/k{i}` holding `value`, spread
/// over all `clients`, `depth` outstanding on each.
pub async fn fill(clients: &[Arc<Client>], parent: &str, count: u64, value: &[u8], depth: usize, live: &Live) -> Recorder {
    let next = AtomicU64::new(0);
    let window = Window::unbounded();
    let sessions = clients.iter().map(|c| {
        drive(c, depth, &window, live, || {
            let i = next.fetch_add(1, Ordering::Relaxed);
            (i < count).then(|| requests::create(&format!("{parent}/k{i}"), value, 0))
        })
    });
    let mut total = Recorder::new();
    for rec in join_all(sessions).await {
        total.merge(rec);
    }
    total
}

/// Deletes `path` and everything under it, pipelining the deletes over all
/// `clients`. A missing `path` is fine.
pub fn delete_tree<'a>(clients: &'a [Arc<Client>], path: &'a str, depth: usize) -> BoxFuture<'a, Result<(), ClientError>> {
    Box::pin(async move {
        let Some(first) = clients.first() else {
            return Ok(());
        };
        // A few passes: children created meanwhile (or left non-empty) are
        // picked up by the next one.
        for _ in 0..8 {
            let children = match first.get_children(path, false).await {
                Ok(c) => c,
                Err(ClientError::Server(ErrorCode::NoNode)) => return Ok(()),
                Err(e) => return Err(e),
            };
            if children.is_empty() {
                break;
            }
            let base = if path == "/" { String::new() } else { path.to_string() };
            let paths: Vec<String> = children.iter().map(|c| format!("{base}/{c}")).collect();
            let next = AtomicUsize::new(0);
            let passes = join_all(clients.iter().map(|c| delete_some(c, &paths, &next, depth))).await;
            for not_empty in passes {
                for child in not_empty? {
                    delete_tree(clients, &child, depth).await?;
                }
            }
        }
        match first.delete(path, -1).await {
            Ok(()) | Err(ClientError::Server(ErrorCode::NoNode)) => Ok(()),
            Err(e) => Err(e),
        }
    })
}

/// Deletes paths taken from `paths` (shared cursor `next`) with `depth`
/// outstanding; returns those that still have children.
async fn delete_some(client: &Client, paths: &[String], next: &AtomicUsize, depth: usize) -> Result<Vec<String>, ClientError> {
    let mut not_empty = Vec::new();
    let mut inflight = VecDeque::with_capacity(depth);
    loop {
        while inflight.len() < depth.max(1) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = paths.get(i) else { break };
            let req = requests::delete(path);
            inflight.push_back((i, client.send(req.op, Some(&req.body)).await?));
        }
        let Some((i, rx)) = inflight.pop_front() else {
            return Ok(not_empty);
        };
        let closed = || ClientError::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection closed"));
        let (header, _) = tokio::time::timeout(REPLY_TIMEOUT, rx).await.map_err(|_| ClientError::Timeout)?.map_err(|_| closed())??;
        match ErrorCode::from_i32(header.err) {
            Some(ErrorCode::Ok) | Some(ErrorCode::NoNode) => {}
            Some(ErrorCode::NotEmpty) => not_empty.push(paths[i].clone()),
            other => return Err(ClientError::Server(other.unwrap_or(ErrorCode::SystemError))),
        }
    }
}
