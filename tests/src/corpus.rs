//! The repository's sample messages (`protocol/tests/corpus/`, origins in its `SOURCES.md`), as
//! the end-to-end tests that feed all of them read them.
//!
//! Invariant: a missing or thinned-out corpus is an error, never an empty list (a test over no
//! messages would pass without testing anything).

use std::path::{Path, PathBuf};

/// Fewer `.hl7` files than this means the corpus is not all there.
const AT_LEAST: usize = 100;

/// What is wrong with the corpus.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// A folder could not be read.
    #[error("reading the corpus folder {path}: {source}")]
    Read {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Too few messages.
    #[error("only {found} messages under {root}: the corpus is incomplete")]
    Incomplete {
        /// How many.
        found: usize,
        /// Where.
        root: PathBuf,
    },
}

/// Every `.hl7` file of the corpus, sorted by path.
pub fn files() -> Result<Vec<PathBuf>, CorpusError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/corpus");
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        let read = |source| CorpusError::Read {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(read)? {
            let path = entry.map_err(read)?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "hl7") {
                files.push(path);
            }
        }
    }
    files.sort();
    if files.len() < AT_LEAST {
        return Err(CorpusError::Incomplete {
            found: files.len(),
            root,
        });
    }
    Ok(files)
}
