//! Link settings for the wasm32 component.
//!
//! The initial linear memory holds the 1 MiB stack, the data image and 1 MiB of heap, so an
//! ordinary call allocates without `memory.grow`: on the host's pooling allocator every grow is
//! an `mprotect` now and another when the slot is reset, and with a fresh instance per event
//! that was ~2.5 system calls per event (docs/performance.md, change 6). Memory-hungry
//! inputs still grow memory as before, up to the host's limit.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!(
            "cargo:rustc-cdylib-link-arg=--initial-memory={}",
            48 * 65536
        );
    }
    println!("cargo:rerun-if-changed=build.rs");
}
