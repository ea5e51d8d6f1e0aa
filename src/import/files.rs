//! ZooKeeper's files: finding the newest snapshot and the logs that follow
//! it, and reading both (FileSnap, FileTxnLog and SnapStream's formats).
//!
//! A snapshot is a file header, the sessions (id, timeout), the ACL table,
//! every node as (path, data, ACL key, stat) from the root (path "") down,
//! ended by the path "/", then an Adler-32 of everything before it (and,
//! since 3.6, a digest and the last zxid, each sealed the same way). With
//! `zookeeper.snapshot.compression.method` set, the whole of that is gzip
//! (`snapshot.<zxid>.gz`) or snappy-java's stream (`.snappy`), and the
//! Adler-32 is of the uncompressed bytes. A log
//! is a file header, then per transaction: its Adler-32, its length, the
//! header and body, and the byte 'B'. Logs are preallocated with zeros, so
//! a zero length is the end.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use jute::txn::{FileHeader, SnapshotNode, TxnHeader};
use jute::{Acl, Reader, Record};

use super::ImportError;
use crate::tree::AclEntry;

/// "ZKSN": the magic of a snapshot file.
pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
/// "ZKLG": the magic of a transaction log file.
const LOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
/// The only file format ZooKeeper has written since 3.0.
pub const FORMAT_VERSION: i32 = 2;
/// The ACL key ZooKeeper keeps out of the table: open to everyone.
pub const OPEN_ACL_KEY: i64 = -1;

/// A snapshot as read: what ZooKeeper had applied up to (at least) `zxid`.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The file it came from.
    pub path: PathBuf,
    /// The zxid in its name: every later transaction is replayed on it.
    pub zxid: i64,
    /// Sessions and their timeouts, ms.
    pub sessions: Vec<(i64, i32)>,
    /// The ACL table (key -> list).
    pub acls: HashMap<i64, Vec<AclEntry>>,
    /// Every node, parents before children, the root as "/".
    pub nodes: Vec<(String, SnapshotNode)>,
}

/// One logged transaction: its header and the body that follows it.
#[derive(Debug)]
pub struct Logged {
    /// The header (session, zxid, time, type).
    pub header: TxnHeader,
    /// The body's encoding (possibly followed by a digest, ignored).
    pub body: Vec<u8>,
}

/// Where the files are: `dir/version-2` if it exists (a dataDir or
/// dataLogDir as zoo.cfg names it), else `dir` itself.
pub fn version_dir(dir: &Path) -> PathBuf {
    let v2 = dir.join("version-2");
    if v2.is_dir() {
        v2
    } else {
        dir.to_path_buf()
    }
}

