//! The server's private CA and certificate, and the rustls configuration
//! that serves them.
//!
//! `sync-server init` makes, under `DATA/tls/`:
//! - `ca.pem`: the CA certificate (10 years). Kiosks pin it at enrollment:
//!   they trust this server and nothing else, whatever their OS trusts.
//! - `ca-key.pem` (0600): the CA's key, needed only to issue a new server
//!   certificate; an operator may move it offline.
//! - `server.pem`, `server-key.pem` (0600): the server certificate (2
//!   years), for every `--hostname` plus `localhost` and `127.0.0.1`.
//!
//! Keys are ECDSA P-256. rustls uses the `ring` provider (aws-lc-rs needs
//! cmake and nasm to build), passed explicitly rather than installed as a
//! process default.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

pub const CA_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const CERT_FILE: &str = "server.pem";
pub const KEY_FILE: &str = "server-key.pem";

pub const CA_VALIDITY: Duration = Duration::days(3650);
pub const SERVER_VALIDITY: Duration = Duration::days(730);
/// Certificates start an hour in the past: a kiosk whose clock runs a
/// little behind must still accept a fresh one.
const BACKDATE: Duration = Duration::hours(1);
/// Names a certificate is made for at most.
pub const HOSTNAMES_MAX: usize = 32;

/// The PEM texts `init` writes.
pub struct Generated {
    pub ca_pem: String,
    pub ca_key_pem: String,
    pub server_pem: String,
    pub server_key_pem: String,
}

/// Checks a `--hostname`: an IP address, or a DNS name of letters, digits,
/// hyphens and dots (a leading `*.` allowed).
pub fn parse_hostname(name: &str) -> anyhow::Result<SanType> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let lower = name.to_ascii_lowercase();
    let labels = lower.strip_prefix("*.").unwrap_or(&lower);
    let ok = (1..=253).contains(&lower.len())
        && labels.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    anyhow::ensure!(ok, "{name:?} is not a host name or IP address");
    Ok(SanType::DnsName(lower.try_into().with_context(|| format!("host name {name:?}"))?))
}

fn random_serial() -> SerialNumber {
    let mut bytes = crate::store::random_bytes::<16>();
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // and without a leading zero byte
    SerialNumber::from_slice(&bytes)
}

/// Makes a CA and a server certificate for `hostnames` (plus `localhost`
/// and `127.0.0.1`, always: local health checks use them).
pub fn generate(hostnames: &[String], now: OffsetDateTime) -> anyhow::Result<Generated> {
    let sans = sans_for(hostnames)?;
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Loket");
    dn.push(DnType::CommonName, format!("Loket private CA {}", hex::encode(crate::store::random_bytes::<4>())));
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = now - BACKDATE;
    ca.not_after = now + CA_VALIDITY;
    ca.serial_number = Some(random_serial());
    let ca_cert = ca.self_signed(&ca_key).context("signing the CA certificate")?;
    let issuer = Issuer::new(ca, &ca_key);
    let (server_pem, server_key_pem) = issue_server(&issuer, hostnames, sans, now)?;
    Ok(Generated { ca_pem: ca_cert.pem(), ca_key_pem: ca_key.serialize_pem(), server_pem, server_key_pem })
}

/// The host names a server certificate is for: `hostnames` plus
/// `localhost` and `127.0.0.1`, each once.
fn sans_for(hostnames: &[String]) -> anyhow::Result<Vec<SanType>> {
    anyhow::ensure!(hostnames.len() <= HOSTNAMES_MAX, "at most {HOSTNAMES_MAX} host names");
    let mut sans = Vec::new();
    for name in hostnames.iter().map(String::as_str).chain(["localhost", "127.0.0.1"]) {
        let san = parse_hostname(name)?;
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    Ok(sans)
}

/// A server certificate and key for another instance, signed by the CA in
/// `ca_pem` / `ca_key_pem` (`sync-server add-instance`): kiosks that pin
/// the CA trust it as they trust the first.
pub fn issue_for_instance(
    ca_pem: &str,
    ca_key_pem: &str,
    hostnames: &[String],
    now: OffsetDateTime,
) -> anyhow::Result<(String, String)> {
    let ca_key = KeyPair::from_pem(ca_key_pem).context("reading the CA key")?;
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key).context("reading the CA certificate")?;
    issue_server(&issuer, hostnames, sans_for(hostnames)?, now)
}

