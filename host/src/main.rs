fn main() -> std::process::ExitCode {
    task_events_host::cli::main()
}
