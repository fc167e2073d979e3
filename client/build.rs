//! Compiles `proto/traceo.proto` with protox (pure Rust): no system `protoc` is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["proto/traceo.proto"], ["proto"])?;
    tonic_prost_build::configure()
        // Lets tools print API messages as JSON (`traceo profile --json`, status dumps).
        .type_attribute(".traceo.v1", "#[derive(serde::Serialize)]")
        .compile_fds(fds)?;
    Ok(())
}
