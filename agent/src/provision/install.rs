//! `provision --install-cert`: checks the certificate central IT signed before it replaces
//! anything: it must belong to this gateway's key, chain to the configured hub CA and be valid
//! now. Only then is it written, atomically, to the configured certificate path (mode 0644).

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::config::{Config, HubTls, HubTransport};
use crate::device_cert::{self, CertDates, CertProblem};

use super::ProvisionError;
use super::files::{self, PUBLIC};

/// Checks `file` against the configuration at `config` and installs it; returns the installed
/// certificate's dates and where it went.
pub fn install(
    config: &Path,
    file: &Path,
    now: Timestamp,
) -> Result<(CertDates, PathBuf), ProvisionError> {
    let loaded = Config::load(config).map_err(ProvisionError::Config)?;
    let HubTransport::Tls(tls) = loaded.hub.transport else {
        return Err(ProvisionError::Plaintext);
    };
    let chain = crate::tls::load_certs(file)?;
    let key = crate::tls::load_key(&tls.key)?;
    let roots = crate::tls::load_roots(&tls.ca)?;
    let rejected = |problem| ProvisionError::Rejected {
        fix: fix(&problem, file, &tls),
        file: file.to_path_buf(),
        problem,
    };
    let leaf = chain
        .first()
        .map(device_cert::dates)
        .transpose()
        .map_err(rejected)?
        .ok_or_else(|| rejected(CertProblem::Unparsable("no certificate".into())))?;
    device_cert::verify_key_matches(chain.clone(), &key).map_err(rejected)?;
    device_cert::verify_chain(&chain, roots, now).map_err(rejected)?;
    let bytes = std::fs::read(file).map_err(|source| files::WriteError {
        path: file.to_path_buf(),
        source,
    })?;
    files::write_atomic(&tls.cert, &bytes, PUBLIC, true)?;
    Ok((leaf, tls.cert))
}

/// What to do about a refused certificate, in plain words.
fn fix(problem: &CertProblem, file: &Path, tls: &HubTls) -> String {
    let csr = tls.key.with_extension("csr");
    match problem {
        CertProblem::KeyMismatch => format!(
            "{} was signed for another key, not this gateway's {}: send this gateway's request {} to central IT and install the certificate they return for it",
            file.display(),
            tls.key.display(),
            csr.display()
        ),
        CertProblem::WrongIssuer => format!(
            "ask central IT for a certificate signed by the hub CA ({}); if the hub CA itself changed, put the new CA file there first",
            tls.ca.display()
        ),
        CertProblem::Expired { .. } => format!(
            "ask central IT to sign {} again with a current validity period",
            csr.display()
        ),
        CertProblem::NotYetValid { .. } => {
            "check the clock (timedatectl; set-ntp true); if it is right, ask central IT why the certificate starts in the future".into()
        }
        CertProblem::Unparsable(_) | CertProblem::Rejected(_) => {
            "ask central IT for the signed certificate again, as a PEM file (-----BEGIN CERTIFICATE-----)".into()
        }
    }
}
