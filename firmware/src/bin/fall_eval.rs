//! `fall-eval`: runs the firmware's fall detector over recorded traces (issue 8).
fn main() {
    eprintln!("fall-eval: not built yet");
    std::process::exit(2);
}
