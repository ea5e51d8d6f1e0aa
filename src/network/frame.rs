//! Length-prefixed frames: a 4-byte big-endian length, then the packet.
//!
//! Framing is done by hand rather than with a codec because the first four
//! bytes of a connection may instead be a four-letter word (`ruok`, `srvr`...).

use bytes::{BufMut, BytesMut};
use jute::{Record, ReplyHeader};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection or the socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The announced length is negative or above jute.maxbuffer.
    #[error("packet length {0} is out of range")]
    BadLength(i64),
}

/// Reads a frame's length prefix.
pub async fn read_len<R: AsyncRead + Unpin>(r: &mut R) -> Result<u32, FrameError> {
    Ok(r.read_u32().await?)
}

/// Checks a length prefix against the limit.
pub fn check_len(len: u32, max: usize) -> Result<usize, FrameError> {
    let signed = len as i32;
    if signed < 0 || signed as usize > max {
        return Err(FrameError::BadLength(signed as i64));
    }
    Ok(signed as usize)
}

/// Reads the body of a frame whose length is known.
pub async fn read_body<R: AsyncRead + Unpin>(r: &mut R, len: usize) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Reads one whole frame.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>, FrameError> {
    let len = check_len(read_len(r).await?, max)?;
    read_body(r, len).await
}

/// Appends a reply frame (length, header, body) to `out`.
pub fn put_reply(out: &mut BytesMut, header: &ReplyHeader, body: &[u8]) {
    let start = out.len();
    out.put_u32(0);
    header.write(out);
    out.extend_from_slice(body);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a frame holding one record (the connect response).
pub fn put_record<T: Record>(out: &mut BytesMut, record: &T) {
    let start = out.len();
    out.put_u32(0);
    record.write(out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_outside_the_limit_are_refused() {
        assert_eq!(check_len(10, 100).unwrap(), 10);
        assert!(check_len(101, 100).is_err());
        assert!(check_len(u32::MAX, 100).is_err());
    }

    #[tokio::test]
    async fn truncated_frames_are_errors() {
        let mut bytes: &[u8] = &[0, 0, 0, 5, 1, 2];
        assert!(read_frame(&mut bytes, 100).await.is_err());
        let mut ok: &[u8] = &[0, 0, 0, 2, 7, 8];
        assert_eq!(read_frame(&mut ok, 100).await.unwrap(), vec![7, 8]);
    }
}
