//! Where a keyed limiter's key comes from: a [`KeyExtractor`] reads it off the request.
//! Built in: [`Global`] (one key for all), [`HeaderKey`] (a header such as `x-api-key`),
//! [`PeerIp`] (the client's address), [`key_fn`] (a closure), and [`KeyExtractor::or`] (the
//! first key found of two).

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};

use http::header::HeaderName;

/// Reads the key a keyed limiter decides on from a request. `None`: the request has no key
/// (the layer then rejects or bypasses, as configured).
pub trait KeyExtractor<Req>: Clone {
    /// The key.
    type Key: Hash + Eq + Clone + Send + Sync + 'static;

    /// The key of `req`, if it has one.
    fn extract(&self, req: &Req) -> Option<Self::Key>;

    /// This key, or `other`'s when this one is missing (an API key, else the peer IP).
    fn or<B: KeyExtractor<Req>>(self, other: B) -> Or<Self, B>
    where
        Self: Sized,
    {
        Or(self, other)
    }
}

/// One key for every request: a keyed limiter behind it acts as a direct one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Global;

impl<Req> KeyExtractor<Req> for Global {
    type Key = ();

    #[inline]
    fn extract(&self, _: &Req) -> Option<()> {
        Some(())
    }
}

/// A closure as the extractor (see [`key_fn`]).
#[derive(Clone, Copy, Debug)]
pub struct KeyFn<F>(F);

/// A closure `Fn(&Req) -> Option<K>` as the extractor.
pub fn key_fn<F>(f: F) -> KeyFn<F> {
    KeyFn(f)
}

impl<Req, K, F> KeyExtractor<Req> for KeyFn<F>
where
    F: Fn(&Req) -> Option<K> + Clone,
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    type Key = K;

    #[inline]
    fn extract(&self, req: &Req) -> Option<K> {
        (self.0)(req)
    }
}

/// A header's value as the key (for example `x-api-key`). A header that is absent, empty,
/// not visible ASCII, or longer than [`max_len`](Self::max_len) (256 bytes by default) is
/// no key: a client cannot flood the table with huge keys, nor dodge its quota with a
/// header that fails to parse.
#[derive(Clone, Debug)]
pub struct HeaderKey {
    name: HeaderName,
    max_len: usize,
}

impl HeaderKey {
    /// The value of the header `name`.
    pub fn new(name: HeaderName) -> Self {
        Self { name, max_len: 256 }
    }

    /// The longest value taken as a key, in bytes.
    pub fn max_len(mut self, bytes: usize) -> Self {
        self.max_len = bytes;
        self
    }
}

impl<B> KeyExtractor<http::Request<B>> for HeaderKey {
    type Key = String;

    fn extract(&self, req: &http::Request<B>) -> Option<String> {
        let value = req.headers().get(&self.name)?;
        if value.is_empty() || value.len() > self.max_len {
            return None;
        }
        value.to_str().ok().map(str::to_owned)
    }
}

/// The client's IP address, from the connection: axum's
/// `ConnectInfo<SocketAddr>` (serve with `into_make_service_with_connect_info`, feature
/// `axum`) or a `SocketAddr` a server put in the request's extensions. Missing when the
/// server records neither.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerIp;

impl<B> KeyExtractor<http::Request<B>> for PeerIp {
    type Key = IpAddr;

    fn extract(&self, req: &http::Request<B>) -> Option<IpAddr> {
        let ext = req.extensions();
        #[cfg(feature = "axum")]
        if let Some(info) = ext.get::<axum::extract::ConnectInfo<SocketAddr>>() {
            return Some(info.0.ip());
        }
        ext.get::<SocketAddr>().map(SocketAddr::ip)
    }
}

/// The first key of two (see [`KeyExtractor::or`]).
#[derive(Clone, Copy, Debug)]
pub struct Or<A, B>(A, B);

/// A key from one of two extractors.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Either<A, B> {
    /// The first extractor's.
    Left(A),
    /// The second's.
    Right(B),
}

impl<Req, A: KeyExtractor<Req>, B: KeyExtractor<Req>> KeyExtractor<Req> for Or<A, B> {
    type Key = Either<A::Key, B::Key>;

    #[inline]
    fn extract(&self, req: &Req) -> Option<Self::Key> {
        match self.0.extract(req) {
            Some(k) => Some(Either::Left(k)),
            None => self.1.extract(req).map(Either::Right),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &[u8])]) -> http::Request<()> {
        let mut b = http::Request::builder();
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("a request")
    }

    #[test]
    fn header_keys_refuse_empty_long_and_non_ascii_values() {
        let k = HeaderKey::new(HeaderName::from_static("x-api-key")).max_len(8);
        assert_eq!(
            k.extract(&request(&[("x-api-key", b"abc")])).as_deref(),
            Some("abc")
        );
        assert_eq!(k.extract(&request(&[("x-api-key", b"")])), None);
        assert_eq!(k.extract(&request(&[("x-api-key", b"123456789")])), None);
        assert_eq!(k.extract(&request(&[("x-api-key", b"caf\xc3\xa9")])), None);
        assert_eq!(k.extract(&request(&[])), None);
    }

    #[test]
    fn or_falls_back_to_the_second_key() {
        let k = KeyExtractor::<http::Request<()>>::or(
            HeaderKey::new(HeaderName::from_static("x-api-key")),
            PeerIp,
        );
        let mut req = request(&[]);
        assert_eq!(k.extract(&req), None);
        req.extensions_mut()
            .insert(SocketAddr::from(([127, 0, 0, 1], 9)));
        assert_eq!(
            k.extract(&req),
            Some(Either::Right(IpAddr::from([127, 0, 0, 1])))
        );
        let keyed = request(&[("x-api-key", b"k1")]);
        assert_eq!(k.extract(&keyed), Some(Either::Left("k1".to_owned())));
    }
}
