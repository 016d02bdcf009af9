//! Credentials of one local control plane: a CA, the apiserver's serving certificate for
//! 127.0.0.1/localhost, the service-account signing key and the admin's bearer token.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Files written into the control plane's directory.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub serving_cert_file: PathBuf,
    pub serving_key_file: PathBuf,
    pub service_account_key_file: PathBuf,
    pub service_account_pub_file: PathBuf,
    pub token_file: PathBuf,
    pub admin_token: String,
}

impl Pki {
    pub fn generate(dir: &Path) -> Result<Self, PkiError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mesos-operator-e2e-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate()?;
        let mut serving = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "kubernetes.default.svc".to_string(),
        ])?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let serving_cert = serving.signed_by(&serving_key, &issuer)?;

        let sa_key = KeyPair::generate()?;
        let admin_token = random_token();

        let pki = Self {
            ca_pem: ca_cert.pem(),
            ca_file: dir.join("ca.crt"),
            serving_cert_file: dir.join("apiserver.crt"),
            serving_key_file: dir.join("apiserver.key"),
            service_account_key_file: dir.join("sa.key"),
            service_account_pub_file: dir.join("sa.pub"),
            token_file: dir.join("tokens.csv"),
            admin_token,
        };
        write(&pki.ca_file, &pki.ca_pem)?;
        write(&pki.serving_cert_file, &serving_cert.pem())?;
        write(&pki.serving_key_file, &serving_key.serialize_pem())?;
        write(&pki.service_account_key_file, &sa_key.serialize_pem())?;
        write(&pki.service_account_pub_file, &sa_key.public_key_pem())?;
        write(
            &pki.token_file,
            &format!("{},admin,admin-uid,\"system:masters\"\n", pki.admin_token),
        )?;
        Ok(pki)
    }
}

/// 32 hex characters from the OS's randomness.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    // getrandom(2) cannot fail for 16 bytes once the pool is initialised; fall back to the
    // clock so a token is always produced.
    // SAFETY: buf points at 16 writable bytes.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write(path: &Path, content: &str) -> Result<(), PkiError> {
    std::fs::write(path, content).map_err(|source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    })
}
