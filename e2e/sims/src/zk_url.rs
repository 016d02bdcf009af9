//! ZooKeeper URLs as Mesos and Marathon take them: `zk://[user:pass@]h1:p1,h2:p2/path`,
//! or `file:///f` naming a file that holds such a URL.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host:port,host:port`, the connect string handed to the ZooKeeper client.
    pub servers: String,
    /// The znode path, always starting with `/` and without a trailing `/`.
    pub path: String,
    pub credentials: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZkUrlError {
    #[error("Expecting 'zk://' at the beginning of the URL")]
    Scheme,
    #[error("Expecting a path in the ZooKeeper URL")]
    NoPath,
    #[error("Expecting at least one host:port in the ZooKeeper URL")]
    NoServers,
    #[error("Failed to read '{0}': {1}")]
    File(String, String),
}

impl ZkUrl {
    pub fn parse(url: &str) -> Result<ZkUrl, ZkUrlError> {
        let url = url.trim();
        if let Some(path) = url.strip_prefix("file://") {
            let content = std::fs::read_to_string(path)
                .map_err(|e| ZkUrlError::File(path.to_string(), e.to_string()))?;
            return ZkUrl::parse(&content);
        }
        let rest = url.strip_prefix("zk://").ok_or(ZkUrlError::Scheme)?;
        let (authority, path) = rest.split_at(rest.find('/').ok_or(ZkUrlError::NoPath)?);
        let (credentials, servers) = match authority.rsplit_once('@') {
            Some((c, s)) => (Some(c.to_string()), s),
            None => (None, authority),
        };
        let servers_ok = !servers.is_empty()
            && servers.split(',').all(|s| {
                s.rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            });
        if !servers_ok {
            return Err(ZkUrlError::NoServers);
        }
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Err(ZkUrlError::NoPath);
        }
        Ok(ZkUrl {
            servers: servers.to_string(),
            path: path.to_string(),
            credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mesos_forms() {
        let u = ZkUrl::parse("zk://a:2181,b:2182/mesos").unwrap();
        assert_eq!(u.servers, "a:2181,b:2182");
        assert_eq!(u.path, "/mesos");
        let u = ZkUrl::parse("zk://user:pw@a:2181/x/y/").unwrap();
        assert_eq!(u.credentials.as_deref(), Some("user:pw"));
        assert_eq!(u.path, "/x/y");
        assert_eq!(ZkUrl::parse("http://a:1/m"), Err(ZkUrlError::Scheme));
        assert_eq!(ZkUrl::parse("zk://a:2181"), Err(ZkUrlError::NoPath));
        assert_eq!(ZkUrl::parse("zk://a/m"), Err(ZkUrlError::NoServers));
    }
}
