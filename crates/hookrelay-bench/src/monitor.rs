//! A Redis `MONITOR` session, to tell the commands clients send (one round trip each) from
//! the commands Lua scripts run inside Redis. `INFO commandstats` counts both alike;
//! `MONITOR` marks the second kind `[0 lua]`. It slows Redis down, so it is only used
//! for a small sample run, never while throughput is measured.

use std::collections::BTreeMap;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Commands seen, by name: `(sent by clients, run inside scripts)`.
pub type Seen = BTreeMap<String, (u64, u64)>;

/// A running `MONITOR` connection.
pub struct Monitor {
    task: JoinHandle<anyhow::Result<Seen>>,
}

/// The `ECHO` argument that tells the monitor to stop.
const END_MARK: &str = "hookrelay-bench-monitor-end";

/// `(command, from a script)` of one `MONITOR` line, e.g.
/// `+1700000000.123456 [0 127.0.0.1:5555] "evalsha" "…"` or `… [0 lua] "hset" …`.
pub fn parse_line(line: &str) -> Option<(String, bool)> {
    let open = line.find('[')?;
    let close = open + line[open..].find(']')?;
    let source = &line[open + 1..close];
    let lua = source.split_whitespace().nth(1) == Some("lua");
    let rest = &line[close + 1..];
    let q1 = rest.find('"')?;
    let q2 = q1 + 1 + rest[q1 + 1..].find('"')?;
    Some((rest[q1 + 1..q2].to_ascii_lowercase(), lua))
}

impl Monitor {
    /// Opens a connection to Redis on `port` and starts `MONITOR`.
    pub async fn start(port: u16) -> anyhow::Result<Self> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"MONITOR\r\n").await?;
        let mut reader = BufReader::new(stream);
        let mut ok = String::new();
        reader.read_line(&mut ok).await?;
        anyhow::ensure!(ok.starts_with("+OK"), "MONITOR answered {ok:?}");
        let task = tokio::spawn(async move {
            let mut seen = Seen::new();
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).await? == 0 {
                    anyhow::bail!("MONITOR connection closed");
                }
                if line.contains(END_MARK) {
                    return Ok(seen);
                }
                if let Some((cmd, lua)) = parse_line(&line) {
                    let e = seen.entry(cmd).or_insert((0, 0));
                    if lua {
                        e.1 += 1;
                    } else {
                        e.0 += 1;
                    }
                }
            }
        });
        Ok(Self { task })
    }

    /// Sends the end mark through `conn` and returns everything seen before it.
    pub async fn finish(
        self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> anyhow::Result<Seen> {
        let _: String = redis::cmd("ECHO").arg(END_MARK).query_async(conn).await?;
        let seen = tokio::time::timeout(std::time::Duration::from_secs(30), self.task)
            .await
            .map_err(|_| anyhow::anyhow!("MONITOR never showed the end mark"))???;
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_parse() {
        let cases = [
            (
                r#"+1700000000.123456 [0 127.0.0.1:5555] "evalsha" "ab" "6""#,
                Some(("evalsha", false)),
            ),
            (
                r#"+1700000000.123456 [0 lua] "HSET" "k" "f" "v""#,
                Some(("hset", true)),
            ),
            (
                r#"+1700000000.123456 [0 unix:/tmp/r.sock] "PING""#,
                Some(("ping", false)),
            ),
            ("+OK", None),
        ];
        for (line, want) in cases {
            let got = parse_line(line);
            assert_eq!(got.as_ref().map(|(c, l)| (c.as_str(), *l)), want, "{line}");
        }
    }
}
