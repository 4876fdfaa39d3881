//! A throwaway test CA and a server certificate signed by it, for TLS tests of slapd (the
//! upstream) and of our own LDAP endpoint.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// The PEM files [`write_test_certs`] wrote.
#[derive(Debug, Clone)]
pub struct TestCerts {
    /// The CA certificate clients trust (`LDAPTLS_CACERT`, `ca_file`).
    pub ca: PathBuf,
    /// The server certificate for 127.0.0.1 and localhost.
    pub cert: PathBuf,
    /// Its private key (mode 0600).
    pub key: PathBuf,
}

/// Test CA + server certificate for 127.0.0.1 / localhost, written as ca.pem, server.pem and
/// server-key.pem into `dir`.
pub fn write_test_certs(dir: &Path) -> Result<TestCerts> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).context("CA params")?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "phonebook-proxy test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).context("self-signing the CA")?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().context("generating the server key")?;
    let mut params = CertificateParams::new(Vec::<String>::new()).context("server params")?;
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.subject_alt_names = vec![
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        SanType::DnsName("localhost".try_into().context("SAN localhost")?),
    ];
    // libldap checks `ldaps://localhost` against the reverse name of the connected address
    // (e.g. the container's hostname listed for 127.0.0.1 in /etc/hosts), so add those too.
    for name in loopback_names() {
        if let Ok(dns) = name.as_str().try_into() {
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .signed_by(&key, &issuer)
        .context("signing the server certificate")?;

    fs::write(dir.join("ca.pem"), ca_cert.pem()).context("writing ca.pem")?;
    fs::write(dir.join("server.pem"), cert.pem()).context("writing server.pem")?;
    let key_path = dir.join("server-key.pem");
    fs::write(&key_path, key.serialize_pem()).context("writing server-key.pem")?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600))
            .context("chmod server-key.pem")?;
    }
    Ok(TestCerts {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: key_path,
    })
}

/// Host names that /etc/hosts maps to 127.0.0.1 (besides localhost).
fn loopback_names() -> Vec<String> {
    let hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        if fields.next() != Some("127.0.0.1") {
            continue;
        }
        for name in fields {
            if name != "localhost" && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}
