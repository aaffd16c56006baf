//! Builds the DPDK shim (`src/dpdk/shim.c`) and links Debian's libdpdk, with the flags
//! `pkg-config libdpdk` gives, only when the `dpdk` feature is on; otherwise does nothing, so
//! the default build needs no DPDK.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Build scripts see the package's features as cfgs too.
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::process::Command;

    fn pkg_config(what: &str) -> Vec<String> {
        let out = Command::new("pkg-config")
            .args([what, "libdpdk"])
            .output()
            .unwrap_or_else(|e| panic!("feature `dpdk`: cannot run pkg-config ({e}); apt-get install pkg-config libdpdk-dev"));
        assert!(
            out.status.success(),
            "feature `dpdk`: `pkg-config {what} libdpdk` failed: {} (apt-get install libdpdk-dev)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    pub fn build() {
        println!("cargo:rerun-if-changed=src/dpdk/shim.c");
        let cflags = pkg_config("--cflags");
        let mut cc = cc::Build::new();
        cc.file("src/dpdk/shim.c").warnings(true);
        let mut it = cflags.iter();
        while let Some(f) = it.next() {
            if let Some(dir) = f.strip_prefix("-I") {
                cc.include(dir);
            } else if f == "-include" {
                if let Some(h) = it.next() {
                    cc.flag("-include").flag(h);
                }
            } else {
                cc.flag(f);
            }
        }
        cc.compile("hcdpdkshim");
        for f in pkg_config("--libs") {
            if let Some(dir) = f.strip_prefix("-L") {
                println!("cargo:rustc-link-search=native={dir}");
            } else if let Some(lib) = f.strip_prefix("-l") {
                println!("cargo:rustc-link-lib=dylib={lib}");
            }
            // -Wl,--as-needed and the like are left to the linker's defaults.
        }
    }
}
