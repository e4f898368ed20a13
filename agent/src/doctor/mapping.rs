//! `doctor` mapping checks: each listener's mapping file parses as a mapping table, exactly as
//! the agent will load it at start (the protocol crate's [`MappingTable::parse`]); a table that
//! does not parse would stop the agent. That the file exists and can be read is the file
//! checks' job ([`super::files`]); a file that cannot be opened is not reported again here.
//!
//! The verdict ([`judge`]) is pure; [`checks`] reads the files.

use std::io;
use std::path::Path;

use hl7edge_protocol::normalize::mapping::{MappingError, MappingTable};

use crate::config::Listener;

use super::check::Check;

/// Why a mapping file is not a mapping table.
#[derive(Debug, thiserror::Error)]
pub enum MappingProblem {
    /// The file is not UTF-8 text.
    #[error("not UTF-8 text: {0}")]
    NotText(io::Error),
    /// The text is not a valid table.
    #[error(transparent)]
    Invalid(#[from] MappingError),
}

/// Checks the mapping file of every listener that names one.
pub fn checks(listeners: &[Listener]) -> Vec<Check> {
    listeners
        .iter()
        .enumerate()
        .filter_map(|(index, listener)| {
            let path = listener.mapping.as_deref()?;
            let parsed = match std::fs::read_to_string(path) {
                Ok(text) => MappingTable::parse(&text).map_err(MappingProblem::from),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(MappingProblem::NotText(e)),
                // Missing or unreadable: the file check already said so.
                Err(_) => return None,
            };
            Some(judge(index, &listener.name, path, &parsed))
        })
        .collect()
}

/// The verdict for the mapping file `path` of listener `index` (named `name`).
pub fn judge(
    index: usize,
    name: &str,
    path: &Path,
    parsed: &Result<MappingTable, MappingProblem>,
) -> Check {
    let check = format!("listener {name} mapping table");
    let shown = path.display();
    match parsed {
        Ok(table) => Check::ok(
            check,
            format!(
                "{shown} parses: {} code(s), {} unit(s), version {}",
                table.code_count(),
                table.unit_count(),
                table.version()
            ),
        ),
        Err(problem) => Check::fail(
            check,
            format!("{shown}: {problem}; the agent will not start with it"),
            format!(
                "correct the line shown in {shown} (a UTF-8 CSV with the header \
                 kind,local_system,local_code,target_system,target_code,target_display), \
                 or remove listener[{index}].mapping from the configuration"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::doctor::check::Outcome;

    const HEADER: &str = "kind,local_system,local_code,target_system,target_code,target_display\n";

    fn lab_mapping(path: &Path) -> Listener {
        let config =
            Config::from_toml_str(Config::example(), Path::new("/etc/hl7edge/x.toml")).unwrap();
        let mut listener = config.listeners.into_iter().next().unwrap();
        listener.mapping = Some(path.to_path_buf());
        listener
    }

    #[test]
    fn a_valid_table_passes_with_its_counts_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.csv");
        let text = format!(
            "# version: lab-v1\n{HEADER}code,99LAB,GLU,LN,2345-7,Glucose\nunit,,mg/dl,UCUM,mg/dL,\n"
        );
        std::fs::write(&path, text).unwrap();
        let checks = checks(&[lab_mapping(&path)]);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].outcome, Outcome::Ok);
        assert!(
            checks[0]
                .detail
                .contains("1 code(s), 1 unit(s), version lab-v1"),
            "{}",
            checks[0].detail
        );
    }

    #[test]
    fn a_bad_row_fails_naming_its_line_and_the_config_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.csv");
        std::fs::write(&path, format!("{HEADER}drug,99LAB,GLU,LN,2345-7,\n")).unwrap();
        let checks = checks(&[lab_mapping(&path)]);
        assert_eq!(checks[0].outcome, Outcome::Fail);
        assert!(checks[0].detail.contains("line 2"), "{}", checks[0].detail);
        assert!(
            checks[0].fix.contains("listener[0].mapping"),
            "{}",
            checks[0].fix
        );
    }

    #[test]
    fn a_binary_file_fails_and_a_missing_one_is_left_to_the_file_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.csv");
        std::fs::write(&path, [0xff, 0xfe, 0x00, 0x80]).unwrap();
        let checks_binary = checks(&[lab_mapping(&path)]);
        assert_eq!(checks_binary[0].outcome, Outcome::Fail);
        assert!(
            checks_binary[0].detail.contains("not UTF-8"),
            "{}",
            checks_binary[0].detail
        );
        let missing = dir.path().join("missing.csv");
        assert!(checks(&[lab_mapping(&missing)]).is_empty());
    }
}
