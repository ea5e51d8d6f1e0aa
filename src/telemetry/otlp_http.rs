//! The HTTP client the OTLP exporter posts spans with: one blocking
//! HTTP/1.1 POST per batch over a fresh connection.
//!
//! The SDK's batch processor exports from a thread of its own and drives
//! the exporter's future to completion there, so blocking is what it
//! expects; a batch goes out every few seconds at most, so a new connection
//! per batch costs nothing worth a pool. Plain `http://` only: a collector
//! (or agent) beside the server is the usual set-up, and TLS to a remote one
//! would need a client trust store of its own.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// Longest wait to connect, and for each read or write after that.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest collector answer read (an OTLP answer is a few bytes).
const MAX_ANSWER: usize = 1 << 20;

/// The blocking OTLP/HTTP client (see the module comment).
#[derive(Debug)]
pub struct Client;

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        post(request)
    }
}

/// Refuses, at start-up, a collector address this client cannot post to.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let uri: http::Uri = endpoint.parse().map_err(|e| format!("OTLP endpoint {endpoint:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(()),
        Some("http") => Err(format!("OTLP endpoint {endpoint:?} names no host")),
        _ => Err(format!(
            "OTLP endpoint {endpoint:?}: paddock posts spans over plain http:// only \
             (run a collector or agent beside it)"
        )),
    }
}

fn post(request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
    let uri = request.uri();
    let host = uri.host().ok_or("OTLP endpoint without a host")?;
    let port = uri.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let addr = (host, port).to_socket_addrs()?.next().ok_or("OTLP endpoint resolves to no address")?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head = format!("{} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n", request.method());
    for (name, value) in request.headers() {
        if name != http::header::CONTENT_LENGTH && name != http::header::HOST && name != http::header::CONNECTION {
            head.push_str(&format!("{name}: {}\r\n", value.to_str()?));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", request.body().len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(request.body())?;
    // Read until the answer is whole (a collector that keeps the connection
    // open despite `Connection: close` must not hold the export up) or the
    // collector closes.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !is_whole(&answer) {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.len() > MAX_ANSWER {
            return Err("collector answer too large".into());
        }
    }
    parse_answer(&answer)
}

/// The head of an HTTP answer (before its blank line) and what follows it.
fn split_head(answer: &[u8]) -> Option<(&[u8], &[u8])> {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((&answer[..split], &answer[split + 4..]))
}

/// The header lines of a head (after its status line), as (name, value).
fn headers(head: &str) -> impl Iterator<Item = (&str, &str)> {
    head.split("\r\n").skip(1).filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim(), v.trim()))
}

/// The value of header `name` in `head` (names compare case-insensitively).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    headers(head).find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// Whether `head` announces a chunked body.
fn is_chunked(head: &str) -> bool {
    header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
}

/// True once `answer` holds its head and the whole body its head announces
/// (a length, or the last chunk); an answer with neither ends when the
/// connection does.
fn is_whole(answer: &[u8]) -> bool {
    let Some((head, body)) = split_head(answer) else { return false };
    let head = String::from_utf8_lossy(head);
    match header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => body.len() >= len,
        None => is_chunked(&head) && body.ends_with(b"0\r\n\r\n"),
    }
}

/// Reads an HTTP/1.1 answer read to its end (the request asked the
/// collector to close the connection after it).
fn parse_answer(answer: &[u8]) -> Result<Response<Bytes>, HttpError> {
    let (head, mut body) = split_head(answer).ok_or("collector answer without a header end")?;
    let head = std::str::from_utf8(head)?;
    let status_line = head.split("\r\n").next().unwrap_or_default();
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("collector answer without a status")?;
    if let Some(len) = header(head, "content-length") {
        let len: usize = len.parse()?;
        body = body.get(..len).ok_or("collector answer shorter than its length")?;
    }
    let body = if is_chunked(head) { dechunk(body)? } else { body.to_vec() };
    let builder = headers(head).fold(Response::builder().status(status), |b, (name, value)| b.header(name, value));
    Ok(builder.body(Bytes::from(body))?)
}

/// Joins the chunks of a chunked body.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n").ok_or("chunk without a size line")?;
        let size_text = std::str::from_utf8(&rest[..end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or("chunk shorter than its size")?);
        rest = rest.get(size + 2..).ok_or("chunk without its line end")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_length_chunks_or_neither() {
        let r = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 2\r\n\r\nabEXTRA").unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(&r.body()[..], b"ab");
        let r = parse_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(&r.body()[..], b"abcde");
        let r = parse_answer(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\n\r\nbusy").unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(&r.body()[..], b"busy");
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab").is_err());
        assert!(parse_answer(b"garbage").is_err());
    }

    #[test]
    fn an_answer_is_whole_once_its_body_is_in() {
        assert!(!is_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"));
        assert!(!is_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\na"));
        assert!(is_whole(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"));
        assert!(is_whole(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
        assert!(!is_whole(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n"));
        assert!(is_whole(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"));
        // Neither: read until the collector closes.
        assert!(!is_whole(b"HTTP/1.0 200 OK\r\n\r\nbody"));
    }

    #[test]
    fn only_plain_http_collectors() {
        assert!(check_endpoint("http://127.0.0.1:4318").is_ok());
        assert!(check_endpoint("http://collector:4318/v1/traces").is_ok());
        assert!(check_endpoint("https://collector:4318").is_err());
        assert!(check_endpoint("127.0.0.1:4318").is_err());
    }
}
