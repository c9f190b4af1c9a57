//! rustls client configurations, built once per distinct TLS setting and
//! shared by every client that asks for it. Parsing a CA bundle and building
//! its root store costs milliseconds; a cached configuration is an `Arc` clone,
//! which keeps building a client cheap (as httpx users do per request).

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::errors::{Error, ErrorKind};

/// Everything that decides a client's TLS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub verify: bool,
    pub ca_bundle_pem: Option<Vec<u8>>,
    pub identity_pem: Option<Vec<u8>>,
    pub http1: bool,
    pub http2: bool,
}

/// Distinct settings kept; a process rarely has more than a handful.
const CACHE_SIZE: usize = 8;

static CACHE: Mutex<Vec<(TlsSettings, ClientConfig)>> = Mutex::new(Vec::new());

fn tls_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Transport, message)
}

/// The rustls configuration for `settings`, from the cache when possible.
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig, Error> {
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(index) = cache.iter().position(|(key, _)| key == settings) {
        let entry = cache.remove(index);
        let config = entry.1.clone();
        cache.push(entry);
        return Ok(config);
    }
    let config = build(settings)?;
    if cache.len() >= CACHE_SIZE {
        cache.remove(0);
    }
    cache.push((settings.clone(), config.clone()));
    Ok(config)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn root_store(ca_bundle_pem: Option<&[u8]>) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    match ca_bundle_pem {
        // As in httpx, an explicit CA bundle replaces the default roots.
        Some(pem) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| tls_error(format!("invalid CA bundle: {e}")))?;
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(tls_error("the CA bundle holds no usable certificate"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    Ok(roots)
}

fn build(settings: &TlsSettings) -> Result<ClientConfig, Error> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string()))?;
    let builder = if settings.verify {
        builder.with_root_certificates(root_store(settings.ca_bundle_pem.as_deref())?)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
    };
    let mut config = match &settings.identity_pem {
        Some(pem) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<_, _>>()
                .map_err(|e| tls_error(format!("invalid client certificate: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(pem)
                .map_err(|e| tls_error(format!("invalid client key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = match (settings.http1, settings.http2) {
        (false, true) => vec![b"h2".to_vec()],
        (true, true) => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        (_, false) => vec![b"http/1.1".to_vec()],
    };
    Ok(config)
}

/// `verify=False`: accept any certificate, but still check the handshake
/// signatures so the session keys are really the peer's.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TlsSettings {
        TlsSettings {
            verify: true,
            ca_bundle_pem: None,
            identity_pem: None,
            http1: true,
            http2: false,
        }
    }

    #[test]
    fn alpn_follows_http_versions() {
        let h1 = client_config(&settings()).unwrap();
        assert_eq!(h1.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let both = client_config(&TlsSettings {
            http2: true,
            ..settings()
        })
        .unwrap();
        assert_eq!(
            both.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn garbage_ca_bundle_is_an_error() {
        let bad = TlsSettings {
            ca_bundle_pem: Some(b"not a certificate".to_vec()),
            ..settings()
        };
        assert!(client_config(&bad).is_err());
    }

    #[test]
    fn unverified_config_builds() {
        let config = client_config(&TlsSettings {
            verify: false,
            ..settings()
        });
        assert!(config.is_ok());
    }
}
