//! Build identity of the sandbox helper's code, shared by `airlock` and `airlock-sandbox`.
//!
//! The gateway starts every local command through the small `airlock-sandbox` binary next to
//! it when that binary comes from the same sources (a stale one left by an older build might
//! read its command line differently); otherwise it uses its own `airlock sandbox-exec`. The
//! identity is a hash of the helper's sources and the package version: reproducible, and new
//! whenever that code changes.

use std::hash::Hasher;
use std::path::Path;

/// 64-bit FNV-1a: a fixed, dependency-free hash (this is an identity, not a defence).
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn add_dir(h: &mut Fnv, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        panic!("build.rs: cannot read {}", dir.display());
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            add_dir(h, &p);
        } else if let Ok(bytes) = std::fs::read(&p) {
            h.write(p.to_string_lossy().as_bytes());
            h.write(&bytes);
        }
    }
}

fn main() {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.write(env!("CARGO_PKG_VERSION").as_bytes());
    for dir in ["src/sandbox", "src/bin/airlock-sandbox"] {
        println!("cargo:rerun-if-changed={dir}");
        add_dir(&mut h, Path::new(dir));
    }
    println!(
        "cargo:rustc-env=AIRLOCK_SANDBOX_BUILD={}-{:016x}",
        env!("CARGO_PKG_VERSION"),
        h.finish()
    );
}
