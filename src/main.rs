//! The `cairn` binary: everything it does is `cairn::cli` (ARCHITECTURE.md).

/// mimalloc: indexing for search spends a tenth of its time in glibc malloc's locks
/// (benches/search.rs: ~100k -> ~113k records/s on 2 cores).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cairn::store::buffers::return_freed_memory_promptly();
    cairn::cli::main()
}
