//! Key and trust stores replaced while serving. ZooKeeper 3.8 reads the
//! quorum's again when their files change with `sslQuorumReloadCertFiles=true`
//! (3.9 the client port's, with `client.certReload=true`), so certificates
//! can be rotated, and a new CA trusted, without a restart.
//!
//! A thread looks at the files' size and modification time every [`POLL`];
//! when they change it builds the TLS set-up again from zoo.cfg's settings
//! and puts it in place for the next handshake. Connections already open
//! keep the set-up they began with. Stores that do not read (copied half
//! way, a wrong password) leave the last good set-up serving: the thread
//! says why once and tries again at each look until they read.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use super::tls::TlsError;

/// How often the store files are looked at.
pub const POLL: Duration = Duration::from_secs(1);

/// A TLS set-up that may be replaced while in use; cheap to clone.
#[derive(Debug)]
pub struct Reloading<T>(Arc<RwLock<T>>);

impl<T> Clone for Reloading<T> {
    fn clone(&self) -> Self {
        Reloading(self.0.clone())
    }
}

impl<T: Clone> Reloading<T> {
    /// A set-up that stays as it is unless [`Reloading::watch`] is called.
    pub fn new(value: T) -> Self {
        Reloading(Arc::new(RwLock::new(value)))
    }

    /// The set-up for the next handshake.
    pub fn current(&self) -> T {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl<T: Clone + Send + Sync + 'static> Reloading<T> {
    /// Rebuilds with `build` whenever one of `files` changes, on a thread
    /// that ends with the last clone of this set-up. `what` names the
    /// set-up in the log.
    pub fn watch(&self, what: &'static str, files: Vec<PathBuf>, build: impl Fn() -> Result<T, TlsError> + Send + 'static) {
        let mut watcher = Watcher::new(Arc::downgrade(&self.0), what, files, Box::new(build));
        let spawned = std::thread::Builder::new().name("cert-reload".into()).spawn(move || {
            while watcher.target.strong_count() > 0 {
                std::thread::sleep(POLL);
                watcher.check();
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("{what}: cannot watch the store files for changes: {e}");
        }
    }
}

/// What a file looked like: its size and modification time (`None`: missing).
type Look = Option<(u64, SystemTime)>;

/// Looks at store files and rebuilds a set-up when they change.
struct Watcher<T> {
    target: Weak<RwLock<T>>,
    what: &'static str,
    files: Vec<PathBuf>,
    build: Box<dyn Fn() -> Result<T, TlsError> + Send>,
    /// The files as the set-up in place was built from them.
    built_from: Vec<Look>,
    /// The files as they were when a rebuild last failed (said once).
    failed_at: Option<Vec<Look>>,
}

impl<T> Watcher<T> {
    fn new(target: Weak<RwLock<T>>, what: &'static str, files: Vec<PathBuf>, build: Box<dyn Fn() -> Result<T, TlsError> + Send>) -> Self {
        let built_from = look(&files);
        Watcher { target, what, files, build, built_from, failed_at: None }
    }

    /// Looks at the files once; returns true if the set-up was replaced.
    fn check(&mut self) -> bool {
        let now = look(&self.files);
        if now == self.built_from {
            return false;
        }
        let Some(target) = self.target.upgrade() else { return false };
        let names = || self.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ");
        match (self.build)() {
            Ok(fresh) => {
                *target.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                tracing::info!("{}: reloaded from {}", self.what, names());
                self.built_from = now;
                self.failed_at = None;
                true
            }
            Err(e) => {
                if self.failed_at.as_ref() != Some(&now) {
                    tracing::warn!("{}: {} changed but cannot be used ({e}); still serving the previous certificates", self.what, names());
                    self.failed_at = Some(now);
                }
                false
            }
        }
    }
}

/// The size and modification time of each file.
fn look(files: &[PathBuf]) -> Vec<Look> {
    files.iter().map(|f| std::fs::metadata(f).ok().and_then(|m| Some((m.len(), m.modified().ok()?)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn a_changed_file_rebuilds_and_a_bad_one_keeps_the_last_good_set_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::write(&store, "one").unwrap();
        let setup = Reloading::new("one".to_string());
        let builds = Arc::new(AtomicU32::new(0));
        let (file, count) = (store.clone(), builds.clone());
        let build = move || {
            count.fetch_add(1, Ordering::Relaxed);
            let text = std::fs::read_to_string(&file).map_err(|e| TlsError::Setup(e.to_string()))?;
            if text.starts_with("bad") {
                return Err(TlsError::Setup("does not read".into()));
            }
            Ok(text)
        };
        let mut watcher = Watcher::new(Arc::downgrade(&setup.0), "test", vec![store.clone()], Box::new(build));
        assert!(!watcher.check(), "nothing changed");
        assert_eq!(builds.load(Ordering::Relaxed), 0);

        std::fs::write(&store, "two!").unwrap();
        assert!(watcher.check());
        assert_eq!(setup.current(), "two!");
        assert!(!watcher.check(), "built from these files already");

        // A store that does not read: the last good one stays, and it is
        // tried again at each look until it reads.
        std::fs::write(&store, "bad, half copied").unwrap();
        assert!(!watcher.check());
        assert!(!watcher.check());
        assert_eq!(setup.current(), "two!");
        assert_eq!(builds.load(Ordering::Relaxed), 3);
        std::fs::write(&store, "three, whole").unwrap();
        assert!(watcher.check());
        assert_eq!(setup.current(), "three, whole");

        // A removed file is a change too (and does not read).
        std::fs::remove_file(&store).unwrap();
        assert!(!watcher.check());
        assert_eq!(setup.current(), "three, whole");
    }
}
