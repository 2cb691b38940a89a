//! A minimal HTTP/1.1 client over one keep-alive connection (hyper), for the load tool, the
//! end-to-end tests and the operator's `sessionrank publish`. [`Client::connect`] talks to
//! loopback addresses only (the load tool must not be aimed at someone else's service);
//! [`Client::connect_to`] goes where an operator's command points it (plain HTTP: put TLS in
//! front, or reach the admin port over a private network or a tunnel).

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One connection.
pub struct Client {
    addr: SocketAddr,
    /// The `Host` header: the address, or the name the operator gave.
    host: String,
    sender: SendRequest<Full<Bytes>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("addr", &self.addr).finish()
    }
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "this client only talks to loopback addresses, not {addr}"
        );
        let stream =
            TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        Self::over(stream, addr.to_string()).await
    }

    /// Connect to `authority` (`host:port`, a name or an address, loopback or not).
    pub async fn connect_to(authority: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(authority)
            .await
            .with_context(|| format!("connecting to {authority}"))?;
        Self::over(stream, authority.to_string()).await
    }

    async fn over(stream: TcpStream, host: String) -> anyhow::Result<Self> {
        stream.set_nodelay(true)?;
        let addr = stream.peer_addr()?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { addr, host, sender })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Send a request and read the whole answer.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Reply> {
        let mut req =
            hyper::Request::builder().method(method).uri(path).header("host", self.host.as_str());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into()))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Reply { status, headers, body })
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        self.send("GET", path, &[], Bytes::new()).await
    }

    /// A JSON request; `token` adds `Authorization: Bearer`.
    pub async fn json(
        &mut self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
        token: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        self.send(method, path, &headers, serde_json::to_vec(body)?).await
    }
}

/// `http://127.0.0.1:8080` → the socket address; only loopback hosts are accepted.
pub fn loopback_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.strip_prefix("http://").context("expected an http:// URL")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.replacen("localhost", "127.0.0.1", 1);
    let addr: SocketAddr =
        authority.parse().with_context(|| format!("expected http://127.0.0.1:PORT, got {url}"))?;
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "refusing to target {addr}: only loopback addresses (127.0.0.1, ::1)"
    );
    Ok(addr)
}

/// `http://host[:port][/prefix]` → (`host:port`, the path prefix without its final `/`): where
/// an operator's command sends its requests. Only `http://` (see the module docs).
pub fn http_target(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url.strip_prefix("http://").with_context(|| {
        format!("expected an http:// URL, got {url} (for https, use curl or a tunnel)")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    anyhow::ensure!(!authority.is_empty() && !authority.contains('@'), "no host in {url}");
    let has_port = match authority.rfind(':') {
        Some(i) => {
            authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
        }
        None => false,
    };
    let authority = if has_port { authority.to_string() } else { format!("{authority}:80") };
    Ok((authority, path.trim_end_matches('/').to_string()))
}

#[cfg(test)]
mod tests {
    use super::http_target;

    #[test]
    fn targets_are_parsed() {
        let t = |u: &str| http_target(u).expect(u);
        assert_eq!(t("http://127.0.0.1:8080"), ("127.0.0.1:8080".into(), String::new()));
        assert_eq!(t("http://models.internal/sr/"), ("models.internal:80".into(), "/sr".into()));
        assert_eq!(t("http://[::1]:9/"), ("[::1]:9".into(), String::new()));
        assert!(http_target("https://x").is_err());
        assert!(http_target("http://u:p@x").is_err());
    }
}
