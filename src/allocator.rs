//! Memory allocators of the `paddock` binary: jemalloc for Rust's heap,
//! glibc's malloc (with a fixed mmap threshold) for RocksDB's C++ heap.

/// Rust allocations go to jemalloc. Each write allocates and frees many
/// small, short-lived blocks (requests, log entries, undo records, replies)
/// across threads; glibc's malloc spent about a fifth of the server's CPU on
/// them (fastbin consolidation, arena locks). With jemalloc a single-node
/// create or multi costs 11-15 instead of 16-20 µs of server CPU.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once at its start-up (the `_rjem_` prefix is
/// tikv-jemalloc-sys's symbol prefix). By default jemalloc keeps freed pages
/// for 10 s before returning them, which kept a 100,000-znode fill at ~335
/// bytes per znode (large blocks outgrown while the tree filled stayed
/// resident). A background thread returning pages after 1 s, without the
/// intermediate "muzzy" state, brings it to ~260 at no cost to throughput.
/// A byte-array reference is a thin pointer, the `const char *` jemalloc reads.
#[export_name = "_rjem_malloc_conf"]
static MALLOC_CONF: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Large blocks of RocksDB's C++ heap (memtable arenas, a checkpoint's write
/// batch) always come from mmap and go back to the OS when freed. By default
/// glibc raises its mmap threshold to the size of each such block freed,
/// after which they come from the heap instead, where small long-lived
/// blocks allocated meanwhile pin them.
pub fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
