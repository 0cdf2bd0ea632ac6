//! Puts `memory.x` on the linker's path, links with cortex-m-rt's `link.x`, and converts the committed UMAFall excerpts
//! (`../tests/fixtures/umafall/`) into replay records with the firmware's own trace
//! reader — the same code `fall-eval` runs.

use std::error::Error;
use std::path::PathBuf;

use anxin_firmware::fall::trace::{Position, read_umafall};

const TRACES: [(&str, &str); 2] = [
    (
        "fall",
        "UMAFall_Subject_02_Fall_forwardFall_1_2016-06-13_20-43-52.csv",
    ),
    (
        "adl",
        "UMAFall_Subject_05_ADL_Jogging_3_2016-06-15_21-46-58.csv",
    ),
];

fn main() -> Result<(), Box<dyn Error>> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR unset")?);
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("no manifest dir")?);
    std::fs::copy(manifest.join("memory.x"), out.join("memory.x"))?;
    println!("cargo:rustc-link-search={}", out.display());
    // cortex-m-rt's linker script (here rather than in rustflags, which a RUSTFLAGS
    // environment variable would replace)
    println!("cargo:rustc-link-arg=-Tlink.x");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    let fixtures = manifest.join("../tests/fixtures/umafall");
    for (name, file) in TRACES {
        let path = fixtures.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path)?;
        let trace = read_umafall(file, &text, Position::Chest, 50, true)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(out.join(format!("{name}.bin")), trace.to_records())?;
    }
    Ok(())
}
