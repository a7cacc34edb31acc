//! HTTPS for the fake: the certificate it serves (the test's, or a self-signed one made at
//! start) and the rustls acceptor that offers HTTP/2 and HTTP/1.1 by ALPN, as a forge behind
//! nginx or Caddy does.

use std::io;
use std::sync::Arc;

use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::options::Tls;

/// The names a self-signed certificate covers: what [`crate::FakeForge::url`] and a test
/// writing `localhost` would connect to.
const SELF_SIGNED_NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// A certificate and the acceptor serving it; kept for the forge's life, so the server comes
/// back up with the same certificate.
#[derive(Clone)]
pub(crate) struct ServerTls {
    acceptor: TlsAcceptor,
    certificate_pem: String,
}

impl ServerTls {
    pub fn new(tls: &Tls) -> io::Result<ServerTls> {
        let (certificate_pem, private_key_pem) = match tls {
            Tls::SelfSigned => self_signed()?,
            Tls::Pem {
                certificate_chain,
                private_key,
            } => (certificate_chain.clone(), private_key.clone()),
        };
        let chain = CertificateDer::pem_slice_iter(certificate_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("the TLS certificate chain is not PEM: {e}")))?;
        if chain.is_empty() {
            return Err(invalid("the TLS certificate chain holds no certificate"));
        }
        let key = PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes())
            .map_err(|e| invalid(format!("the TLS private key is not PEM: {e}")))?;
        // An explicit provider: nothing in the process has to install a default one, and
        // this is the one reqwest's rustls uses.
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| invalid(format!("TLS versions: {e}")))?
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(|e| invalid(format!("the TLS certificate or key is unusable: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate_pem,
        })
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// The certificate chain served, PEM.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }
}

/// A new key pair and a certificate for [`SELF_SIGNED_NAMES`] signed by it, both PEM.
fn self_signed() -> io::Result<(String, String)> {
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| n.to_string()).collect();
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| io::Error::other(format!("making a self-signed certificate: {e}")))?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}
