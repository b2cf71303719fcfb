//! Generates the Rust types of `proto/hes/v1/hes.proto` (needs `protoc`: Debian's
//! `protobuf-compiler`, installed by scripts/lib/ensure-toolchain).
fn main() -> std::io::Result<()> {
    // Read at run time, not baked in with `env!`: a build script compiled for another checkout
    // of the same workspace (CI's clean clone sharing the target directory) must look here.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").map_err(std::io::Error::other)?;
    let root = std::path::Path::new(&manifest).join("../../proto");
    let file = root.join("hes/v1/hes.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    prost_build::compile_protos(&[file], &[root])
}
