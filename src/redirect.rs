//! Building the follow-up request for a redirect response, with httpx's rules:
//! method rewriting (301/302/303), Location resolution, fragment carry-over,
//! Authorization stripped across origins, body dropped when the method becomes
//! GET, and cookies carried only within the original host.

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, COOKIE, HOST};
use reqwest::{Method, StatusCode, Url};

use crate::errors::{Error, ErrorKind};

/// The request to send after a redirect.
#[derive(Debug, Clone)]
pub struct NextRequest {
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    /// False when the method changed to GET and the body must be dropped.
    pub keep_body: bool,
}

/// Whether `status` with a Location header is a redirect httpx would follow.
pub fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// httpx's `_redirect_method`.
pub fn redirect_method(method: &Method, status: StatusCode) -> Method {
    match status.as_u16() {
        303 if method != Method::HEAD => Method::GET,
        302 | 301 if method == Method::POST => Method::GET,
        _ => method.clone(),
    }
}

fn default_port(url: &Url) -> Option<u16> {
    url.port_or_known_default()
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && default_port(a) == default_port(b)
}

/// An http→https upgrade on the same host keeps credentials, as in httpx.
fn is_https_upgrade(from: &Url, to: &Url) -> bool {
    from.host_str() == to.host_str()
        && from.scheme() == "http"
        && default_port(from) == Some(80)
        && to.scheme() == "https"
        && default_port(to) == Some(443)
}

