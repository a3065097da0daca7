//! The real host's `main`, built inside this package so the end-to-end tests can start it as a
//! separate process (`CARGO_BIN_EXE_host-under-test`) and `kill -9` it.

fn main() -> std::process::ExitCode {
    task_events_host::cli::main()
}
