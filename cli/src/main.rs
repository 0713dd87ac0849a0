//! `socialctl`: see `lib.rs` for the commands and their exit codes.

fn main() -> std::process::ExitCode {
    socialctl::main()
}