/// The files in `dir` named `prefix.<hex zxid>`, oldest first.
fn listed(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, ImportError> {
    let io = |e| ImportError::Io { path: dir.to_path_buf(), source: e };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(prefix)).and_then(|n| n.strip_prefix('.')) else {
            continue;
        };
        // Compressed snapshots (see `decompress`).
        let hex = hex.strip_suffix(".gz").or_else(|| hex.strip_suffix(".snappy")).unwrap_or(hex);
        if let Ok(zxid) = i64::from_str_radix(hex, 16) {
            out.push((zxid, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a whole file.
fn read_all(path: &Path) -> Result<Vec<u8>, ImportError> {
    std::fs::read(path).map_err(|e| ImportError::Io { path: path.to_path_buf(), source: e })
}

/// The newest snapshot in `dir` that reads whole (an older one if the
/// newest was cut short, as ZooKeeper falls back too).
pub fn newest_snapshot(dir: &Path) -> Result<Snapshot, ImportError> {
    let snapshots = listed(dir, "snapshot")?;
    let mut last_error = None;
    for (zxid, path) in snapshots.into_iter().rev() {
        match read_snapshot(&path, zxid) {
            Ok(s) => return Ok(s),
            Err(e) => {
                tracing::warn!("skipping ZooKeeper snapshot {}: {e}", path.display());
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| ImportError::NoSnapshot(dir.to_path_buf())))
}

/// A snapshot's bytes as ZooKeeper's SnapStream reads them: gunzipped
/// (`.gz`), un-snappied (`.snappy`), else as stored.
fn decompress(path: &Path, stored: Vec<u8>) -> Result<Vec<u8>, String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&stored[..]).read_to_end(&mut out).map_err(|e| format!("gzip: {e}"))?;
            Ok(out)
        }
        Some("snappy") => unsnappy(&stored),
        _ => Ok(stored),
    }
}

/// The magic that starts snappy-java's stream format.
const SNAPPY_MAGIC: &[u8] = b"\x82SNAPPY\0";

/// Reads snappy-java's stream (SnappyOutputStream): the magic and two
/// 4-byte versions, then blocks, each a 4-byte big-endian length and a raw
/// Snappy block. A stream may go on with another, header and all.
fn unsnappy(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    if !rest.starts_with(SNAPPY_MAGIC) {
        return Err("not a snappy-java stream".into());
    }
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    while !rest.is_empty() {
        if rest.starts_with(SNAPPY_MAGIC) {
            rest = rest.get(SNAPPY_MAGIC.len() + 8..).ok_or("snappy header cut short")?;
            continue;
        }
        let (len, after) = rest.split_first_chunk::<4>().ok_or("snappy block length cut short")?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = after.get(..len).ok_or("snappy block cut short")?;
        out.extend_from_slice(&decoder.decompress_vec(block).map_err(|e| format!("snappy: {e}"))?);
        rest = &after[len..];
    }
    Ok(out)
}

/// Reads the snapshot at `path`, whose name says `zxid`.
pub fn read_snapshot(path: &Path, zxid: i64) -> Result<Snapshot, ImportError> {
    let bad = |what: String| ImportError::Corrupt { path: path.to_path_buf(), what };
    let bytes = decompress(path, read_all(path)?).map_err(bad)?;
    let decode = |e: jute::DecodeError| bad(e.to_string());
    let mut r = Reader::new(&bytes);
    check_header(&mut r, SNAP_MAGIC).map_err(bad)?;
    let mut snap = Snapshot { path: path.to_path_buf(), zxid, ..Snapshot::default() };
    let sessions = r.read_i32().map_err(decode)?;
    for _ in 0..sessions.max(0) {
        snap.sessions.push((r.read_i64().map_err(decode)?, r.read_i32().map_err(decode)?));
    }
    let acls = r.read_i32().map_err(decode)?;
    for _ in 0..acls.max(0) {
        let key = r.read_i64().map_err(decode)?;
        let list: Vec<Acl> = r.read_vec().map_err(decode)?;
        snap.acls.insert(key, list.iter().map(AclEntry::from_wire).collect());
    }
    loop {
        let node_path = r.read_string().map_err(decode)?;
        if node_path == "/" {
            break;
        }
        let node = SnapshotNode::read(&mut r).map_err(decode)?;
        let node_path = if node_path.is_empty() { "/".to_string() } else { node_path };
        snap.nodes.push((node_path, node));
    }
    let sealed = &bytes[..bytes.len() - r.remaining()];
    let checksum = r.read_i64().map_err(decode)?;
    if checksum != i64::from(adler32(sealed)) {
        return Err(bad("checksum does not match (a snapshot cut short?)".into()));
    }
    Ok(snap)
}

/// Checks a file header's magic and version.
fn check_header(r: &mut Reader<'_>, magic: i32) -> Result<(), String> {
    let h = FileHeader::read(r).map_err(|e| e.to_string())?;
    if h.magic != magic {
        return Err(format!("not a ZooKeeper file (magic {:#x})", h.magic));
    }
    if h.version != FORMAT_VERSION {
        return Err(format!("format version {} (only {FORMAT_VERSION} is known)", h.version));
    }
    Ok(())
}

/// Hands `each` every transaction after `zxid` in the logs of `dir`, in
/// order, one log file in memory at a time.
///
/// The logs read are the last one that starts at or before `zxid + 1`
/// (it holds the first transaction after the snapshot) and all later ones.
pub fn transactions_after(dir: &Path, zxid: i64, mut each: impl FnMut(&Logged) -> Result<(), ImportError>) -> Result<(), ImportError> {
    let logs = listed(dir, "log")?;
    let first = logs.iter().rposition(|(start, _)| *start <= zxid + 1).unwrap_or(0);
    for (_, path) in &logs[first..] {
        for t in read_log(path)?.iter().filter(|t| t.header.zxid > zxid) {
            each(t)?;
        }
    }
    Ok(())
}

/// Reads every transaction in one log file.
pub fn read_log(path: &Path) -> Result<Vec<Logged>, ImportError> {
    let bytes = read_all(path)?;
    let bad = |what: String| ImportError::Corrupt { path: path.to_path_buf(), what };
    let mut r = Reader::new(&bytes);
    check_header(&mut r, LOG_MAGIC).map_err(bad)?;
    let mut out = Vec::new();
    // Each entry: checksum (8), length (4), the entry, 'B'. A zero length,
    // or a file that ends mid-entry, is where ZooKeeper stopped writing.
    while r.remaining() >= 12 {
        let (Ok(checksum), Ok(len)) = (r.read_i64(), r.read_i32()) else { break };
        let Ok(len) = usize::try_from(len) else { break };
        let rest = r.rest();
        if len == 0 || rest.len() < len + 1 || rest[len] != b'B' {
            break;
        }
        let entry = &rest[..len];
        if checksum != i64::from(adler32(entry)) {
            return Err(bad(format!("transaction {} fails its checksum", out.len() + 1)));
        }
        let mut e = Reader::new(entry);
        let header = TxnHeader::read(&mut e).map_err(|e| bad(e.to_string()))?;
        out.push(Logged { header, body: e.rest().to_vec() });
        r = Reader::new(&rest[len + 1..]);
    }
    Ok(out)
}

/// Adler-32 (RFC 1950), the checksum ZooKeeper's files use.
pub fn adler32(data: &[u8]) -> u32 {
    let mut sum = Adler32::default();
    sum.update(data);
    sum.value()
}

/// Adler-32 fed in pieces, as Java's `CheckedOutputStream` keeps it over
/// everything written so far.
#[derive(Debug, Clone, Copy)]
pub struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Self {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    const MOD: u32 = 65521;

    /// Adds `data` to the sum.
    pub fn update(&mut self, data: &[u8]) {
        // 5552 bytes is the most that cannot overflow `b` before the modulo.
        for chunk in data.chunks(5552) {
            for &x in chunk {
                self.a += u32::from(x);
                self.b += self.a;
            }
            self.a %= Self::MOD;
            self.b %= Self::MOD;
        }
    }

    /// The checksum of everything added.
    pub fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_snapshots_of_a_real_zookeeper_read_as_plain_ones() {
        // compat/snapshots/make-snapshots.sh: ZooKeeper 3.8 holding /a and /a/b.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("compat/snapshots");
        for name in ["snapshot.4.gz", "snapshot.4.snappy"] {
            let snap = newest_snapshot_of(&dir, name);
            let data: Vec<(&str, &[u8])> = snap.nodes.iter().map(|(p, n)| (p.as_str(), n.data.as_deref().unwrap_or_default())).collect();
            assert!(data.contains(&("/a", &b"hello"[..])) && data.contains(&("/a/b", &b"x"[..])), "{name}: {data:?}");
            assert_eq!(snap.zxid, 4, "{name}");
            // Cut short: an error (the import falls back to an older one), not a panic.
            let whole = std::fs::read(dir.join(name)).unwrap();
            let cut = tempfile::tempdir().unwrap();
            std::fs::write(cut.path().join(name), &whole[..whole.len() / 2]).unwrap();
            assert!(read_snapshot(&cut.path().join(name), 4).is_err(), "{name} cut short");
        }
        assert!(unsnappy(b"plain bytes").is_err());
    }

    /// Reads `name` from `dir` as the import finds it there.
    fn newest_snapshot_of(dir: &Path, name: &str) -> Snapshot {
        let only = tempfile::tempdir().unwrap();
        std::fs::copy(dir.join(name), only.path().join(name)).unwrap();
        newest_snapshot(only.path()).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn adler32_matches_the_rfc() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let long = vec![0xFFu8; 100_000];
        // Reference value from zlib.adler32.
        assert_eq!(adler32(&long), 0x149A_302C);
        // Fed in uneven pieces, the same sum.
        let mut sum = Adler32::default();
        for piece in long.chunks(7001) {
            sum.update(piece);
        }
        assert_eq!(sum.value(), 0x149A_302C);
    }

    #[test]
    fn a_log_ends_at_zeros_or_a_partial_entry() {
        use bytes::BytesMut;
        let mut file = BytesMut::new();
        FileHeader { magic: LOG_MAGIC, version: 2, dbid: 0 }.write(&mut file);
        let mut entry = BytesMut::new();
        TxnHeader { client_id: 7, cxid: 1, zxid: 0x1_0000_0001, time: 5, kind: -10 }.write(&mut entry);
        jute::write_i32(&mut entry, 30_000);
        let push = |file: &mut BytesMut, entry: &[u8]| {
            jute::write_i64(file, i64::from(adler32(entry)));
            jute::write_i32(file, entry.len() as i32);
            file.extend_from_slice(entry);
            file.extend_from_slice(b"B");
        };
        push(&mut file, &entry);
        let whole = file.len();
        file.extend_from_slice(&[0u8; 64]);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.100000001");
        std::fs::write(&path, &file).expect("write");
        let read = read_log(&path).expect("read");
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].header.zxid, 0x1_0000_0001);
        assert_eq!(read[0].body, 30_000i32.to_be_bytes());
        // Cut mid-entry: the entry is dropped, not an error.
        std::fs::write(&path, &file[..whole - 3]).expect("write");
        assert_eq!(read_log(&path).expect("read").len(), 0);
        // A flipped byte inside an entry is an error.
        let mut bad = file.to_vec();
        bad[whole - 2] ^= 1;
        std::fs::write(&path, &bad).expect("write");
        assert!(matches!(read_log(&path), Err(ImportError::Corrupt { .. })));
    }
}
