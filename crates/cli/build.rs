//! With the `tch` feature, records LibTorch's library folder as the `kiln` binary's rpath, so that
//! it runs without LD_LIBRARY_PATH. torch-sys publishes the folder it linked against as build
//! metadata (`links = "tch"`, key `libtorch_lib`), which only its direct dependents can read.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
        println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{dir}");
    }
}
