//! The endpoint's TLS configuration (LDAPS and StartTLS) from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A rustls server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "ldap.tls_cert: cannot read a PEM certificate from {} ({e})",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "ldap.tls_cert: {} holds no certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "ldap.tls_key: cannot read a PEM private key from {} ({e})",
            key.display()
        )
    })?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("ldap.tls_cert / ldap.tls_key do not form a usable pair ({e})"))?;
    Ok(Arc::new(config))
}
