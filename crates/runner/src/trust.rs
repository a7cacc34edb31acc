//! The certificates jobs trust, with `runner.ca_file`: a bundle of the runner's system store
//! with the file's certificates added, written once where host jobs read it, handed to the
//! Docker backend for its containers and to git for the actions the runner fetches.
//!
//! The system store comes first so that a job trusting only the bundle (`SSL_CERT_FILE`
//! replaces OpenSSL's default store) still reaches public hosts.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

/// Where a system's CA store usually is (Debian/Ubuntu/Alpine, Fedora/RHEL, openSUSE, others).
const SYSTEM_STORES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

const PEM_CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

/// The bundle, as written for host jobs and as bytes for containers.
#[derive(Clone, Debug)]
pub struct CaBundle {
    /// The file on this machine (host jobs' variables name it).
    pub path: PathBuf,
    pub pem: Vec<u8>,
}

impl CaBundle {
    /// The variables naming the bundle, for a host job's environment.
    pub fn host_env(&self) -> Vec<(String, String)> {
        let path = self.path.display().to_string();
        hearth_backend::CA_BUNDLE_VARIABLES
            .iter()
            .map(|name| ((*name).to_owned(), path.clone()))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("runner.ca_file: cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("runner.ca_file: {path} holds no PEM certificate (`{PEM_CERTIFICATE}`)")]
    NoCertificate { path: PathBuf },
    #[error("cannot write the jobs' CA bundle {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The runner's system store: `SSL_CERT_FILE` when the runner is given one, else the first
/// of the usual places that exists.
pub fn system_store() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_STORES.iter().map(PathBuf::from))
        .find(|path| path.is_file())
}

/// The bundle of `system` (when there is one) and `ca_file`, written into `folder` under a
/// name that follows its contents (runners sharing the folder with other files do not clash;
/// a file being read by a running job is never rewritten).
pub fn bundle(
    ca_file: &Path,
    system: Option<&Path>,
    folder: &Path,
) -> Result<CaBundle, TrustError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TrustError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let added = read(ca_file)?;
    if !String::from_utf8_lossy(&added).contains(PEM_CERTIFICATE) {
        return Err(TrustError::NoCertificate {
            path: ca_file.to_owned(),
        });
    }
    let mut pem = match system {
        // A system store that cannot be read leaves the jobs with the runner's CA alone,
        // which is what they need from it; said, not fatal.
        Some(system) => std::fs::read(system).unwrap_or_else(|e| {
            tracing::warn!(
                "cannot read the system's CA store {}: {e}",
                system.display()
            );
            Vec::new()
        }),
        None => Vec::new(),
    };
    if !pem.is_empty() && !pem.ends_with(b"\n") {
        pem.push(b'\n');
    }
    pem.extend_from_slice(&added);
    if !pem.ends_with(b"\n") {
        pem.push(b'\n');
    }

    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    pem.hash(&mut hasher);
    let path = folder.join(format!("ca-certificates-{:016x}.crt", hasher.finish()));
    let failed = |source| TrustError::Write {
        path: path.clone(),
        source,
    };
    if std::fs::read(&path).ok().as_deref() != Some(pem.as_slice()) {
        std::fs::create_dir_all(folder).map_err(failed)?;
        // Written beside it and renamed: a job reading it never sees half a file.
        let temp = path.with_extension(format!("{}.tmp", std::process::id()));
        let written = std::fs::write(&temp, &pem).and_then(|()| {
            // Readable by the user a job runs as, whoever that is.
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644))?;
            std::fs::rename(&temp, &path)
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(failed(e));
        }
    }
    Ok(CaBundle { path, pem })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn the_bundle_is_the_system_store_then_the_runners_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let system = dir.path().join("system.pem");
        std::fs::write(&system, "SYSTEM").expect("written");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, CERT).expect("written");
        let folder = dir.path().join("externals");
        let bundle = bundle(&ca, Some(&system), &folder).expect("a bundle");
        let written = std::fs::read_to_string(&bundle.path).expect("the bundle file");
        assert_eq!(written, format!("SYSTEM\n{CERT}"));
        assert_eq!(bundle.pem, written.as_bytes());
        assert!(bundle.path.starts_with(&folder));
        let again = super::bundle(&ca, Some(&system), &folder).expect("a bundle");
        assert_eq!(again.path, bundle.path, "the same contents, the same file");
        let env = bundle.host_env();
        assert_eq!(env.len(), 4);
        assert!(env
            .iter()
            .all(|(_, v)| v == &bundle.path.display().to_string()));
    }

    #[test]
    fn a_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").expect("written");
        let e = bundle(&ca, None, dir.path()).expect_err("refused");
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        assert!(e.to_string().contains("ca.pem"), "{e}");
        let missing = bundle(&dir.path().join("nope.pem"), None, dir.path()).expect_err("missing");
        assert!(
            missing
                .to_string()
                .starts_with("runner.ca_file: cannot read"),
            "{missing}"
        );
    }
}
