//! Content-Encoding decoding of whole response bodies.
//!
//! Done here rather than by reqwest so that, as in httpx, the response keeps
//! its `Content-Encoding` and `Content-Length` headers and a bad body raises
//! `DecodingError`.

use std::io::Read;

use bytes::Bytes;

use crate::errors::{Error, ErrorKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Brotli => "br",
            Self::Zstd => "zstd",
        }
    }
}

fn coding(name: &str) -> Option<Coding> {
    match name.trim().to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => Some(Coding::Gzip),
        "deflate" => Some(Coding::Deflate),
        "br" => Some(Coding::Brotli),
        "zstd" => Some(Coding::Zstd),
        // identity and unknown codings pass through untouched, like httpx.
        _ => None,
    }
}

/// Decode `body` according to the comma-separated `Content-Encoding` values,
/// undoing the last-applied coding first.
pub fn decode(content_encodings: &[&str], body: Bytes) -> Result<Bytes, Error> {
    let codings: Vec<Coding> = content_encodings
        .iter()
        .flat_map(|value| value.split(','))
        .filter_map(coding)
        .collect();
    if codings.is_empty() || body.is_empty() {
        return Ok(body);
    }
    let mut data = body;
    for c in codings.into_iter().rev() {
        data = Bytes::from(decode_one(c, &data)?);
    }
    Ok(data)
}

fn decode_one(c: Coding, data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4));
    let result = match c {
        Coding::Gzip => flate2::read::MultiGzDecoder::new(data).read_to_end(&mut out),
        Coding::Deflate => {
            // Servers send either zlib-wrapped or raw deflate; accept both.
            match flate2::read::ZlibDecoder::new(data).read_to_end(&mut out) {
                Ok(n) => Ok(n),
                Err(_) => {
                    out.clear();
                    flate2::read::DeflateDecoder::new(data).read_to_end(&mut out)
                }
            }
        }
        Coding::Brotli => brotli::Decompressor::new(data, 64 * 1024).read_to_end(&mut out),
        Coding::Zstd => {
            zstd::stream::read::Decoder::new(data).and_then(|mut d| d.read_to_end(&mut out))
        }
    };
    result.map_err(|e| {
        Error::new(
            ErrorKind::Decoding,
            format!("Error decoding {} content: {e}", c.name()),
        )
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn identity_passes_through() {
        let body = Bytes::from_static(b"plain");
        assert_eq!(decode(&["identity"], body.clone()).unwrap(), body);
        assert_eq!(decode(&[], body.clone()).unwrap(), body);
    }

    #[test]
    fn gzip_round_trip() {
        let body = Bytes::from(gzip(b"hello world"));
        assert_eq!(&decode(&["gzip"], body).unwrap()[..], b"hello world");
    }

    #[test]
    fn stacked_codings_undo_in_reverse() {
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(&gzip(b"twice")).unwrap();
        let body = Bytes::from(zl.finish().unwrap());
        assert_eq!(&decode(&["gzip, deflate"], body).unwrap()[..], b"twice");
    }

    #[test]
    fn raw_deflate_is_accepted() {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"raw").unwrap();
        let body = Bytes::from(enc.finish().unwrap());
        assert_eq!(&decode(&["deflate"], body).unwrap()[..], b"raw");
    }

    #[test]
    fn brotli_and_zstd_round_trip() {
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(b"brotli body").unwrap();
        }
        assert_eq!(
            &decode(&["br"], Bytes::from(br)).unwrap()[..],
            b"brotli body"
        );
        let zs = zstd::encode_all(&b"zstd body"[..], 3).unwrap();
        assert_eq!(
            &decode(&["zstd"], Bytes::from(zs)).unwrap()[..],
            b"zstd body"
        );
    }

    #[test]
    fn garbage_is_a_decoding_error() {
        let err = decode(&["gzip"], Bytes::from_static(b"not gzip")).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Decoding);
        assert!(err.message.contains("gzip"));
    }
}
