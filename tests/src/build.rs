//! Finding (and building on first use) a binary of this workspace for the tests: the agent
//! (`hl7edge`) and the hub tools (`hl7edge-hub`).
//!
//! `CARGO_BIN_EXE_*` exists only for a package's own tests, and a dependency on a package builds
//! its library, not its binary. So the harness runs `cargo build -p PACKAGE --bin BIN` into the
//! target directory and profile the running test binary came from (`target/<profile>/deps/<test>`
//! → `target/<profile>/BIN`); cargo releases its build lock before it runs tests, so this does
//! not deadlock, and it is a no-op when the binary is up to date. An environment variable naming
//! a prebuilt binary skips the build (for a release or cross-compiled binary).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of `bin` from `package`, or of the file named by the environment variable
/// `override_var` when it is set. The error is the build's message.
pub fn workspace_binary(package: &str, bin: &str, override_var: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(override_var) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|err| format!("locating the test binary: {err}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test binary location {}", exe.display()))?;
    let target_dir = profile_dir
        .parent()
        .ok_or("test binary has no target directory")?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => return Err(format!("no profile directory in {}", exe.display())),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut command = Command::new(cargo);
    // Cargo gives tests the package's CARGO_PKG_*, CARGO_MANIFEST_DIR and so on; some build
    // scripts (ring's) rerun when those change, which would make this build and the outer one
    // rebuild each other's dependencies every time. Build with the caller's environment.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(set_by_cargo_for_tests) {
            command.env_remove(key);
        }
    }
    let output = command
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .args(["--profile", profile])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .map_err(|err| format!("running cargo build: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build -p {package} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(profile_dir.join(bin))
}

/// Whether cargo sets the environment variable `key` for the test processes it runs.
fn set_by_cargo_for_tests(key: &str) -> bool {
    const PREFIXES: [&str; 2] = ["CARGO_PKG_", "CARGO_BIN_EXE_"];
    const NAMES: [&str; 8] = [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "OUT_DIR",
        "LD_LIBRARY_PATH",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || NAMES.contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_test_variables_are_not_passed_to_the_inner_build() {
        assert!(set_by_cargo_for_tests("CARGO_PKG_NAME"));
        assert!(set_by_cargo_for_tests("CARGO_MANIFEST_DIR"));
        assert!(!set_by_cargo_for_tests("CARGO_HOME"));
        assert!(!set_by_cargo_for_tests("PATH"));
    }
}