fn issue_server(
    issuer: &Issuer<'_, impl rcgen::SigningKey>,
    hostnames: &[String],
    sans: Vec<SanType>,
    now: OffsetDateTime,
) -> anyhow::Result<(String, String)> {
    let server_key = KeyPair::generate().context("generating the server key")?;
    let mut server = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Loket");
    dn.push(DnType::CommonName, hostnames.first().map(String::as_str).unwrap_or("localhost"));
    server.distinguished_name = dn;
    server.subject_alt_names = sans;
    server.is_ca = IsCa::ExplicitNoCa;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    server.not_before = now - BACKDATE;
    server.not_after = now + SERVER_VALIDITY;
    server.serial_number = Some(random_serial());
    let server_cert = server.signed_by(&server_key, issuer).context("signing the server certificate")?;
    Ok((server_cert.pem(), server_key.serialize_pem()))
}

/// Writes the files into `dir` (created 0700), refusing to overwrite any.
pub fn write(dir: &Path, generated: &Generated) -> anyhow::Result<()> {
    create_private_dir(dir)?;
    write_new(&dir.join(CA_FILE), &generated.ca_pem, 0o644)?;
    write_new(&dir.join(CA_KEY_FILE), &generated.ca_key_pem, 0o600)?;
    write_new(&dir.join(CERT_FILE), &generated.server_pem, 0o644)?;
    write_new(&dir.join(KEY_FILE), &generated.server_key_pem, 0o600)?;
    Ok(())
}

/// Creates a directory only its owner may enter (0700).
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
    }
    Ok(())
}

/// Writes a new file with `mode`, synced; refuses to overwrite one.
pub fn write_new(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

/// The rustls server configuration for the certificate in `dir`, with the
/// `ring` provider, TLS 1.2 and 1.3, and ALPN for HTTP/2 and HTTP/1.1.
pub fn server_config(dir: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let cert_path = dir.join(CERT_FILE);
    let key_path = dir.join(KEY_FILE);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("reading {} (run `sync-server init` first)", cert_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", cert_path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", cert_path.display());
    let key = PrivateKeyDer::from_pem_file(&key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| format!("the key in {} does not fit {}", key_path.display(), cert_path.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A rustls client configuration that trusts exactly the CA in `ca_pem`
/// (as a kiosk does), for tools and tests that speak TLS by hand.
pub fn client_config(ca_pem: &[u8]) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.context("parsing the CA certificate")?).context("adding the CA certificate")?;
    }
    anyhow::ensure!(!roots.is_empty(), "no CA certificate in the PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_checked() {
        assert!(matches!(parse_hostname("127.0.0.1").unwrap(), SanType::IpAddress(_)));
        assert!(matches!(parse_hostname("::1").unwrap(), SanType::IpAddress(_)));
        assert!(matches!(parse_hostname("loket.pemkomedan.go.id").unwrap(), SanType::DnsName(_)));
        assert!(matches!(parse_hostname("*.medan.go.id").unwrap(), SanType::DnsName(_)));
        for bad in ["", "a..b", "-a.b", "a b", "https://x", "x/y", &"a".repeat(64)] {
            assert!(parse_hostname(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn generated_files_load_and_keys_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let generated = generate(&["sync.example.id".into()], OffsetDateTime::now_utc()).unwrap();
        assert!(generated.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(generated.server_key_pem.contains("PRIVATE KEY"));
        write(&tls, &generated).unwrap();
        server_config(&tls).unwrap();
        assert!(write(&tls, &generated).is_err(), "files are never overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| std::fs::metadata(tls.join(p)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(CA_KEY_FILE), 0o600);
            assert_eq!(mode(KEY_FILE), 0o600);
            assert_eq!(std::fs::metadata(&tls).unwrap().permissions().mode() & 0o777, 0o700);
        }
    }

    #[test]
    fn too_many_hostnames_are_refused() {
        let names: Vec<String> = (0..=HOSTNAMES_MAX).map(|i| format!("h{i}.example.id")).collect();
        assert!(generate(&names, OffsetDateTime::now_utc()).is_err());
    }
}
