//! The key a downstream's breaker and `Retry-After` are kept under.

/// `scheme://host:port` of `url` (the port made explicit), the unit a downstream fails in:
/// one bad host never blocks another.
pub fn authority_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_made_explicit_and_paths_do_not_matter() {
        let of = |s: &str| authority_of(&reqwest::Url::parse(s).expect("a url"));
        assert_eq!(of("http://example.com/a?b"), "http://example.com:80");
        assert_eq!(of("https://example.com:8443/x"), "https://example.com:8443");
        assert_eq!(
            of("http://127.0.0.1:9000"),
            of("http://127.0.0.1:9000/other")
        );
        assert_ne!(of("http://127.0.0.1:9000"), of("http://127.0.0.1:9001"));
    }
}
