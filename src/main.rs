//! The `cairn` binary: everything it does is `cairn::cli` (ARCHITECTURE.md).

/// mimalloc: indexing for search spends a tenth of its time in glibc malloc's locks
/// (benches/search.rs: ~100k -> ~113k records/s on 2 cores).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    return_freed_memory_promptly();
    cairn::cli::main()
}

/// mimalloc's defaults keep freed pages resident for a second, and (built without `no_thp`)
/// back its arenas with transparent huge pages, of which a freed 64 KiB leaves the whole 2 MiB
/// resident. An apply frees tens of MiB a second (segments read back, blocks handed to the
/// index), so its resident memory was about three times its heap: 210 MiB for a 72 MiB heap at
/// 1M records; 120 MiB with huge pages off (Cargo.toml) and freed pages returned at once
/// (benches/apply.rs, issue 28).
#[allow(unsafe_code)]
fn return_freed_memory_promptly() {
    // mimalloc.h, `enum mi_option_e`.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // Set for mimalloc in the environment, it is the operator's choice.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: one of mimalloc's documented options, a plain integer it reads when it next
    // purges; no pointers, and no other thread runs yet.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}
