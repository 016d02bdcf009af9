//! ZooKeeper's four-letter words, as the observe stage asks them: `srvr` tells whether a server
//! serves in a quorum, in which mode, and at which zxid. A server that does not answer in time
//! is unknown, never healthy; one that answers "not currently serving" is known not to serve.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server's role in the ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
    ReadOnly,
}

/// What `srvr` says about a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// In a quorum (or standalone) and answering clients.
    Serving { mode: Mode, zxid: u64 },
    /// Up, but not serving: no quorum, still electing or syncing.
    NotServing,
}

#[derive(Debug, thiserror::Error)]
pub enum FourLetterError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} did not answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("talking to {addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("{addr} refused `{word}`: it is not in 4lw.commands.whitelist")]
    NotWhitelisted { addr: String, word: &'static str },
    #[error("{addr} answered `srvr` with something unexpected: {text:?}")]
    Malformed { addr: String, text: String },
}

impl FourLetterError {
    /// A short stable category for metrics and events.
    pub fn category(&self) -> &'static str {
        match self {
            FourLetterError::Connect { .. } => "zk-connect",
            FourLetterError::Timeout { .. } => "zk-timeout",
            FourLetterError::Io { .. } => "zk-io",
            FourLetterError::NotWhitelisted { .. } => "zk-4lw-disabled",
            FourLetterError::Malformed { .. } => "zk-malformed",
        }
    }
}

/// Asks `addr` (`host:port`) for `srvr`, all within `timeout`.
pub async fn srvr(addr: &str, timeout: Duration) -> Result<ServerState, FourLetterError> {
    let text = tokio::time::timeout(timeout, ask(addr, "srvr"))
        .await
        .map_err(|_| FourLetterError::Timeout {
            addr: addr.to_string(),
            timeout,
        })??;
    parse_srvr(&text).map_err(|e| match e {
        ParseError::NotWhitelisted => FourLetterError::NotWhitelisted {
            addr: addr.to_string(),
            word: "srvr",
        },
        ParseError::Malformed => FourLetterError::Malformed {
            addr: addr.to_string(),
            text,
        },
    })
}

async fn ask(addr: &str, word: &str) -> Result<String, FourLetterError> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|source| FourLetterError::Connect {
            addr: addr.to_string(),
            source,
        })?;
    let io = |source| FourLetterError::Io {
        addr: addr.to_string(),
        source,
    };
    stream.write_all(word.as_bytes()).await.map_err(io)?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.map_err(io)?;
    Ok(text)
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    NotWhitelisted,
    Malformed,
}

/// Parses a `srvr` answer.
pub fn parse_srvr(text: &str) -> Result<ServerState, ParseError> {
    if text.contains("not currently serving requests") {
        return Ok(ServerState::NotServing);
    }
    if text.contains("is not executed because it is not in the whitelist") {
        return Err(ParseError::NotWhitelisted);
    }
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let mode = match field("Mode:").ok_or(ParseError::Malformed)? {
        "leader" => Mode::Leader,
        "follower" => Mode::Follower,
        "observer" => Mode::Observer,
        "standalone" => Mode::Standalone,
        "read-only" => Mode::ReadOnly,
        _ => return Err(ParseError::Malformed),
    };
    let zxid =
        field("Zxid:").and_then(|z| u64::from_str_radix(z.trim_start_matches("0x"), 16).ok());
    Ok(ServerState::Serving {
        mode,
        zxid: zxid.ok_or(ParseError::Malformed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER: &str = "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2022-09-21 00:00 UTC\n\
        Latency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\nConnections: 1\nOutstanding: 0\n\
        Zxid: 0x100000002\nMode: leader\nNode count: 5\nProposal sizes last/min/max: -1/-1/-1\n";

    #[test]
    fn parses_the_answers_servers_give() {
        let table: [(&str, Result<ServerState, ParseError>); 5] = [
            (
                LEADER,
                Ok(ServerState::Serving {
                    mode: Mode::Leader,
                    zxid: 0x1_0000_0002,
                }),
            ),
            (
                &LEADER.replace("Mode: leader", "Mode: follower"),
                Ok(ServerState::Serving {
                    mode: Mode::Follower,
                    zxid: 0x1_0000_0002,
                }),
            ),
            (
                "This ZooKeeper instance is not currently serving requests\n",
                Ok(ServerState::NotServing),
            ),
            (
                "srvr is not executed because it is not in the whitelist.\n",
                Err(ParseError::NotWhitelisted),
            ),
            ("", Err(ParseError::Malformed)),
        ];
        for (text, want) in table {
            assert_eq!(parse_srvr(text), want, "{text:?}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_error_never_a_state() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let err = srvr(&addr, Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.category(), "zk-connect");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let _hold = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let err = srvr(&addr, Duration::from_millis(200)).await.unwrap_err();
        assert_eq!(err.category(), "zk-timeout");
    }
}
