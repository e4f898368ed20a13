//! Test-only Python tools (real third-party clients and validators), found where `tests/run.sh`
//! installs them: the virtual environment named by `HL7EDGE_PYTOOLS` (its `bin` folder), else
//! the workspace's `target/pytools/bin`. A missing tool is an error that says how to get it,
//! never a skipped test.

use std::path::{Path, PathBuf};

/// Why a tool could not be found.
#[derive(Debug, thiserror::Error)]
#[error(
    "the test tool `{name}` is not installed (looked in {looked}); run `bash tests/run.sh`, \
     which installs tests/python/requirements.txt into target/pytools"
)]
pub struct MissingTool {
    /// The tool's command name.
    pub name: String,
    /// The folders searched, comma-separated.
    pub looked: String,
}

/// The path of the command `name` from the test-only Python tools.
pub fn tool(name: &str) -> Result<PathBuf, MissingTool> {
    let folders: Vec<PathBuf> = std::env::var_os("HL7EDGE_PYTOOLS")
        .map(PathBuf::from)
        .into_iter()
        .chain([Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pytools/bin")])
        .collect();
    folders
        .iter()
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| MissingTool {
            name: name.to_owned(),
            looked: folders
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}