fn netloc(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Resolve a Location header against the URL it came from.
pub fn resolve_location(current: &Url, location: &[u8]) -> Result<Url, Error> {
    let text = std::str::from_utf8(location).map_err(|_| {
        Error::new(
            ErrorKind::RemoteProtocol,
            "Invalid URL in location header: not valid UTF-8.",
        )
    })?;
    let mut url = current.join(text.trim()).map_err(|e| {
        Error::new(
            ErrorKind::RemoteProtocol,
            format!("Invalid URL in location header: {e}."),
        )
    })?;
    if url.fragment().is_none() {
        url.set_fragment(current.fragment());
    }
    Ok(url)
}

/// Build the next request, or None when the response is not a redirect.
pub fn next_request(
    method: &Method,
    url: &Url,
    headers: &HeaderMap,
    status: StatusCode,
    response_headers: &HeaderMap,
    carried_cookies: Option<&HeaderValue>,
) -> Result<Option<NextRequest>, Error> {
    if !is_redirect(status) {
        return Ok(None);
    }
    let Some(location) = response_headers.get(reqwest::header::LOCATION) else {
        return Ok(None);
    };
    let new_url = resolve_location(url, location.as_bytes())?;
    let new_method = redirect_method(method, status);
    let mut new_headers = headers.clone();
    if !same_origin(&new_url, url) {
        if !is_https_upgrade(url, &new_url) {
            new_headers.remove(AUTHORIZATION);
        }
        if let Ok(host) = HeaderValue::from_str(&netloc(&new_url)) {
            new_headers.insert(HOST, host);
        }
    }
    let keep_body = !(new_method != *method && new_method == Method::GET);
    if !keep_body {
        new_headers.remove(CONTENT_LENGTH);
        new_headers.remove(reqwest::header::TRANSFER_ENCODING);
    }
    new_headers.remove(COOKIE);
    if let Some(cookies) = carried_cookies {
        if new_url.host_str() == url.host_str() {
            new_headers.insert(COOKIE, cookies.clone());
        }
    }
    Ok(Some(NextRequest {
        method: new_method,
        url: new_url,
        headers: new_headers,
        keep_body,
    }))
}

/// Merge `Set-Cookie` name=value pairs from a response into a Cookie header,
/// so cookies set by a redirect hop reach the next hop on the same host.
pub fn merge_set_cookies(
    current: Option<&HeaderValue>,
    response_headers: &HeaderMap,
) -> Option<HeaderValue> {
    let mut pairs: Vec<(String, String)> = current
        .and_then(|v| v.to_str().ok())
        .map(|text| {
            text.split(';')
                .filter_map(|p| p.trim().split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let mut changed = false;
    for set in response_headers.get_all(reqwest::header::SET_COOKIE) {
        let Ok(text) = set.to_str() else { continue };
        let first = text.split(';').next().unwrap_or_default();
        let Some((name, value)) = first.split_once('=') else {
            continue;
        };
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        pairs.retain(|(k, _)| *k != name);
        pairs.push((name, value));
        changed = true;
    }
    if !changed {
        return current.cloned();
    }
    let joined = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    HeaderValue::from_str(&joined).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        match Url::parse(s) {
            Ok(u) => u,
            Err(e) => unreachable!("bad test url {s}: {e}"),
        }
    }

    fn redirect_to(location: &str, status: u16, method: Method) -> NextRequest {
        let mut response = HeaderMap::new();
        response.insert(
            reqwest::header::LOCATION,
            HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/")),
        );
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        headers.insert(HOST, HeaderValue::from_static("example.org"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("3"));
        headers.insert(COOKIE, HeaderValue::from_static("a=1"));
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
        match next_request(
            &method,
            &url("http://example.org/start#frag"),
            &headers,
            status,
            &response,
            headers.get(COOKIE),
        ) {
            Ok(Some(next)) => next,
            other => unreachable!("expected a redirect, got {other:?}"),
        }
    }

    #[test]
    fn see_other_turns_post_into_get_and_drops_body() {
        let next = redirect_to("/done", 303, Method::POST);
        assert_eq!(next.method, Method::GET);
        assert!(!next.keep_body);
        assert!(next.headers.get(CONTENT_LENGTH).is_none());
        assert_eq!(next.url.as_str(), "http://example.org/done#frag");
    }

    #[test]
    fn temporary_redirect_keeps_method_and_body() {
        let next = redirect_to("/again", 307, Method::POST);
        assert_eq!(next.method, Method::POST);
        assert!(next.keep_body);
        assert!(next.headers.get(CONTENT_LENGTH).is_some());
    }

    #[test]
    fn cross_origin_strips_authorization_and_cookies_and_sets_host() {
        let next = redirect_to("http://other.example:8080/x", 302, Method::GET);
        assert!(next.headers.get(AUTHORIZATION).is_none());
        assert!(next.headers.get(COOKIE).is_none());
        assert_eq!(
            next.headers.get(HOST).map(|v| v.as_bytes()),
            Some(&b"other.example:8080"[..])
        );
    }

    #[test]
    fn https_upgrade_keeps_authorization() {
        let next = redirect_to("https://example.org/secure", 301, Method::GET);
        assert!(next.headers.get(AUTHORIZATION).is_some());
        assert_eq!(
            next.headers.get(COOKIE).map(|v| v.as_bytes()),
            Some(&b"a=1"[..])
        );
    }

    #[test]
    fn head_stays_head_on_see_other() {
        assert_eq!(
            redirect_method(&Method::HEAD, StatusCode::SEE_OTHER),
            Method::HEAD
        );
    }

    #[test]
    fn not_a_redirect_without_location() {
        let result = next_request(
            &Method::GET,
            &url("http://example.org/"),
            &HeaderMap::new(),
            StatusCode::FOUND,
            &HeaderMap::new(),
            None,
        );
        assert!(matches!(result, Ok(None)));
    }

    #[test]
    fn set_cookie_merges_into_cookie_header() {
        let mut response = HeaderMap::new();
        response.append(
            reqwest::header::SET_COOKIE,
            HeaderValue::from_static("b=2; Path=/"),
        );
        response.append(reqwest::header::SET_COOKIE, HeaderValue::from_static("a=3"));
        let merged = merge_set_cookies(Some(&HeaderValue::from_static("a=1")), &response);
        assert_eq!(
            merged.as_ref().map(|v| v.as_bytes()),
            Some(&b"b=2; a=3"[..])
        );
    }
}
