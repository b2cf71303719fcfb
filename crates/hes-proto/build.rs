//! Generates the Rust types of `proto/hes/v1/hes.proto` (needs `protoc`: Debian's
//! `protobuf-compiler`, installed by scripts/lib/ensure-toolchain).
fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = root.join("hes/v1/hes.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    prost_build::compile_protos(&[file], &[root])
}
