//! Reading Redis's own accounting: `INFO commandstats` (calls and microseconds per
//! command), `INFO stats`, `INFO memory` and the server's pid, and the difference between
//! two readings.

use std::collections::BTreeMap;

use redis::aio::MultiplexedConnection;

/// One command's counters from `INFO commandstats`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CommandStat {
    /// Times called (commands run inside Lua scripts included).
    pub calls: u64,
    /// Microseconds spent in it (for `evalsha`: the whole script, inner commands included).
    pub usec: u64,
}

/// `INFO commandstats`, by lower-case command name (`hset`, `evalsha`, …).
pub type CommandStats = BTreeMap<String, CommandStat>;

/// Runs `INFO <section>` and returns its `name:value` lines.
pub async fn info(
    conn: &mut MultiplexedConnection,
    section: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let text: String = redis::cmd("INFO").arg(section).query_async(conn).await?;
    Ok(parse_info(&text))
}

fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Parses `calls=…,usec=…,…` of one `cmdstat_*` line.
fn parse_cmdstat(value: &str) -> CommandStat {
    let mut s = CommandStat::default();
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("calls", v)) => s.calls = v.parse().unwrap_or(0),
            Some(("usec", v)) => s.usec = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    s
}

/// `INFO commandstats` now.
pub async fn command_stats(conn: &mut MultiplexedConnection) -> anyhow::Result<CommandStats> {
    Ok(info(conn, "commandstats")
        .await?
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("cmdstat_")
                .map(|name| (name.replace('|', " "), parse_cmdstat(&v)))
        })
        .collect())
}

/// `INFO commandstats` of every server, added up command by command.
pub async fn command_stats_all(
    conns: &mut [MultiplexedConnection],
) -> anyhow::Result<CommandStats> {
    let mut total = CommandStats::new();
    for conn in conns {
        for (name, s) in command_stats(conn).await? {
            let t = total.entry(name).or_default();
            t.calls += s.calls;
            t.usec += s.usec;
        }
    }
    Ok(total)
}

/// What happened between two readings, command by command (commands not called are left
/// out).
pub fn diff(before: &CommandStats, after: &CommandStats) -> CommandStats {
    after
        .iter()
        .filter_map(|(name, a)| {
            let b = before.get(name).copied().unwrap_or_default();
            let d = CommandStat {
                calls: a.calls.saturating_sub(b.calls),
                usec: a.usec.saturating_sub(b.usec),
            };
            (d.calls > 0).then(|| (name.clone(), d))
        })
        .collect()
}

/// The server's pid (`INFO server` → `process_id`).
pub async fn server_pid(conn: &mut MultiplexedConnection) -> anyhow::Result<u32> {
    let server = info(conn, "server").await?;
    let pid = server
        .get("process_id")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("INFO server has no process_id"))?;
    Ok(pid)
}

/// `used_memory` in bytes.
pub async fn used_memory(conn: &mut MultiplexedConnection) -> anyhow::Result<u64> {
    Ok(info(conn, "memory")
        .await?
        .get("used_memory")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_lines_parse() {
        let text = "# Commandstats\r\ncmdstat_hset:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\ncmdstat_client|setinfo:calls=2,usec=1,usec_per_call=0.5,rejected_calls=0,failed_calls=0\r\n";
        let info = parse_info(text);
        let hset = parse_cmdstat(&info["cmdstat_hset"]);
        assert_eq!(
            hset,
            CommandStat {
                calls: 12,
                usec: 30
            }
        );
        let before: CommandStats = [("hset".to_owned(), CommandStat { calls: 2, usec: 10 })].into();
        let after: CommandStats = [
            ("hset".to_owned(), hset),
            ("get".to_owned(), CommandStat { calls: 0, usec: 0 }),
        ]
        .into();
        let d = diff(&before, &after);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d["hset"],
            CommandStat {
                calls: 10,
                usec: 20
            }
        );
    }
}
