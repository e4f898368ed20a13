//! How central IT signs a gateway's request, in the words `provision` and `doctor` print when a
//! certificate is refused: the v3 extensions a device certificate needs and the `openssl` and
//! easy-rsa commands that give them (the README's "Signing a gateway's certificate" shows the
//! same commands, and an end-to-end test runs them).
//!
//! Pure text: nothing here reads or writes files.

use std::path::Path;

/// The X.509 v3 extensions of a device certificate, as an `openssl` extension file.
pub const EXTENSIONS: &str = "basicConstraints = CA:FALSE\n\
                              keyUsage = critical, digitalSignature\n\
                              extendedKeyUsage = clientAuth\n";

/// The signing step for the request at `csr`, for central IT: the extension file and the
/// `openssl` command, and the easy-rsa equivalent. Each line is indented by `indent`.
pub fn recipe(csr: &Path, indent: &str) -> String {
    let name = csr
        .file_name()
        .map_or_else(|| "device.csr".into(), |n| n.to_string_lossy());
    let ext = EXTENSIONS.trim_end().replace('\n', "\\n");
    [
        "with openssl (a v3 extension file; without -extfile openssl makes a version 1 certificate):"
            .to_owned(),
        format!("  printf '{ext}\\n' > client.ext"),
        format!(
            "  openssl x509 -req -in {name} -CA hub-ca.pem -CAkey hub-ca.key -CAcreateserial -days 365 -sha256 -extfile client.ext -out device.pem"
        ),
        "or with easy-rsa (its `client` type sets the same extensions):".to_owned(),
        format!("  ./easyrsa import-req {name} GATEWAY && ./easyrsa sign-req client GATEWAY"),
        "(README: \"Signing a gateway's certificate\")".to_owned(),
    ]
    .iter()
    .map(|line| format!("{indent}{line}"))
    .collect::<Vec<_>>()
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipe_names_the_request_and_the_client_extensions() {
        let text = recipe(Path::new("/etc/hl7edge/device.csr"), "    ");
        assert!(text.contains("-in device.csr"), "{text}");
        assert!(
            text.contains("extendedKeyUsage = clientAuth"),
            "the extension file is spelled out: {text}"
        );
        assert!(text.contains("sign-req client"), "{text}");
        assert!(text.lines().all(|l| l.starts_with("    ")), "{text}");
    }
}
