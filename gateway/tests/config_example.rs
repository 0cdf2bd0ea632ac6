//! The commented example configuration at the repository root stays loadable: every key
//! in it exists, with the type the gateway expects.

#[test]
fn the_example_configuration_file_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../anxin.example.toml");
    let c = anxin_gateway::config::Config::load(Some(&path)).expect("anxin.example.toml loads");
    assert_eq!(c.general.timezone, "Asia/Shanghai");
    assert_eq!(c.broker.max_inflight, 1024);
}
