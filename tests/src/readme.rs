//! The README's command blocks, for the tests that run them word for word: the fenced code
//! block after a `<!-- ci: ... -->` marker line.

use std::io;
use std::path::Path;

/// The fenced code block after the README line that starts with `marker`; an error when there
/// is no such line or block (a renamed marker must fail the test, not skip it).
pub fn block(marker: &str) -> io::Result<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))?;
    let block = readme
        .lines()
        .skip_while(|l| !l.starts_with(marker))
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n");
    if block.is_empty() {
        return Err(io::Error::other(format!(
            "no code block after {marker:?} in README.md"
        )));
    }
    Ok(block)
}
