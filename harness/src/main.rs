fn main() -> std::process::ExitCode {
    bench::main_with(bench::Plugins::default())
}
