//! Builds the bind shim HTTP functions' instances are started with
//! (`runtimes/http/bind_shim.c`) as a shared object the engine embeds and
//! writes out at start. It is a C file rather than Rust because it must be a
//! small `LD_PRELOAD` library with no runtime of its own.

use std::path::PathBuf;

fn main() {
    let source = PathBuf::from("../../runtimes/http/bind_shim.c");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let library = out.join("libcloudlet_bind_shim.so");
    let compiler = cc::Build::new().get_compiler();
    let status = compiler
        .to_command()
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .expect("a C compiler runs (gcc or cc)");
    assert!(status.success(), "the bind shim did not compile");
}
