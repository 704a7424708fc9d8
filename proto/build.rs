//! Generates the agent API types (always) and gRPC stubs (feature "grpc")
//! from proto/api/lispmsx.proto. Needs `protoc` (Debian: protobuf-compiler).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    println!("cargo:rerun-if-changed=api/lispmsx.proto");
    if std::env::var_os("PROTOC").is_none() && which("protoc").is_none() {
        return Err("protoc not found: install Debian's protobuf-compiler (scripts/setup.sh does) or set PROTOC".into());
    }
    tonic_prost_build::configure()
        .build_server(grpc)
        .build_client(grpc)
        .build_transport(grpc)
        .type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]")
        .type_attribute(".", "#[serde(default)]")
        .compile_protos(&["api/lispmsx.proto"], &["api"])?;
    Ok(())
}

fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(cmd))
            .find(|p| p.is_file())
    })
}
