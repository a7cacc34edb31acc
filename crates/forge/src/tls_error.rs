//! Certificate problems told in the operator's terms. rustls says `invalid peer certificate:
//! UnknownIssuer`; the operator needs to know which setting fixes it.

use std::error::Error;
use std::io;

use rustls::CertificateError;

/// What to change when the forge's certificate is refused.
const REMEDY: &str = "set runner.ca_file to a PEM file holding the CA certificate that signed it \
     (or the certificate itself, if self-signed), or set runner.insecure to true to skip \
     certificate checks";

/// An explanation and remedy when `error` (or one of its causes) is the forge's TLS
/// certificate being refused; `None` for any other failure.
pub(crate) fn certificate_problem(error: &(dyn Error + 'static)) -> Option<String> {
    let refused = find_certificate_error(error)?;
    let why = match refused {
        CertificateError::UnknownIssuer => {
            "is not trusted: it is self-signed or signed by a CA this machine does not know"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "is not valid for the host name in the forge address"
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "is outside its validity period (expired, or not yet valid: check the clocks)"
        }
        _ => "was refused",
    };
    Some(format!("the forge's TLS certificate {why}; {REMEDY}"))
}

/// The certificate error anywhere in `error`'s chain: a certificate refused in the handshake,
/// or one of `runner.ca_file` that rustls cannot read when the client is built.
pub(crate) fn find_certificate_error<'a>(
    error: &'a (dyn Error + 'static),
) -> Option<&'a CertificateError> {
    std::iter::successors(Some(error), |&e| e.source()).find_map(certificate_error)
}

/// The certificate error in one link of a chain. tokio-rustls hands rustls errors on inside an
/// `io::Error` (which reqwest wraps in another), and `io::Error::source()` skips the error it
/// wraps, so those are opened explicitly.
fn certificate_error<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a CertificateError> {
    let mut current = error;
    while let Some(inner) = current
        .downcast_ref::<io::Error>()
        .and_then(|e| e.get_ref())
    {
        current = inner;
    }
    match current.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(certificate) => Some(certificate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error wrapping `source`, as hyper and reqwest wrap the connector's.
    #[derive(Debug)]
    struct Wrapper(io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl Error for Wrapper {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    /// As reqwest 0.13 reports it: an `io::Error` in an `io::Error` in hyper's error.
    fn wrapped(certificate: CertificateError) -> Wrapper {
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(certificate),
        );
        Wrapper(io::Error::other(tls))
    }

    #[test]
    fn refused_certificates_name_the_settings_that_fix_them() {
        let text = certificate_problem(&wrapped(CertificateError::UnknownIssuer)).unwrap();
        assert!(text.contains("not trusted"), "{text}");
        assert!(text.contains("runner.ca_file"), "{text}");
        assert!(text.contains("runner.insecure"), "{text}");
        let text = certificate_problem(&wrapped(CertificateError::NotValidForName)).unwrap();
        assert!(text.contains("host name"), "{text}");
        let text = certificate_problem(&wrapped(CertificateError::Expired)).unwrap();
        assert!(text.contains("validity"), "{text}");
        let text = certificate_problem(&wrapped(CertificateError::Revoked)).unwrap();
        assert!(text.contains("was refused"), "{text}");
    }

    #[test]
    fn other_failures_are_not_certificate_problems() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(certificate_problem(&Wrapper(refused)), None);
        let other_tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::NoApplicationProtocol,
        );
        assert_eq!(certificate_problem(&Wrapper(other_tls)), None);
    }
}
