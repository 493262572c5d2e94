//! `bench` with the example plugin registered.

fn main() -> std::process::ExitCode {
    bench::main_with(bench_plugin_example::plugins())
}
