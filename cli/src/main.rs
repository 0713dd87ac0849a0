//! `socialctl`: see `lib.rs` for the commands and their exit codes.

/// mimalloc instead of glibc's malloc: `socialctl load` allocates a little per request
/// on every worker thread, and glibc's allocator was a sixth of its CPU.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    socialctl::main()
}
