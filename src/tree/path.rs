//! Znode path rules, as ZooKeeper's `PathUtils.validatePath` enforces them.

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty, relative, or has an empty, `.` or `..` segment,
    /// a trailing slash, or a forbidden character.
    #[error("invalid path {0:?}")]
    Invalid(String),
}

/// Checks a path a client sent (a sequential create's with its number).
pub fn validate(path: &str) -> Result<(), PathError> {
    let bad = || Err(PathError::Invalid(path.to_string()));
    if !path.starts_with('/') {
        return bad();
    }
    if path.len() == 1 {
        return Ok(());
    }
    // (Checked on every write, so without collecting the segments.)
    for seg in path[1..].split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return bad();
        }
        for c in seg.chars() {
            let code = c as u32;
            if code == 0
                || (0x1..=0x1f).contains(&code)
                || (0x7f..=0x9f).contains(&code)
                || (0xd800..=0xf8ff).contains(&code)
                || (0xfff0..=0xffff).contains(&code)
            {
                return bad();
            }
        }
    }
    Ok(())
}

/// The parent of a valid, non-root path (`/a/b` -> `/a`, `/a` -> `/`).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// The last segment of a valid, non-root path.
pub fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses_like_zookeeper() {
        for ok in ["/", "/a", "/a/b", "/a-b_c.d", "/zookeeper/quota", "/a/.b", "/a/b.."] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "/a/", "//", "/a//b", "/a/./b", "/a/..", "/.", "/a\u{0}b", "/a\u{1}"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        // A sequential create's `/a/` and `/a/..` are checked as `/a/0000000001`
        // and `/a/..0000000001`: fine names.
        assert!(validate("/a/0000000001").is_ok());
        assert!(validate("/a/..0000000001").is_ok());
    }

    #[test]
    fn parent_and_basename() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b/c"), "/a/b");
        assert_eq!(basename("/a/b/c"), "c");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }
}
