//! Compiles the project's `.proto` files with `protox` (a protobuf compiler in Rust, so no
//! `protoc` is needed on the build machine) and generates the message types with `prost-build`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/runner/v1/messages.proto",
        "proto/ping/v1/messages.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
