fn main() -> std::process::ExitCode {
    sealbox::cli::run()
}
